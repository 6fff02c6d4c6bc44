"""``curate demo``: the whole loop on the bundled sample, in a fresh project, step by step.

The sample's texts are ingested without their labels; simulated annotators (or real people in the app,
``interactive``) answer each round from the labels the sample file records, so every label the project
learns from came through the app's queue, as in a real round.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.config import CONFIG_FILE, update_config
from curate.errors import CurateError, ProjectError
from curate.progress import Progress, no_progress
from curate.project import Project, init_project, open_project
from curate.samples import sample_paths

MARKER = ".curate-demo"  # written into every demo project: the only projects `curate demo` may replace
INTERACTIVE_SLICES = {"test_size": 20.0, "calibration_size": 10.0}  # pairs a person labels for the slices


@dataclass(frozen=True)
class DemoSettings:
    """The demo's sizes: small enough for 2 CPU cores in minutes, large enough to show each step."""

    budget: int = 60  # pairs per round (a random arm of random_frac of them)
    random_frac: float = 0.2
    annotators: int = 3  # simulated people; each item is judged by this many (the overlap)
    train_steps: int = 4  # DPO-LoRA optimiser steps (of 4 pairs)
    eval_examples: int = 16  # frozen-test pairs the trained adapter is scored on
    generate_prompts: int = 8  # prompts the trained model samples new completions for
    max_new_tokens: int = 64
    model: str | None = None  # base model to train and sample (default: the recipe's, the packaged SmolLM2)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("budget", "annotators", "train_steps", "eval_examples", "generate_prompts", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise CurateError(f"demo: {name} must be 1 or more, not {getattr(self, name)}")


@dataclass
class DemoStep:
    name: str  # init | ingest | embed | cluster | dedup | map | select | annotate | agreement | committee |
    #            export | train | generate | report | status | serve
    result: Any
    summary: str  # one line saying what the step did


def run_demo(directory: Path | str, *, settings: DemoSettings | None = None, interactive: bool = False,
             progress: Progress | None = None) -> Iterator[DemoStep]:
    """Create a project in ``directory`` (replacing an earlier demo project there) and run each step,
    yielding its result as it finishes. ``interactive``: round 1 is answered by people in the app (a lead
    account is made; the step ``serve`` gives its address and password), rounds continue once it is done."""
    from curate.annotate.simulated import answer_queue
    from curate.ingest import ingest_files, known_choices
    from curate.labels.agreement import agreement_report
    from curate.pool.cluster import cluster_pool
    from curate.pool.dedup import dedup_pool
    from curate.pool.maps import write_map
    from curate.pool.units import embed_pool
    from curate.report.data import write_report
    from curate.report.status import project_status
    from curate.scores.committee import score_committee
    from curate.select.rounds import select_round, set_round_status
    from curate.train.training import version_summary

    settings = settings or DemoSettings()
    progress = progress or no_progress
    root = _fresh(Path(directory))
    with init_project(root):
        (root / MARKER).write_text("made by curate demo: a later curate demo may replace this folder\n")
    update_config(root / CONFIG_FILE, "annotate", overlap=1 if interactive else settings.annotators)
    update_config(root / CONFIG_FILE, "select", random_frac=settings.random_frac, seed=settings.seed,
                  **(INTERACTIVE_SLICES if interactive else {}))
    answers = known_choices(sample_paths())
    with open_project(root) as project:
        yield DemoStep("init", project.root, f"init: project {project.root}")
        ingested = ingest_files(project, sample_paths(), labels=False, progress=progress)
        files = ", ".join(f"{Path(f.path).name} ({f.pairs} pairs)" for f in ingested.files)
        yield DemoStep("ingest", ingested,
                       f"ingest: {files}; their labels are held back as the simulated annotators' answer key")
        yield _embedded(embed_pool(project, progress=progress))
        clusters = cluster_pool(project, k="auto")
        yield _clustered(clusters, root)
        deduped = dedup_pool(project, progress=progress)
        yield DemoStep("dedup", deduped, f"dedup: {len(deduped.groups)} near-duplicate groups, {deduped.marked} "
                                         f"{deduped.field}s marked")
        yield _mapped(write_map(project))
        yield _selected(select_round(project, budget=settings.budget))  # cold start: no label yet
        if interactive:
            yield from _people(project)
            _enough_labels(project)
        else:
            yield _annotated(answer_queue(project, answers, annotators=settings.annotators, progress=progress))
            agreement = agreement_report(project, round_number=1, resamples=100)
            yield DemoStep("agreement", agreement, (
                f"agreement: {agreement['items_multi']} items judged by 2+; Fleiss κ "
                f"{agreement['fleiss_kappa']['value']:.3f}, Krippendorff α "
                f"{agreement['krippendorff_alpha']['value']:.3f}"))
        set_round_status(project, 1, "closed")
        yield _committee(score_committee(project))
        exported = _export(project)
        splits = ", ".join(f"{s} {info['rows']}" for s, info in exported["splits"].items())
        yield DemoStep("export", exported, f"export: round {exported['round']} as {exported['format']} ({splits})")
        version = _train(project, settings, progress)
        yield DemoStep("train", version, version_summary(version))
        generated = _generate(project, version["name"], settings, progress)
        yield DemoStep("generate", generated, generated.summary())
        yield _embedded(embed_pool(project, progress=progress))
        yield _clustered(cluster_pool(project, k=clusters.k), root)  # the new pairs too, with the same k
        yield _mapped(write_map(project))
        yield _committee(score_committee(project))
        yield _selected(select_round(project, budget=settings.budget, strategy="uncertainty"))
        if not interactive:  # round 2 stays open for the people who did round 1
            yield _annotated(answer_queue(project, answers, annotators=settings.annotators, progress=progress))
        page = write_report(project, out=project.root / "report.html", progress=progress)
        yield DemoStep("report", page, f"report: {page}")
        yield DemoStep("status", project_status(project), "status")


