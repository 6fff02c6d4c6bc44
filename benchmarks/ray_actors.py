"""The Ray engine with 1 and 2 CPU actors against the local engine, on the same hh-rlhf dev texts and completions.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ray_actors.py [TEXTS] [COMPLETIONS]

Embeds TEXTS distinct prompts and completions (default 2000) with MiniLM and scores the token entropy of
COMPLETIONS completions in their prompts (default 120) with SmolLM2-135M, each into an empty cache: once in this
process (the local engine, one thread), once on a Ray started here with 1 actor and once with 2 (one CPU and one
thread each). Ray's own start (about 10 s) is timed apart; an actor's model load counts, as it does in a real run.
The values are checked to agree with the local engine's within 1e-5. On 2 shared cores, 2 actors can at best
halve the time; what a cluster gives is this ratio per node.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from curate.compute import Compute
from curate.ids import normalise_text
from curate.models import DEFAULT_EMBEDDING, DEFAULT_POLICY, resolve_model
from curate.pool.embed import EmbeddingCache, embed_texts, vectors_for
from curate.rendering import Content, Conversation

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-test-dev.jsonl.gz"


def corpus() -> tuple[list[str], list[Conversation]]:
    """hh dev's distinct prompts and completions (texts), and its completions in their prompts."""
    from curate.ingest.rows import prompt_text

    texts, conversations = [], []
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for side in ("chosen", "rejected"):
                cut = row[side].rindex("Assistant:") + len("Assistant:")
                prompt = prompt_text(row[side][:cut])
                answer = normalise_text(row[side][cut:]) or "(empty)"
                texts += [normalise_text(row[side][:cut]), answer]
                conversations.append(Conversation(Content(prompt.text, prompt.messages), Content(answer)))
    return list(dict.fromkeys(texts)), conversations


def timed(run) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    values = run()
    return time.perf_counter() - start, values


def main() -> None:
    import ray

    from curate.scores.entropy import token_entropy
    from curate.scores.lm import load_causal_lm, resolve_scorer
    from curate.scores.runs import cached_completion_scores

    n_texts = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    n_completions = int(sys.argv[2]) if len(sys.argv) > 2 else 120
    texts, conversations = corpus()
    texts, rows = texts[:n_texts], [(str(i), c) for i, c in enumerate(conversations[:n_completions])]
    embedder = resolve_model(DEFAULT_EMBEDDING)
    with tempfile.TemporaryDirectory() as tmp:
        policy = resolve_scorer(DEFAULT_POLICY, cache=Path(tmp))

        def embed(compute: Compute, name: str) -> np.ndarray:
            cache = EmbeddingCache(Path(tmp) / name, embedder)
            embed_texts(texts, embedder, cache, shard_size=250, compute=compute)
            return vectors_for(texts, cache)

        def entropy(compute: Compute, name: str) -> np.ndarray:
            return cached_completion_scores(Path(tmp) / name, policy, rows, kind="entropy", load=load_causal_lm,
                                            score=partial(token_entropy), max_length=1024, shard=15,
                                            compute=compute)[0]

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray_start = time.perf_counter() - start
        results = {}
        for step, run in (("embedding", embed), ("entropy", entropy)):
            for label, compute in (("local", Compute()), ("ray-1", Compute(engine="ray", actors=1)),
                                   ("ray-2", Compute(engine="ray", actors=2))):
                results[step, label] = timed(partial(run, compute, f"{step}-{label}"))
        ray.shutdown()
    print(f"hh-rlhf dev: {len(texts)} texts embedded with {DEFAULT_EMBEDDING}; token entropy of {len(rows)} "
          f"completions with {DEFAULT_POLICY}. Ray started in {ray_start:.1f} s (not counted below).")
    for step, unit, count in (("embedding", "texts", len(texts)), ("entropy", "completions", len(rows))):
        local = results[step, "local"]
        for label in ("local", "ray-1", "ray-2"):
            seconds, values = results[step, label]
            assert np.allclose(values, local[1], atol=1e-5, rtol=1e-5), (step, label)
            print(f"{step:9} {label:6} {seconds:7.1f} s  {count / seconds:7.1f} {unit}/s  "
                  f"local / this: {local[0] / seconds:.2f}x")
        print(f"{step:9} 2 actors / 1 actor: {results[step, 'ray-1'][0] / results[step, 'ray-2'][0]:.2f}x")


if __name__ == "__main__":
    main()
