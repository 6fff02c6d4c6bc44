"""Where model work runs: the device (``auto`` picks a GPU where torch sees one) and the precision models load in.

Embedding, LM states, token entropy, reward models, the DPO margin and generation all take a device from here;
on a GPU they load in bfloat16 where it supports it (float16 otherwise), on a CPU in float32. ``[compute]`` in
curate.toml sets both for a project, ``--device`` on a command for one run. Asking for a device torch does not
see is a one-line error, never a silent fall-back to the CPU.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from curate.errors import CurateError

DEVICES = "auto, cpu, cuda, cuda:N or mps"
DTYPES = ("auto", "float32", "bfloat16", "float16")
BACKENDS = ("auto", "transformers", "vllm")  # what samples completions (curate.train.sampling)
PROBE_SECONDS = 300  # how long a Ray cluster may take to give the first worker
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass(frozen=True)
class Compute:
    """A resolved device and the dtype name models load in there (``auto``: see ``model_dtype``), and the engine
    that runs the work (``curate.engine``). On the Ray engine the device is each actor's, which holds ``gpus``."""

    device: str = "cpu"
    dtype: str = "auto"
    engine: str = "local"
    address: str | None = None  # the Ray cluster's (else RAY_ADDRESS, else a Ray on this machine)
    actors: int = 0  # Ray actors (0: one per GPU of the cluster, or one per node where it has none)
    gpus: int = 0  # GPUs each Ray actor holds

    @classmethod
    def of(cls, device: str = "auto", dtype: str = "auto", *, engine: str = "local", address: str | None = None,
           actors: int = 0) -> Compute:
        """``device`` resolved where the work runs: on this machine for the local engine, on the Ray cluster's
        workers for Ray (a one-line error where it is absent)."""
        from curate.engine import ENGINES

        if engine not in ENGINES:
            raise CurateError(f"engine '{engine}' is not one of {', '.join(ENGINES)}")
        if engine == "local":
            return cls(resolve_device(device), check_dtype(dtype))
        resolved, dtype_name, gpus = cluster_resolve(check_device(device), check_dtype(dtype), address=address)
        return cls(resolved, dtype_name, engine, address, actors, gpus)

    def map_shards(self, shards: Sequence[Sequence[Any]], *, load: Callable[[], Any],
                   work: Callable[[Any, Sequence[Any]], Any]) -> Iterator[tuple[int, Any]]:
        """``(i, work(load(), shards[i]))`` as each shard finishes, on this engine (``curate.engine.map_shards``)."""
        from curate.engine import map_shards

        return map_shards(shards, load=load, work=work, engine=self.engine, address=self.address, gpus=self.gpus,
                          actors=self.actors)

    def torch_dtype(self) -> Any:
        return model_dtype(self.device, self.dtype)

    def exact(self) -> Compute:
        """The same device in float32 (for scores that differences of nearly equal numbers make: the margin)."""
        return replace(self, dtype="float32")

    def dtype_name(self) -> str:
        """The dtype models load in, by name (``float32``, ``bfloat16``, ``float16``)."""
        return str(self.torch_dtype()).removeprefix("torch.")

    def cache_tag(self) -> str:
        """What a cached score's kind carries of the precision: nothing for float32, else the dtype's name."""
        return "" if self.dtype_name() == "float32" else f"@{self.dtype_name()}"

    def describe(self) -> dict[str, str]:
        """What a score run records of where it was computed."""
        where = {"device": self.device, "dtype": self.dtype_name()}
        return where if self.engine == "local" else {**where, "engine": self.engine}


