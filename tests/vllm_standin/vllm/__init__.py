"""A stand-in for the slice of vLLM's offline API that ``curate generate --backend vllm`` calls, sampling with
transformers on the CPU (vLLM itself needs a CUDA GPU to be installed and run): ``LLM(model, tokenizer, dtype,
seed)``, ``LLM.generate(prompts, sampling_params, use_tqdm)`` with token-id prompts and one ``SamplingParams`` per
prompt, and ``RequestOutput.outputs[i].text``. Each request samples under its own seed, as vLLM's per-request
seeds do. Keyword names follow vLLM's, so a misspelt one fails here as it would there; every load and request is
kept in ``LLM.loaded`` and ``LLM.requests`` for the tests to look at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = 16
    seed: int | None = None
    stop_token_ids: list[int] = field(default_factory=list)
    skip_special_tokens: bool = True


@dataclass
class CompletionOutput:
    index: int
    text: str


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]


class LLM:
    loaded: ClassVar[list[str]] = []
    requests: ClassVar[list[tuple[list[int], SamplingParams]]] = []

    def __init__(self, model: str, *, tokenizer: str | None = None, dtype: str = "auto", seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype), local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model, local_files_only=True)
        LLM.loaded.append(model)

    def generate(self, prompts: list[dict[str, list[int]]], sampling_params: list[SamplingParams], *,
                 use_tqdm: bool = True) -> list[RequestOutput]:
        import torch

        assert len(prompts) == len(sampling_params)
        results = []
        for prompt, params in zip(prompts, sampling_params, strict=True):
            ids = prompt["prompt_token_ids"]
            LLM.requests.append((ids, params))
            torch.manual_seed(params.seed)
            ends = [*params.stop_token_ids, self.tokenizer.eos_token_id]
            with torch.inference_mode():
                out = self.model.generate(torch.tensor([ids]), do_sample=True, temperature=params.temperature,
                                          top_p=params.top_p, top_k=0, max_new_tokens=params.max_tokens,
                                          num_return_sequences=params.n, eos_token_id=ends,
                                          pad_token_id=self.tokenizer.pad_token_id or ends[0])
            texts = self.tokenizer.batch_decode(out[:, len(ids):], skip_special_tokens=params.skip_special_tokens)
            results.append(RequestOutput(ids, [CompletionOutput(i, t) for i, t in enumerate(texts)]))
        return results
