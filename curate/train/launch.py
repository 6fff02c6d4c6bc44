"""``curate train --num-processes N``: the recipe trained by N processes under ``accelerate launch`` (DDP).

The command plans the run as usual (one export, one output folder), writes the plan beside the run, and starts
``accelerate launch --multi_gpu --num_processes N -m curate.train.launch PLAN``: one process per GPU (NCCL), or
N CPU processes on gloo where the plan trains on the CPU. Every process trains on its share of each batch with the
same recipe; the first saves the adapter and writes the run's figures, and the command registers the model
version once, after all of them finished. Their output goes to ``launch/log.txt`` in the run's folder; the
first process reports its steps to ``launch/progress.json``, which the command shows as its progress.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curate.errors import CurateError
from curate.files import publish_text
from curate.progress import Progress
from curate.train.training import TrainPlan

POLL_SECONDS = 0.5


def launch_training(plan: TrainPlan, *, parent: str | None, processes: int, resume: bool,
                    progress: Progress) -> tuple[Path, dict[str, Any]]:
    """Train ``plan`` with ``processes`` processes (see the module); the adapter's folder and the run's figures."""
    import torch

    if plan.device == "mps":
        raise CurateError("--num-processes: Apple's MPS trains in one process; use --device cpu for several")
    if plan.device.startswith("cuda") and processes > torch.cuda.device_count():
        raise CurateError(f"--num-processes {processes}: torch sees {torch.cuda.device_count()} CUDA GPU(s) (one "
                          "process per GPU); use fewer processes, or --device cpu")
    folder = plan.output / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("progress.json", "result.json"):
        (folder / stale).unlink(missing_ok=True)
    publish_text(folder / "plan.json", json.dumps({**plan_record(plan), "parent_path": parent, "resume": resume},
                                                  indent=2))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--main_process_port", str(_free_port()), "--mixed_precision", "no",
               "--dynamo_backend", "no", "-m", "curate.train.launch", str(folder / "plan.json")]
    with open(folder / "log.txt", "w", encoding="utf-8") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            for _ in progress(_steps(child, folder / "progress.json"), f"training ({processes} processes)",
                              plan.recipe.train.max_steps if plan.recipe.train.max_steps > 0 else None):
                pass
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    result = folder / "result.json"
    if child.returncode != 0 or not result.is_file():
        raise CurateError(f"training with {processes} processes failed (exit {child.returncode}): "
                          f"{_last_error(folder / 'log.txt')} (the whole log: {folder / 'log.txt'})")
    return plan.output / "adapter", json.loads(result.read_text(encoding="utf-8"))


def plan_record(plan: TrainPlan) -> dict[str, Any]:
    """``plan`` as JSON-ready data (``plan_from_record`` reads it back)."""
    return {"name": plan.name, "recipe": plan.recipe.as_dict(), "source": plan.source, "base": plan.base,
            "parent": plan.parent, "data": plan.data, "output": str(plan.output), "round": plan.round,
            "device": plan.device, "dtype": plan.dtype}


def plan_from_record(record: dict[str, Any]) -> TrainPlan:
    from curate.train.recipe import parse_recipe

    return TrainPlan(name=record["name"], recipe=parse_recipe(record["recipe"], where=record["source"]),
                     source=record["source"], base=record["base"], parent=record["parent"], data=record["data"],
                     output=Path(record["output"]), round=record["round"], device=record["device"],
                     dtype=record["dtype"])


def _steps(child: subprocess.Popen[bytes], path: Path) -> Iterator[int]:
    """One item per training step the first process reports, until the launch ends."""
    shown = 0
    while True:
        running = child.poll() is None
        try:
            done = json.loads(path.read_text(encoding="utf-8"))["done"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            done = shown
        while shown < done:
            shown += 1
            yield shown
        if not running:
            return
        time.sleep(POLL_SECONDS)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _last_error(log: Path) -> str:
    """The last line of the log that names an error (else its last line)."""
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error:" in line]
    return (errors or lines or ["no output"])[-1][:400]


def _report_steps(path: Path) -> Progress:
    """A ``Progress`` that records how many training steps are done in ``path`` (the first process's)."""

    def progress(items: Any, description: str, total: int | None) -> Iterator[Any]:
        for done, item in enumerate(items, 1):
            yield item
            if description == "training":
                publish_text(path, json.dumps({"done": done, "total": total}))

    return progress


def _main(plan_path: str) -> None:
    """One process of a launch: train with the others; the first saves and writes the figures."""
    from curate.progress import no_progress
    from curate.train.training import fit, quiet

    record = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    plan = plan_from_record(record)
    folder = Path(plan_path).parent
    first = int(os.environ.get("RANK", "0")) == 0
    with quiet():
        _, metrics = fit(plan, parent=record["parent_path"], resume=record["resume"],
                         progress=_report_steps(folder / "progress.json") if first else no_progress)
    if first:
        publish_text(folder / "result.json", json.dumps(metrics))


if __name__ == "__main__":
    _main(sys.argv[1])
