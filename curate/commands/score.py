"""``curate score``: the signals that pick what experts rank or rewrite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import (
    DeviceOption,
    EngineOption,
    JsonFlag,
    ModelOption,
    ProjectDir,
    out,
    print_json,
    progress_bar,
)

score_app = typer.Typer(no_args_is_help=True, help="Compute the signals that pick what experts rank or rewrite.")

MaxLength = Annotated[int, typer.Option("--max-length", min=8, help="Tokens per example; longer ones are cut "
                                                                    "and counted.")]


@score_app.command("entropy")
def entropy(project_dir: ProjectDir = Path("."),
            model: Annotated[str | None, typer.Option(
                "--model", help="Causal LM or LoRA adapter: hub id (local HF cache), folder, or the packaged default "
                                "(curate.toml [models] policy).")] = None,
            max_length: MaxLength = 1024, device: DeviceOption = None, engine: EngineOption = None,
            as_json: JsonFlag = False) -> None:
    """Token entropy of the policy model over every completion (mean, max, sum, mean log-prob)."""
    from curate.project import open_project
    from curate.scores.entropy import score_entropy

    with open_project(project_dir) as project:
        result = score_entropy(project, model=model, max_length=max_length, device=device, engine=engine,
                               progress=progress_bar)
    if as_json:
        print_json(vars(result))
    else:
        out.print(f"token entropy of {result.completions} completions with {result.model}: {result.computed} "
                  f"computed, {result.cached} from the cache, {result.truncated} truncated to {max_length} tokens; "
                  f"run {result.run_id}")


@score_app.command("committee")
def committee(project_dir: ProjectDir = Path("."),
              learner: Annotated[str | None, typer.Option(
                  "--learner", help="committee (bootstrap Bradley–Terry heads), laplace (Bayesian Bradley–Terry) or "
                                    "mlp (a deep ensemble of small reward-margin networks); "
                                    "default: [learner] name in curate.toml.")] = None,
              features: Annotated[str | None, typer.Option(
                  "--features", help="embedding (curate embed) or lm (the policy's hidden states, computed once and "
                                     "cached), either with +length (two length features); default: [learner] "
                                     "features.")] = None,
              layer: Annotated[int | None, typer.Option("--layer", min=1, help="Decoder layer for --features lm.")
                               ] = None,
              members: Annotated[int | None, typer.Option("--members", min=2, help="Bradley–Terry heads.")] = None,
              c: Annotated[float | None, typer.Option("--C", min=1e-6, help="Inverse regularisation.")] = None,
              model: ModelOption = None, seed: Annotated[int, typer.Option("--seed")] = 0,
              device: DeviceOption = None, engine: EngineOption = None, as_json: JsonFlag = False) -> None:
    """Reward committee: P(A ≻ B), its variance, vote entropy and BALD for every pair, from the labelled ones."""
    from curate.project import open_project
    from curate.scores.committee import score_committee

    with open_project(project_dir) as project:
        result = score_committee(project, learner=learner, features=features, layer=layer, members=members, c=c,
                                 model=model, random_state=seed, device=device, engine=engine,
                                 progress=progress_bar)
    if as_json:
        print_json(vars(result))
    else:
        who = f"committee of {result.members} heads" if result.learner == "committee" else "Laplace Bradley–Terry"
        states = f"; {result.computed} LM states computed" if result.features.startswith("lm") else ""
        out.print(f"{who} on {result.features} features fitted on {result.labelled} labelled pairs scored "
                  f"{result.pairs} pairs{states}; run {result.run_id}")


@score_app.command("reward-models")
def reward_models(models: Annotated[list[str], typer.Option(
                      "--model", help="A reward model (sequence classifier with one output) or LoRA reward adapter: "
                                      "folder or hub id in the local HF cache. Repeat for a committee.")],
                  project_dir: ProjectDir = Path("."), max_length: MaxLength = 1024, device: DeviceOption = None,
                  engine: EngineOption = None, as_json: JsonFlag = False) -> None:
    """Model committee: every reward model scores every completion; per pair, the spread of their margins."""
    from curate.project import open_project
    from curate.scores.reward import score_reward_models

    with open_project(project_dir) as project:
        result = score_reward_models(project, models=models, max_length=max_length, device=device,
                                     engine=engine, progress=progress_bar)
    if as_json:
        print_json(vars(result))
        return
    for name in result.models:
        out.print(f"{name}: {result.computed[name]} completions computed, "
                  f"{result.completions - result.computed[name]} from the cache, {result.truncated[name]} truncated")
    pairs = f"and {result.pairs} pairs (run {result.run_id})" if result.pairs else "(the pool has no pairs)"
    out.print(f"rewards of {result.completions} completions (run {result.completion_run_id}) {pairs}")


@score_app.command("margin")
def margin(policy: Annotated[str, typer.Option("--policy", help="The trained policy: a LoRA adapter folder (its "
                                                                "base is the reference) or a whole model.")],
           reference: Annotated[str | None, typer.Option("--ref", help="Reference model (default: the adapter's "
                                                                         "base).")] = None,
           beta: Annotated[float, typer.Option("--beta", min=1e-9, help="DPO beta (TRL's default 0.1).")] = 0.1,
           project_dir: ProjectDir = Path("."), max_length: MaxLength = 1024, device: DeviceOption = None,
           as_json: JsonFlag = False) -> None:
    """DPO margin of a trained policy against its reference: β·(log-ratio of A − log-ratio of B) per pair."""
    from curate.project import open_project
    from curate.scores.margin import score_margin

    with open_project(project_dir) as project:
        result = score_margin(project, policy=policy, reference=reference, beta=beta, max_length=max_length,
                              device=device, progress=progress_bar)
    if as_json:
        print_json(vars(result))
        return
    pairs = f"and {result.pairs} pairs (run {result.run_id})" if result.pairs else "(the pool has no pairs)"
    out.print(f"implicit rewards of {result.policy} against {result.reference} (beta {result.beta}) for "
              f"{result.completions} completions (run {result.completion_run_id}) {pairs}; {result.computed} "
              f"log-probabilities computed, {result.truncated} completions truncated")
