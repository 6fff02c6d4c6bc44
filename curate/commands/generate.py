"""`curate generate`: sample the next round's on-policy completions from a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import DeviceOption, EngineOption, JsonFlag, ProjectDir, out, print_json, progress_bar


def generate(model: Annotated[str, typer.Option("--model", help="A model version of this project (curate train "
                                                "names them, e.g. dpo-lora-r1), or a causal LM / adapter folder.")],
             n: Annotated[int, typer.Option("--n", help="Samples per prompt (2-8); they become its pairs.")] = 2,
             max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens per sample, at most.")
                                       ] = 256,
             temperature: Annotated[float, typer.Option("--temperature", help="Sampling temperature (above 0).")
                                    ] = 0.8,
             top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling: the smallest set of tokens "
                                                  "holding this probability.")] = 0.95,
             limit: Annotated[int | None, typer.Option("--limit", help="Sample this many prompts, drawn with "
                                                       "--seed (default: every prompt).")] = None,
             max_prompt_length: Annotated[int, typer.Option("--max-prompt-length", help="Longer prompts lose "
                                                            "their start.")] = 1024,
             batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts sampled together (transformers; "
                                                 "vLLM batches by itself).")] = 8,
             seed: Annotated[int, typer.Option("--seed")] = 0,
             backend: Annotated[str | None, typer.Option("--backend", help="What samples: auto (vLLM where it is "
                                                         "installed and the device is a CUDA GPU), transformers or "
                                                         "vllm (default: [compute] generation).")] = None,
             device: DeviceOption = None, engine: EngineOption = None, project_dir: ProjectDir = Path("."),
             as_json: JsonFlag = False) -> None:
    """Sample fresh completions for the pool's prompts from a trained model: the next round's on-policy pairs,
    stored with the model version that wrote them."""
    from curate.project import open_project
    from curate.train.generate import generate as run

    with open_project(project_dir) as project:
        result = run(project, model=model, n=n, max_new_tokens=max_new_tokens, temperature=temperature,
                     top_p=top_p, seed=seed, limit=limit, max_prompt_length=max_prompt_length,
                     batch_size=batch_size, device=device, engine=engine, backend=backend,
                     progress=progress_bar)
    if as_json:
        print_json(vars(result))
        return
    out.print(result.summary() + f"\n  next: curate embed, curate score entropy --model {result.model}, "
              "curate select")
