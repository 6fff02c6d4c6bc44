"""Token entropy: curate's batched scorer against a plain Hugging Face forward loop (one example at a
time, full logits) over the same completions, with the packaged SmolLM2; tokens/s for both and the
ratio (goal >= 2x from batching).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/entropy_batching.py [N=2000]

Completions are both sides of PandaLM and hh-rlhf pairs with their prompts, as a pool holds them: curate
gains from batching (sorted by length, padded, logits only for completion tokens) and from running each
prompt once for both of its completions.
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
from curate.rendering import Content, Conversation, Rendering, transcript_turns
from curate.scores.entropy import STATS, token_entropy
from curate.scores.lm import load_causal_lm

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def examples(n: int) -> list[Conversation]:
    """Both completions of n/2 pairs (half PandaLM, half hh-rlhf with its turns), each in its prompt's context, as
    a pool holds them."""
    pairs = []
    with gzip.open(DATA / "pandalm-testset-v1.jsonl.gz", "rt") as fh:
        for line in fh:
            row = json.loads(line)
            if isinstance(row["response1"], str) and isinstance(row["response2"], str):
                pairs.append((f"{row['instruction']}\n\n{row['input']}".strip(), row["response1"], row["response2"]))
    pairs = pairs[:n // 4]
    with gzip.open(DATA / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt") as fh:
        for line in fh:
            row = json.loads(line)
            cut = row["chosen"].rindex("Assistant:") + len("Assistant:")
            if row["rejected"][:cut] == row["chosen"][:cut]:
                pairs.append((row["chosen"][:cut].strip(), row["chosen"][cut:].strip(), row["rejected"][cut:].strip()))
    pairs = pairs[:n // 2]
    return [Conversation(Content(p, transcript_turns(p)), Content(c)) for p, a, b in pairs for c in (a, b)]


def plain_loop(model, tokenizer, conversations: list[Conversation]) -> np.ndarray:
    out = []
    rendering = Rendering(tokenizer, name=DEFAULT_POLICY)
    with torch.inference_mode():
        for conversation in conversations:
            e = rendering.encode(conversation, max_length=1024)
            logits = model(torch.tensor([e.prompt + e.completion])).logits[0]
            logp = torch.log_softmax(logits[len(e.prompt) - 1:len(e.prompt) - 1 + len(e.completion)], dim=-1)
            out.append(-(logp.exp() * logp).sum(-1).mean().item())
    return np.array(out)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    conversations = examples(n)
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_causal_lm(resolve_model(DEFAULT_POLICY, cache=Path(tmp)))
    encoded = [Rendering(tokenizer, name=DEFAULT_POLICY).encode(c, max_length=1024) for c in conversations]
    tokens = sum(len(e.prompt) + len(e.completion) for e in encoded)  # the work both do, per completion
    start = time.perf_counter()
    reference = plain_loop(model, tokenizer, conversations)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    ours = token_entropy(model, tokenizer, conversations)
    batched = time.perf_counter() - start
    assert np.abs(ours[:, STATS.index("entropy_mean")] - reference).max() < 1e-3
    prompts = len({c.prompt.key() for c in conversations})
    print(f"{len(conversations)} completions of {prompts} prompts, {tokens:,} tokens (prompt + completion), "
          f"{DEFAULT_POLICY}")
    print(f"plain forward loop: {plain:7.1f} s ({tokens / plain:,.0f} tokens/s)")
    print(f"curate batched:     {batched:7.1f} s ({tokens / batched:,.0f} tokens/s)")
    print(f"ratio: {plain / batched:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main()
