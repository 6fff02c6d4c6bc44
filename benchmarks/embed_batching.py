"""Token-budget embedding batches against fixed batches of 64, on hh-rlhf dev (prompts and completions of very
different lengths: a one-word answer beside a 20-turn dialogue), with the same loaded MiniLM.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/embed_batching.py [BATCH_TOKENS] [REPEATS]

Both sort the texts by length first (sentence-transformers does within its call; curate over each shard), so the
difference is only the batch size: a fixed count, or as many texts as fit BATCH_TOKENS padded tokens (default:
curate's CPU budget). Each is timed REPEATS times (default 2), alternately, and the best time of each counts; the
vectors are checked to agree.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from curate.ids import normalise_text
from curate.models import DEFAULT_EMBEDDING, resolve_model
from curate.pool.embed import BATCH_TOKENS, EmbeddingCache, embed_texts, load_encoder, token_batches, vectors_for

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-test-dev.jsonl.gz"


def texts() -> list[str]:
    """Every distinct prompt and completion of hh dev, as `curate ingest` stores them."""
    out = []
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for side in ("chosen", "rejected"):
                cut = row[side].rindex("Assistant:") + len("Assistant:")
                out += [normalise_text(row[side][:cut]), normalise_text(row[side][cut:]) or "(empty)"]
    return list(dict.fromkeys(out))


def main() -> None:
    budget = int(sys.argv[1]) if len(sys.argv) > 1 else BATCH_TOKENS["cpu"]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    corpus = texts()
    model = resolve_model(DEFAULT_EMBEDDING)
    encoder = load_encoder(model)
    encoder.encode(corpus[:64], batch_size=64)  # warm-up, for both
    lengths = [len(ids) for ids in encoder.tokenizer(corpus, truncation=True, max_length=encoder.max_seq_length)[
        "input_ids"]]
    batches = token_batches(encoder, corpus, budget)
    fixed_times, ours_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        fixed = encoder.encode(corpus, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        fixed_times.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            cache = EmbeddingCache(Path(tmp), model)
            start = time.perf_counter()
            embed_texts(corpus, model, cache, batch_tokens=budget, encoder=encoder)
            ours_times.append(time.perf_counter() - start)
            ours = vectors_for(corpus, cache)
    assert np.abs(ours - fixed).max() < 1e-4
    tokens = sum(lengths)
    print(f"{len(corpus)} texts of hh-rlhf dev, {tokens:,} tokens (median {int(np.median(lengths))}, max "
          f"{max(lengths)} after MiniLM's {encoder.max_seq_length}-token cut), {DEFAULT_EMBEDDING}")
    print(f"fixed batches of 64:           {min(fixed_times):6.1f} s ({tokens / min(fixed_times):,.0f} tokens/s)")
    print(f"token budget of {budget:>6,} tokens: {min(ours_times):6.1f} s ({tokens / min(ours_times):,.0f} tokens/s; "
          f"{len(batches)} batches of {min(map(len, batches))} to {max(map(len, batches))} texts, with the cache)")
    print(f"ratio (fixed / token budget): {min(fixed_times) / min(ours_times):.2f}x")


if __name__ == "__main__":
    main()
