"""A synthetic pool of 1,000,000 pairs through the CLI: ingest → embed → cluster → dedup → select → export, with
wall time and peak memory (RSS) of each step.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pool_1m.py [PAIRS] [WORKDIR]

Each step is one `curate` command in its own process, as a user runs it; its peak RSS is that process's own
(os.wait4). Embedding uses a tiny randomly initialised sentence-transformer (1 layer, width 32, MiniLM's
tokenizer), so the step measures curate's own overhead (tokenising, batching, caching, reading back) rather than a
model. The pool: PAIRS prompts of 8-40 words, each with two completions; 1% of the prompts repeat an earlier one
with one word changed (near-duplicates for dedup); labels are the data set's (chosen, rejected), so `export
--with-imported` writes every pair. Budget: about an hour for 1,000,000 pairs on 2 cores; PAIRS=100000 takes
minutes. WORKDIR (default: a temporary folder) keeps the project for a look afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CURATE = str(Path(sys.executable).with_name("curate"))
# Random weights still place texts closer than a trained model does (the median cosine here is 0.92): dedup runs
# at 0.999, so that what it finds stays sparse, as it is with a real model at 0.95. Dedup keeps every edge above the
# threshold, so a pool whose texts are dense at the threshold needs memory quadratic in them.
THRESHOLD = 0.999


def write_pool(path: Path, pairs: int, rng: np.random.Generator) -> None:
    words = np.array([f"w{i}" for i in range(20_000)])
    with path.open("w", encoding="utf-8") as fh:
        prompts: list[str] = []
        for i in range(pairs):
            if prompts and rng.random() < 0.01:  # a near-duplicate of an earlier prompt
                tokens = prompts[int(rng.integers(len(prompts)))].split()
                tokens[int(rng.integers(len(tokens)))] = str(rng.choice(words))
                prompt = " ".join(tokens)
            else:
                prompt = " ".join(rng.choice(words, int(rng.integers(8, 41))))
            if len(prompts) < 50_000:
                prompts.append(prompt)
            chosen, rejected = (" ".join(rng.choice(words, int(rng.integers(5, 60)))) for _ in range(2))
            fh.write(json.dumps({"prompt": f"{prompt} ({i})", "chosen": chosen, "rejected": rejected}) + "\n")


def tiny_encoder(folder: Path) -> None:
    """A randomly initialised 1-layer BERT of width 64 with MiniLM's tokenizer and mean pooling, saved as a
    sentence-transformers folder. Its weights are drawn wide and its biases and position embeddings zeroed, so
    texts spread out (with the default initialisation nearly every two texts have cosine above 0.95)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from curate.models import DEFAULT_EMBEDDING, resolve_model

    minilm = resolve_model(DEFAULT_EMBEDDING).path
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64, max_position_embeddings=256,
                                initializer_range=1.0))
    with torch.no_grad():
        for name, parameter in bert.named_parameters():
            if name.endswith("bias") or "position_embeddings" in name or "token_type" in name:
                parameter.zero_()
    raw = folder / "raw"
    bert.save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    word = models.Transformer(str(raw), max_seq_length=256)
    SentenceTransformer(modules=[word, models.Pooling(64, pooling_mode="mean")]).save(str(folder))


def run(step: str, *args: str, project: Path) -> tuple[float, float]:
    """Run one curate command; its wall seconds and peak RSS in GB."""
    start = time.perf_counter()
    child = subprocess.Popen([CURATE, *args, "--project", str(project)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    output, errors = child.stdout.read(), child.stderr.read()
    if child.returncode != 0:
        raise SystemExit(f"{step} failed ({child.returncode}): {errors.strip()[-500:]}")
    said = [line.strip() for line in output.splitlines() if line.strip() and not set(line) & set("─│┃━┏┗┡└┌")]
    print(f"{step:8} {seconds:8.1f} s  {usage.ru_maxrss / 1024**2:6.2f} GB   {(said or [''])[-1][:90]}", flush=True)
    return seconds, usage.ru_maxrss / 1024**2


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="pool_1m-"))
    work.mkdir(parents=True, exist_ok=True)
    data, project, encoder = work / "pool.jsonl", work / "project", work / "tiny-encoder"
    start = time.perf_counter()
    write_pool(data, pairs, np.random.default_rng(0))
    tiny_encoder(encoder)
    print(f"{pairs:,} pairs ({data.stat().st_size / 1e6:.0f} MB of JSONL) written in "
          f"{time.perf_counter() - start:.0f} s; steps (each a curate process):", flush=True)
    subprocess.run([CURATE, "init", str(project)], check=True, capture_output=True)
    from curate.config import update_config

    update_config(project / "curate.toml", "models", embedding=str(encoder))
    total = 0.0
    for step, args in (("ingest", ("ingest", str(data))), ("embed", ("embed",)),
                       ("cluster", ("cluster", "--k", "1000")), ("dedup", ("dedup", "--threshold", str(THRESHOLD))),
                       ("select", ("select", "--budget", "1000")),
                       ("export", ("export", "--format", "dpo", "--with-imported", "--out",
                                   str(work / "export.jsonl")))):
        total += run(step, *args, project=project)[0]
    print(f"total    {total:8.1f} s for {pairs:,} pairs (project and data in {work})")


if __name__ == "__main__":
    main()
