"""The engine that runs model work a shard at a time: in this process (``local``), or on a Ray cluster (``ray``).

Every model step that fills a cache (embedding, LM states, token entropy, reward scores) hands its missing work
here as shards and a way to load the model once. The local engine loads it and works through the shards in order.
The Ray engine runs the shards as a Ray Data ``map_batches`` over a pool of actors that each load the model once
(one GPU per actor where the cluster has GPUs, else one per node with its CPUs) and yields each shard's values as
it finishes, so the caller caches it at once: results go into the same content-addressed caches whichever engine
computed them, and a run killed on a cluster resumes from what was cached. Ray is an optional extra
(``pip install 'curate-toolkit[ray]'``); nothing imports it unless ``[compute] engine = "ray"``.

On a cluster, every node needs curate and its model packages installed (the same version as the driver's: it is
checked) and the model's files at the same path (a shared file system, or the same image); the driver alone
writes the caches.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from curate.errors import CurateError

ENGINES = ("local", "ray")


def map_shards(shards: Sequence[Sequence[Any]], *, load: Callable[[], Any], work: Callable[[Any, Sequence[Any]],
               np.ndarray], engine: str = "local", address: str | None = None, gpus: int = 0,
               actors: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """``(i, work(load(), shards[i]))`` for every shard, as each finishes (in order on the local engine, in any
    order on Ray). ``load`` and ``work`` must pickle (module-level functions, ``functools.partial``) for Ray.
    On Ray, ``gpus`` (0 or 1) is what each actor holds, and ``actors`` how many run (0: one per GPU of the
    cluster, or one per node where it has none; never more than there are shards). What fails on an actor is a
    one-line CurateError here."""
    if not shards:
        return
    if engine == "local":
        loaded = load()
        for i, shard in enumerate(shards):
            yield i, work(loaded, shard)
        return
    if engine != "ray":
        raise CurateError(f"engine '{engine}' is not one of {', '.join(ENGINES)}")
    yield from _ray_shards(shards, load=load, work=work, address=address, gpus=gpus, actors=actors)


def connect(address: str | None = None) -> Any:
    """The ``ray`` module, connected to the cluster at ``address`` (else ``RAY_ADDRESS``; with neither, a Ray
    started on this machine for this process). A missing ``ray`` or an unreachable cluster is a one-line error."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise CurateError("[compute] engine = \"ray\" needs Ray: pip install 'curate-toolkit[ray]'") from None
    for name in ("ray", "ray.data"):  # the library never prints: Ray's notices stay in its log files
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS") or None
        try:
            ray.init(address=target, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise CurateError(f"cannot connect to the Ray cluster at {target}: {first_line(err)}") from None
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


class _ShardWorker:
    """A Ray Data actor: loads the model once, then works through one shard per batch."""

    def __init__(self, load: Callable[[], Any], work: Callable[[Any, Sequence[Any]], np.ndarray],
                 threads: int) -> None:
        if threads:  # a CPU actor computes with the CPUs it holds
            import torch

            torch.set_num_threads(threads)
        self.loaded = load()
        self.work = work

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = [pickle.dumps(np.asarray(self.work(self.loaded, pickle.loads(payload))))
                  for payload in batch["payload"]]
        return {"shard": batch["shard"], "values": np.array(values, dtype=object)}


def first_line(error: BaseException) -> str:
    """What failed on a worker, as one line: the deepest error Ray wrapped (RayTaskError, UserCodeException,
    ActorDiedError around it) that has a message; a CurateError's own message as it would read locally."""
    chain, seen = [], error
    while seen is not None and seen not in chain and len(chain) < 20:
        chain.append(seen)
        seen = getattr(seen, "cause", None) or seen.__cause__
    for candidate in reversed(chain):
        message = candidate.args[0] if isinstance(candidate, CurateError) and candidate.args else str(candidate)
        lines = [line.strip() for line in str(message).splitlines() if line.strip()]
        if lines:  # a wrapper's text is its traceback, whose last line names the error: curate's reads as locally
            return re.sub(r"^curate\.errors\.\w+: ", "", lines[0] if isinstance(candidate, CurateError)
                          else lines[-1])[:500]
    return type(error).__name__


def _ray_shards(shards: Sequence[Sequence[Any]], *, load: Callable[[], Any],
                work: Callable[[Any, Sequence[Any]], np.ndarray], address: str | None, gpus: int,
                actors: int) -> Iterator[tuple[int, np.ndarray]]:
    ray = connect(address)
    try:
        yield from _run_on_ray(ray, shards, load=load, work=work, gpus=gpus, actors=actors)
    except CurateError:
        raise
    except Exception as err:  # what failed on an actor (a model that is not what it should be, a missing file)
        raise CurateError(f"on the Ray cluster: {first_line(err)}") from None


def _run_on_ray(ray: Any, shards: Sequence[Sequence[Any]], *, load: Callable[[], Any],
                work: Callable[[Any, Sequence[Any]], np.ndarray], gpus: int,
                actors: int) -> Iterator[tuple[int, np.ndarray]]:
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if gpus:  # one actor per GPU
        size, cpus = actors or max(1, sum(int(n.get("GPU", 0)) for n in nodes)), 0
    else:  # one actor per node holding all its CPUs (one model copy per node), or ``actors`` sharing them
        total = sum(int(n.get("CPU", 0)) for n in nodes)
        size = actors or len(nodes)
        cpus = max(1, min(int(n.get("CPU", 1)) for n in nodes) if not actors else total // actors)
    items = [{"shard": i, "payload": pickle.dumps(list(shard))} for i, shard in enumerate(shards)]
    with warnings.catch_warnings():
        # Actors are not restarted: a lost actor fails the run, whose finished shards are cached, so a rerun
        # resumes. (Restarting one rebuilds it from arguments in the object store, which Ray's core reports on
        # every run, ray-project/ray#53727.) Ray 2.51+ deprecates passing max_restarts here without a successor.
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _ShardWorker, fn_constructor_kwargs={"load": load, "work": work, "threads": cpus}, batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(size, len(items))), num_gpus=gpus, num_cpus=cpus,
            max_restarts=0)
    for row in dataset.iter_rows():
        yield int(row["shard"]), pickle.loads(row["values"])
