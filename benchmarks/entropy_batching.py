"""Token entropy: curate's batched scorer against a plain Hugging Face forward loop (one example at a
time, full logits) over the same completions, with the packaged SmolLM2; tokens/s for both and the
ratio (goal >= 2x from batching).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/entropy_batching.py [N=2000]

Completions are hh-rlhf answers and PandaLM responses with their prompts.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from curate.models import DEFAULT_POLICY, resolve_model
from curate.scores.entropy import STATS, encode, load_causal_lm, token_entropy

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def examples(n: int) -> tuple[list[str], list[str]]:
    prompts, completions = [], []
    with gzip.open(DATA / "pandalm-testset-v1.jsonl.gz", "rt") as fh:
        for line in fh:
            row = json.loads(line)
            if isinstance(row["response1"], str):
                prompts.append(f"{row['instruction']}\n\n{row['input']}".strip())
                completions.append(row["response1"])
    with gzip.open(DATA / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt") as fh:
        for line in fh:
            text = json.loads(line)["chosen"]
            cut = text.rindex("Assistant:") + len("Assistant:")
            prompts.append(text[:cut].strip())
            completions.append(text[cut:].strip())
    return prompts[:n], completions[:n]


def plain_loop(model, tokenizer, prompts: list[str], completions: list[str]) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for prompt, completion in zip(prompts, completions, strict=True):
            e = encode(tokenizer, prompt, completion, max_length=1024)
            logits = model(torch.tensor([e.prompt + e.completion])).logits[0]
            logp = torch.log_softmax(logits[len(e.prompt) - 1:len(e.prompt) - 1 + len(e.completion)], dim=-1)
            out.append(-(logp.exp() * logp).sum(-1).mean().item())
    return np.array(out)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    prompts, completions = examples(n)
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_causal_lm(resolve_model(DEFAULT_POLICY, cache=Path(tmp)))
    tokens = sum(len(encode(tokenizer, p, c, max_length=1024).prompt) + len(encode(tokenizer, p, c, max_length=1024)
                                                                                 .completion)
                 for p, c in zip(prompts, completions, strict=True))
    start = time.perf_counter()
    reference = plain_loop(model, tokenizer, prompts, completions)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    ours = token_entropy(model, tokenizer, prompts, completions)
    batched = time.perf_counter() - start
    assert np.abs(ours[:, STATS.index("entropy_mean")] - reference).max() < 1e-3
    print(f"{len(prompts)} completions, {tokens:,} tokens (prompt + completion), {DEFAULT_POLICY}")
    print(f"plain forward loop: {plain:7.1f} s ({tokens / plain:,.0f} tokens/s)")
    print(f"curate batched:     {batched:7.1f} s ({tokens / batched:,.0f} tokens/s)")
    print(f"ratio: {plain / batched:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main()