def _embedded(result: Any) -> DemoStep:
    return DemoStep("embed", result, f"embed: {result.texts} texts with {result.model} ({result.computed} computed)")


def _clustered(result: Any, root: Path) -> DemoStep:
    how = " (k by silhouette)" if "auto_k" in result.config else ""
    return DemoStep("cluster", result, f"cluster: {sum(result.sizes.values())} {result.field}s into {result.k} "
                                       f"clusters{how}; curate cluster --show --project {root}")


def _mapped(result: Any) -> DemoStep:
    return DemoStep("map", result, f"map: {result.html} (open it in a browser)")


def _selected(result: Any) -> DemoStep:
    slices = (f"; slices reserved: {result.reserved.get('test', 0)} test, "
              f"{result.reserved.get('calibration', 0)} calibration" if result.reserved else "")
    return DemoStep("select", result, (
        f"select: round {result.number} by {result.strategy}{' (cold start)' if result.cold_start else ''}: "
        f"{result.items} pairs, {result.arms.get('random', 0)} in the random arm, "
        f"{result.routes.get('rank', 0)} to rank, {result.routes.get('rewrite', 0)} to rewrite{slices}"))


def _annotated(result: Any) -> DemoStep:
    skipped = sum(result.skipped.values())
    votes = ", ".join(f"{k} {v}" for k, v in sorted(result.choices.items()))
    return DemoStep("annotate", result, (
        f"annotate: {len(result.annotators)} simulated annotators judged {result.judged} items ({votes})"
        + (f", passed on {skipped} ({'; '.join(result.skipped)})" if skipped else "")))


def _committee(result: Any) -> DemoStep:
    return DemoStep("committee", result,
                    f"committee: {result.members} Bradley–Terry heads fitted on {result.labelled} labelled pairs")


def _fresh(root: Path) -> Path:
    """``root``, emptied if an earlier demo made it; any other folder with files in it is refused."""
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            what = "a curate project that curate demo did not make" if (root / CONFIG_FILE).is_file() else \
                "not a curate demo project"
            raise ProjectError(f"{root} is {what}: choose another --dir (the demo replaces only its own folder)")
        shutil.rmtree(root)
    return root


def _enough_labels(project: Project) -> None:
    from curate.labels import training_labels
    from curate.learners.base import MIN_LABELS

    labelled = len(training_labels(project))
    if labelled < MIN_LABELS:
        raise CurateError(f"round 1 has {labelled} A/B labels outside the slices and the committee needs {MIN_LABELS}: "
                          "judge more items in curate demo --interactive, or let simulated annotators answer "
                          "(curate demo)")


def _people(project: Project) -> Iterator[DemoStep]:
    """Serve the app with a lead account until every round-1 item is judged or passed on (or Ctrl+C), then
    stop it."""
    import secrets
    import time

    from curate.annotate.users import add_user
    from curate.apps.annotate import launch

    password = secrets.token_urlsafe(12)
    add_user(project.store, "lead", role="lead", password=password)
    app = launch(project, block=False)
    try:
        items = _open_items(project)
        yield DemoStep("serve", {"url": app.local_url, "user": "lead", "password": password, "items": items},
                       f"serve: the app is at {app.local_url}; log in as lead / {password} and judge the {items} "
                       "items of round 1 (Ctrl+C goes on with what you judged)")
        while _open_items(project):
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()


def _open_items(project: Project) -> int:
    """Round-1 items that still want a judgment: fewer than ``overlap`` people judged or passed on them."""
    from curate.store import annotation_stats

    with project.store.read() as conn:
        return annotation_stats.unhandled_items(conn, round_number=1, overlap=project.config.annotate.overlap)


def _export(project: Project) -> dict[str, Any]:
    from curate.export import export

    return export(project, fmt="dpo", round_number=1, out=project.root / "exports" / "round-1-dpo.jsonl",
                  lineage=True)


def _train(project: Project, settings: DemoSettings, progress: Progress) -> dict[str, Any]:
    from curate.train.training import plan_training, run_training

    overrides = [f"train.max_steps={settings.train_steps}", f"train.eval_examples={settings.eval_examples}",
                 "train.logging_steps=1", "train.max_length=256"]
    if settings.model:
        overrides.append(f"model={settings.model}")
    plan = plan_training(project, "dpo-lora", round_number=1, overrides=overrides)
    return run_training(project, plan, progress=progress)


def _generate(project: Project, model: str, settings: DemoSettings, progress: Progress) -> Any:
    from curate.train.generate import generate

    return generate(project, model=model, n=2, max_new_tokens=settings.max_new_tokens,
                    limit=settings.generate_prompts, seed=settings.seed, progress=progress)
