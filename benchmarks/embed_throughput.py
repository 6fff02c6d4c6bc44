"""Embedding throughput: `curate embed` (embed_texts with its cache) against calling
SentenceTransformer.encode directly on the same 5,000 texts, with the same loaded model; then a
cached re-run. Goals: ratio >= 0.95, cached re-run >= 50x faster.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/embed_throughput.py [N] [REPEATS]

The two are timed alternately, REPEATS times each (default 2), and the best time of each counts:
these machines are shared, and a single run of either can be slowed by a neighbour.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

from curate.ids import normalise_text
from curate.models import DEFAULT_EMBEDDING, resolve_model
from curate.pool.embed import EmbeddingCache, embed_texts, load_encoder, vectors_for

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def texts(n: int) -> list[str]:
    """The first n distinct texts of hh-rlhf, PandaLM and UKPConvArg1 (arguments, then the workers'
    reasons): short and long texts, as a real pool has."""
    out: dict[str, None] = {}

    def add(text: object) -> None:
        if isinstance(text, str) and text.strip():
            out.setdefault(normalise_text(text), None)

    for name, fields in (("hh-rlhf-harmless-test-dev.jsonl.gz", ("chosen", "rejected")),
                         ("pandalm-testset-v1.jsonl.gz", ("instruction", "response1", "response2")),
                         ("ukp-convarg1-dev.jsonl.gz", ("a1", "a2", "workers"))):
        with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                for key in fields:
                    for text in ([w.get("reason") for w in row[key]] if key == "workers" else [row[key]]):
                        add(text)
                if len(out) >= n:
                    return list(out)[:n]
    return list(out)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    corpus = texts(n)
    model = resolve_model(DEFAULT_EMBEDDING)
    encoder = load_encoder(model)
    encoder.encode(corpus[:64], batch_size=64)  # warm-up, for both
    direct_times, our_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode(corpus, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        direct_times.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            first = embed_texts(corpus, model, EmbeddingCache(Path(tmp), model), encoder=encoder)
            our_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            again = embed_texts(corpus, model, EmbeddingCache(Path(tmp), model), encoder=encoder)
            vectors_for(corpus, EmbeddingCache(Path(tmp), model))
            cached = time.perf_counter() - start
        assert first.computed == len(corpus) and again.computed == 0
    direct, ours = min(direct_times), min(our_times)
    print(f"{len(corpus)} texts, {model.name}")
    print(f"SentenceTransformer.encode: {direct:7.2f} s ({len(corpus) / direct:.0f} texts/s; runs "
          f"{', '.join(f'{t:.1f}' for t in direct_times)})")
    print(f"curate embed (cache miss):  {ours:7.2f} s ({len(corpus) / ours:.0f} texts/s; runs "
          f"{', '.join(f'{t:.1f}' for t in our_times)})")
    print(f"curate embed (cache hit, reopened, vectors read): {cached:7.3f} s")
    print(f"throughput ratio curate/direct: {direct / ours:.3f} (goal >= 0.95)")
    print(f"cached re-run speed-up: {ours / cached:.0f}x (goal >= 50x)")


if __name__ == "__main__":
    main()
