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

from curate.errors import CurateError, reason
from curate.files import publish_text
from curate.progress import Progress
from curate.project import Project
from curate.train.training import TrainPlan

POLL_SECONDS = 0.5


def check_processes(processes: int, device: str) -> None:
    """Refuse, before anything is planned or written, a process count ``device`` cannot run."""
    import torch

    if processes < 1:
        raise CurateError(f"--num-processes must be 1 or more, not {processes}")
    if processes > 1 and device == "mps":
        raise CurateError("--num-processes: Apple's MPS trains in one process; use --device cpu for several")
    if processes > 1 and device.startswith("cuda") and processes > torch.cuda.device_count():
        raise CurateError(f"--num-processes {processes}: torch sees {torch.cuda.device_count()} CUDA GPU(s) (one "
                          "process per GPU); use fewer processes, or --device cpu")


def run_launched(project: Project, plan: TrainPlan, *, processes: int, resume: bool = False,
                 progress: Progress) -> dict[str, Any]:
    """``run_training`` with ``processes`` processes (see the module): the registered model version."""
    from curate.train.training import adapter_path, register

    check_processes(processes, plan.device)
    parent = adapter_path(project, plan.parent) if plan.parent else None
    folder = plan.output / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    if resume and (folder / "plan.json").is_file():
        before = json.loads((folder / "plan.json").read_text(encoding="utf-8")).get("processes")
        if before != processes:
            raise CurateError(f"--resume: the interrupted run trained with {before} process(es); resume it with "
                              f"--num-processes {before} (its batches and checkpoints follow that count)")
    for stale in ("progress.json", "result.json", *(p.name for p in folder.glob("error-*.txt"))):
        (folder / stale).unlink(missing_ok=True)
    publish_text(folder / "plan.json", json.dumps({**plan_record(plan), "parent_path": parent, "resume": resume,
                                                   "processes": processes}, indent=2))
    config = folder / "accelerate.yaml"  # this launch's own settings, never the user's default accelerate config
    publish_text(config, json.dumps({"compute_environment": "LOCAL_MACHINE", "distributed_type": "MULTI_GPU",
                                     "num_machines": 1, "num_processes": processes, "mixed_precision": "no",
                                     "machine_rank": 0, "use_cpu": False, "rdzv_backend": "static",
                                     "same_network": True, "dynamo_config": {}}))
    threads = max(1, (os.cpu_count() or 1) // processes)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--multi_gpu",
               "--num_processes", str(processes), "--num_machines", "1", "--main_process_port", str(_free_port()),
               "--num_cpu_threads_per_process", str(threads), "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "curate.train.launch", str(folder / "plan.json")]
    with open(folder / "log.txt", "a", encoding="utf-8") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            for _ in progress(_steps(child, folder / "progress.json"), f"training ({processes} processes)",
                              plan.recipe.train.max_steps if plan.recipe.train.max_steps > 0 else None):
                pass
        finally:
            _stop(child)
    result = folder / "result.json"
    if child.returncode != 0 or not result.is_file():
        raise CurateError(f"training with {processes} processes failed (exit {child.returncode}): "
                          f"{_first_error(folder)} (the whole log: {folder / 'log.txt'})")
    return register(project, plan, plan.output / "adapter", json.loads(result.read_text(encoding="utf-8")))


def _stop(child: subprocess.Popen[bytes]) -> None:
    """End the launcher if it still runs: SIGTERM first, on which it stops its training processes (they run in
    their own sessions, so a SIGKILL to the launcher alone would leave them training)."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


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


def _first_error(folder: Path) -> str:
    """What a training process reported of its failure (``error-<rank>.txt``), else the log's first error line."""
    for report in sorted(folder.glob("error-*.txt")):
        return report.read_text(encoding="utf-8").strip()
    lines = [line.strip() for line in (folder / "log.txt").read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip()]
    errors = [line for line in lines if "Error:" in line]
    return (errors or lines[-1:] or ["no output"])[0][:400]


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
    rank = int(os.environ.get("RANK", "0"))
    first = rank == 0
    try:
        with quiet():
            _, metrics = fit(plan, parent=record["parent_path"], resume=record["resume"],
                             progress=_report_steps(folder / "progress.json") if first else no_progress)
    except Exception as err:  # the command shows this one line; the log keeps the traceback
        publish_text(folder / f"error-{rank}.txt", f"process {rank}: {reason(err)}"[:400])
        raise
    if first:
        publish_text(folder / "result.json", json.dumps(metrics))


if __name__ == "__main__":
    _main(sys.argv[1])