def pack(items: Sequence[Any], fits: Callable[[list[Any]], bool]) -> list[list[Any]]:
    """Consecutive runs of ``items``, each as long as ``fits(run)`` allows (one item always fits): the batches of
    every model step, sized by the padded tokens they hold."""
    runs: list[list[Any]] = []
    for item in items:
        if runs and fits([*runs[-1], item]):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def cluster_resolve(device: str, dtype: str, *, address: str | None = None) -> tuple[str, str, int]:
    """Where Ray actors will run and in what: ``(device, dtype name, GPUs per actor)``, decided on the cluster
    (its GPUs, and on one of them the dtype ``auto`` picks there), not on this machine, which may have none."""
    from curate import __version__
    from curate.engine import connect, first_line

    ray = connect(address)
    cluster_gpus = int(ray.cluster_resources().get("GPU", 0))
    if device == "mps" or (device.startswith("cuda:") and device != "cuda:0"):
        raise CurateError(f"device '{device}' cannot be given to Ray actors: Ray assigns each actor its GPU; "
                          "use auto, cuda or cpu with engine = \"ray\"")
    gpus = 0 if device == "cpu" or (device == "auto" and cluster_gpus == 0) else 1
    if gpus and not cluster_gpus:
        raise CurateError(f"device '{device}' was asked for, but the Ray cluster has no GPUs; use --device cpu (or "
                          "auto)")
    probe = ray.remote(num_gpus=gpus, num_cpus=0 if gpus else 1)(_worker_setup)
    try:
        version, dtype_name = ray.get(probe.remote("cuda:0" if gpus else "cpu", dtype), timeout=PROBE_SECONDS)
    except ray.exceptions.GetTimeoutError:
        raise CurateError(f"no Ray worker with {'a GPU' if gpus else 'a CPU'} was free within {PROBE_SECONDS} s to "
                          "start on; is the cluster busy?") from None
    except Exception as err:  # e.g. curate is not installed on the workers
        raise CurateError(f"a Ray worker could not start curate's work: {first_line(err)}") from None
    if version != __version__:
        raise CurateError(f"the Ray cluster's workers run curate {version}, this driver {__version__}: install the "
                          "same version on every node")
    return ("cuda:0" if gpus else "cpu"), dtype_name, gpus


def _worker_setup(device: str, dtype: str) -> tuple[str, str]:
    """On a worker: curate's version and the dtype models load in on ``device`` there."""
    from curate import __version__

    return __version__, Compute(device, dtype).dtype_name()


def check_device(spec: str) -> str:
    """``spec`` if it names a device (whether or not this machine has it), else a one-line error."""
    if not isinstance(spec, str) or not _DEVICE.fullmatch(spec):
        raise CurateError(f"device '{spec}' is not one of {DEVICES}")
    return spec


def check_dtype(name: str) -> str:
    if name not in DTYPES:
        raise CurateError(f"dtype '{name}' is not one of {', '.join(DTYPES)}")
    return name


def resolve_device(spec: str = "auto") -> str:
    """The torch device ``spec`` names on this machine: ``auto`` is the first GPU where torch sees one (CUDA, then
    Apple's MPS), else the CPU. A named device torch does not see is a one-line error."""
    import torch

    check_device(spec)
    if spec == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        return "mps" if _has_mps() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "mps":
        if not _has_mps():
            raise CurateError("device 'mps' was asked for, but torch sees no Apple GPU (MPS) on this machine")
        return "mps"
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + (" (a CPU-only build)" if torch.version.cuda is None else "")
        raise CurateError(f"device '{spec}' was asked for, but {build} sees no CUDA GPU on this machine; use "
                          "--device cpu (or auto), or install a CUDA build of torch")
    index = int(spec.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise CurateError(f"device '{spec}' was asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s) "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return f"cuda:{index}"


def model_dtype(device: str, name: str = "auto") -> Any:
    """The torch dtype models load in on ``device``: ``auto`` is bfloat16 on a CUDA GPU that has it in hardware
    (Ampere and later), float16 on older CUDA GPUs and on Apple's MPS, float32 on the CPU."""
    import torch

    check_dtype(name)
    if name != "auto":
        return getattr(torch, name)
    if device.startswith("cuda"):  # bfloat16 in hardware from Ampere (compute capability 8) on
        major, _ = torch.cuda.get_device_capability(int(device.partition(":")[2] or 0))
        return torch.bfloat16 if major >= 8 else torch.float16
    return torch.float16 if device == "mps" else torch.float32


def _has_mps() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
