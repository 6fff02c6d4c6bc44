"""Typed, strict configuration: a frozen dataclass per section; unknown keys are errors."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import tomllib

from curate.errors import ConfigError
from curate.files import staged
from curate.vocabulary import Method, RouteMode

T = TypeVar("T")
CONFIG_FILE = "curate.toml"


# what a learner sees of a completion: its embedding or a causal LM's states, either with "+length"
# (curate.scores.features)
FEATURES = ("embedding", "lm", "embedding+length", "lm+length")
LEARNER_NAMES = ("committee", "laplace", "mlp")  # curate.learners.LEARNERS (a test keeps the two alike)


@dataclass(frozen=True)
class ProjectSection:
    name: str


@dataclass(frozen=True)
class DatabaseSection:
    # A SQLite path is relative to the project directory; or a postgresql:// URL for a shared server.
    url: str = "sqlite:///curate.db"


@dataclass(frozen=True)
class ModelsSection:
    # Hub ids (resolved offline from the Hugging Face cache or a packaged model) or local folders.
    embedding: str = "sentence-transformers/all-MiniLM-L6-v2"
    policy: str = "HuggingFaceTB/SmolLM2-135M-Instruct"  # packaged as GGUF, dequantised into cache/models


@dataclass(frozen=True)
class SelectSection:
    """Defaults of ``curate select`` (its options override them per call)."""

    # used once the pool has labels; see `curate select --help` for all. cluster (proportional, random within
    # each cluster) is the one that never lost to random in docs/benchmarks.md; uncertainty did under real
    # annotator noise (UKP dev, votes oracle)
    strategy: str = "cluster"
    cold_start: str = "cluster"  # before any label: cluster | rules | reward-margin | random
    rules: str = ""  # the regex file the "rules" cold start reads (one pattern per line)
    random_frac: float = 0.1  # share of every round drawn at random: the random arm
    test_size: float = 0.1  # frozen test slice, reserved at the first round: a share (< 1) or a count of pairs
    calibration_size: float = 0.05  # calibration slice, likewise
    # a split name (e.g. "test"): at the first round its pairs (metadata ``split``, kept by ingest) become the whole
    # frozen test slice instead of a drawn one (test_size unused), and its pairs ingested later join it; "" draws it
    test_split: str = ""
    exclude_near_duplicates: bool = True  # never two of one near-duplicate group (curate dedup) in the labelled set
    seed: int = 0

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"[select] seed must be 0 or more, not {self.seed}")
        if not 0 <= self.random_frac <= 1:
            raise ConfigError(f"[select] random_frac must be between 0 and 1, not {self.random_frac}")
        for name in ("test_size", "calibration_size"):
            value = getattr(self, name)
            if value < 0 or (value >= 1 and value != int(value)):
                raise ConfigError(f"[select] {name} must be a share below 1 or a whole number of pairs, not {value}")
        if self.test_split != self.test_split.strip():
            raise ConfigError(f"[select] test_split must be a split's name (e.g. \"test\") or \"\", not "
                              f"{self.test_split!r}")


@dataclass(frozen=True)
class RouteSection:
    """How a selected pair becomes a ``rank`` or a ``rewrite`` item (``auto`` mode), in order:
    rewrite if its better completion's z-scored reward is below ``rewrite_reward_below`` (both weak);
    rank if the committee's P(A ≻ B) is within ``rank_uncertainty`` of 0.5 (a contested pair);
    rewrite if the policy's token entropy on either completion is above the pool's
    ``rewrite_entropy_quantile``; rank otherwise. A rule whose score is missing is skipped."""

    mode: RouteMode = RouteMode.AUTO  # auto | rank | rewrite | ranking (order all of a prompt's completions, 3-8)
    rewrite_reward_below: float = -1.0
    rank_uncertainty: float = 0.15
    rewrite_entropy_quantile: float = 0.9

    def __post_init__(self) -> None:
        if self.mode not in tuple(RouteMode):
            raise ConfigError(f"[route] mode must be one of {', '.join(RouteMode)}, not '{self.mode}'")
        object.__setattr__(self, "mode", RouteMode(self.mode))
        if not 0 <= self.rank_uncertainty <= 0.5:
            raise ConfigError(f"[route] rank_uncertainty must be between 0 and 0.5, not {self.rank_uncertainty}")
        if not 0 < self.rewrite_entropy_quantile <= 1:
            raise ConfigError(f"[route] rewrite_entropy_quantile must be in (0, 1], not "
                              f"{self.rewrite_entropy_quantile}")


@dataclass(frozen=True)
class LearnerSection:
    """The preference learner behind ``curate score committee`` (and so behind selection): ``name`` is
    committee (bootstrap Bradley–Terry heads), laplace (Bayesian Bradley–Terry) or mlp (a deep ensemble of
    small reward-margin networks); ``features`` is what it
    sees of a completion: embedding ([models] embedding) or lm (the [models] policy's hidden states after
    ``layer`` decoder layers: slower to compute once, more accurate; see docs/benchmarks.md), either with
    ``+length`` (its length as two more features: ``curate.scores.features``)."""

    name: str = "committee"
    features: str = "embedding"
    layer: int = 20
    c: float = 0.1  # inverse regularisation of each head
    members: int = 8  # heads of the committee

    def __post_init__(self) -> None:
        if self.name not in LEARNER_NAMES:
            raise ConfigError(f"[learner] name must be one of {', '.join(LEARNER_NAMES)}, not '{self.name}'")
        if self.features not in FEATURES:
            raise ConfigError(f"[learner] features must be one of {', '.join(FEATURES)}, not '{self.features}'")
        if self.layer < 1 or self.c <= 0 or self.members < 2:
            raise ConfigError("[learner] needs layer >= 1, c > 0 and members >= 2")


@dataclass(frozen=True)
class AnnotateSection:
    """The annotation app (``curate serve``): how work is shared out and who may log in."""

    overlap: int = 1  # judgments per item, each by a different person (e.g. 3 for agreement studies)
    gold_rate: float = 0.0  # share of served items that are known-answer (gold) pairs, to measure annotators
    prefill: bool = False  # pre-select the committee's suggested choice (anchors people; recorded per judgment)
    lease_minutes: int = 60  # an item not submitted within this is released to the queue again
    instructions: str = "instructions.md"  # markdown shown to annotators; editing it bumps the version
    max_failed_logins: int = 5  # wrong passwords in a row before the account is locked
    lockout_minutes: int = 15

    def __post_init__(self) -> None:
        if self.overlap < 1:
            raise ConfigError(f"[annotate] overlap must be 1 or more, not {self.overlap}")
        if not 0 <= self.gold_rate < 1:
            raise ConfigError(f"[annotate] gold_rate must be at least 0 and below 1, not {self.gold_rate}")
        if self.lease_minutes < 1 or self.max_failed_logins < 1 or self.lockout_minutes < 1:
            raise ConfigError("[annotate] lease_minutes, max_failed_logins and lockout_minutes must be 1 or more")
        if not self.instructions.strip():
            raise ConfigError("[annotate] instructions must name a markdown file")


@dataclass(frozen=True)
class LabelsSection:
    """How judgments become one final label per pair, and which pairs go to a lead for adjudication."""

    method: Method = Method.MAJORITY  # majority (ties go to adjudication) | dawid-skene (annotator reliability, EM)
    adjudicate_below: float = 0.5  # a winning share of votes below this goes to adjudication (ties always do)
    committee_confidence: float = 0.9  # so does a human choice the reward committee gives 1 - this or less
    ds_min_labels: int = 20  # Dawid-Skene: annotators with fewer labels share one pooled confusion matrix

    def __post_init__(self) -> None:
        if self.method not in tuple(Method):
            raise ConfigError(f"[labels] method must be one of {', '.join(Method)}, not {self.method!r}")
        object.__setattr__(self, "method", Method(self.method))
        if not 0 <= self.adjudicate_below <= 1:
            raise ConfigError(f"[labels] adjudicate_below must be between 0 and 1, not {self.adjudicate_below}")
        if self.ds_min_labels < 1:
            raise ConfigError(f"[labels] ds_min_labels must be 1 or more, not {self.ds_min_labels}")
        if not 0.5 < self.committee_confidence <= 1:
            raise ConfigError("[labels] committee_confidence must be above 0.5 and at most 1, "
                              f"not {self.committee_confidence}")


@dataclass(frozen=True)
class ComputeSection:
    """Where model work runs (``curate.compute``): ``device`` is auto (a GPU where torch sees one), cpu, cuda,
    cuda:N or mps; ``dtype`` is auto (bfloat16 on a GPU that has it, float16 on other GPUs, float32 on a CPU),
    float32, bfloat16 or float16. ``engine`` is local (this process) or ray (``curate.engine``: embedding, LM
    states, entropy, reward scores and generation on the Ray cluster at ``ray_address``, else RAY_ADDRESS, else
    a Ray started on this machine) with ``actors`` actors (0: one per GPU, or per node where it has none).
    ``generation`` is what samples ``curate generate``'s completions: auto (vLLM where it is installed and the
    device is a CUDA GPU, else transformers), transformers or vllm. ``--device``, ``--engine`` and ``--backend``
    on a command override them for one run."""

    device: str = "auto"
    dtype: str = "auto"
    engine: str = "local"
    ray_address: str = ""
    actors: int = 0
    generation: str = "auto"

    def __post_init__(self) -> None:
        from curate.compute import BACKENDS, check_device, check_dtype
        from curate.engine import ENGINES
        from curate.errors import CurateError

        try:
            check_device(self.device)
            check_dtype(self.dtype)
        except CurateError as err:
            raise ConfigError(f"[compute] {err}") from None
        if self.engine not in ENGINES:
            raise ConfigError(f"[compute] engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.actors < 0:
            raise ConfigError(f"[compute] actors must be 0 (one per GPU or CPU) or more, not {self.actors}")
        if self.generation not in BACKENDS:
            raise ConfigError(f"[compute] generation must be one of {', '.join(BACKENDS)}, not {self.generation!r}")

    def resolve(self, device: str | None = None) -> Any:
        """The ``curate.compute.Compute`` this section (or ``device``, where given) names on this machine, for work
        that runs in this process whatever the engine (training, the margin, drift, the report's curve)."""
        from curate.compute import Compute

        return Compute.of(device or self.device, self.dtype)

    def resolve_engine(self, device: str | None = None, *, engine: str | None = None) -> Any:
        """The ``curate.compute.Compute`` for work that runs on the engine (``engine``, where given, else this
        section's): its device is resolved where that work runs."""
        from curate.compute import Compute

        return Compute.of(device or self.device, self.dtype, engine=engine or self.engine,
                          address=self.ray_address or None, actors=self.actors)


@dataclass(frozen=True)
class ProjectConfig:
    """Everything in ``curate.toml``."""

    project: ProjectSection
    database: DatabaseSection = field(default_factory=DatabaseSection)
    models: ModelsSection = field(default_factory=ModelsSection)
    select: SelectSection = field(default_factory=SelectSection)
    route: RouteSection = field(default_factory=RouteSection)
    learner: LearnerSection = field(default_factory=LearnerSection)
    annotate: AnnotateSection = field(default_factory=AnnotateSection)
    labels: LabelsSection = field(default_factory=LabelsSection)
    compute: ComputeSection = field(default_factory=ComputeSection)


def from_mapping(cls: type[T], data: Any, *, where: str) -> T:
    """Build dataclass ``cls`` from ``data``; unknown or misspelt keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of keys, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown key '{key}' in {where}{hint} (valid keys: {', '.join(names)})")
    values = {}
    for name in names:
        if name not in data:
            continue
        kind, value = hints[name], data[name]
        if is_dataclass(kind):
            values[name] = from_mapping(kind, value, where=f"{where} [{name}]")
        elif isinstance(kind, type) and issubclass(kind, Enum):
            allowed = [str(v.value) for v in kind]
            if value not in allowed:
                raise ConfigError(f"{where}: '{name}' must be one of {', '.join(allowed)}, got {value!r}")
            values[name] = kind(value)
        elif not _matches(kind, value):
            raise ConfigError(f"{where}: '{name}' must be {_type_name(kind)}, got {value!r}")
        else:
            values[name] = value
    try:
        return cls(**values)
    except TypeError as err:
        missing = [f.name for f in fields(cls) if f.name not in values]  # type: ignore[arg-type]
        raise ConfigError(f"{where}: missing required key(s): {', '.join(missing)}") from err


def _matches(kind: Any, value: Any) -> bool:
    from typing import get_args, get_origin

    if get_origin(kind) is list:
        (item,) = get_args(kind) or (Any,)
        return isinstance(value, list) and all(_matches(item, v) for v in value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind) if isinstance(kind, type) else True


def _type_name(kind: Any) -> str:
    return {str: "text", int: "an integer", float: "a number", bool: "true or false"}.get(
        kind, "a list of text" if str(kind) == "list[str]" else str(kind))


def load_config(path: Path) -> ProjectConfig:
    """Read and validate ``curate.toml``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from None
    return from_mapping(ProjectConfig, data, where=str(path))


def dump_config(config: ProjectConfig) -> str:
    """TOML text for ``config`` (sections of scalar values)."""
    lines = ["# curate project configuration (strict: unknown keys are errors)"]
    for section in fields(config):
        lines.append(f"\n[{section.name}]")
        for item in fields(getattr(config, section.name)):
            value = getattr(getattr(config, section.name), item.name)
            lines.append(f"{item.name} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def update_config(path: Path, section: str, **values: Any) -> ProjectConfig:
    """Set keys of one section of the ``curate.toml`` at ``path``, validated as curate reads it; the new config.
    The file is rewritten as ``dump_config`` writes it (comments of one's own are not kept), with its mode."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        mode = path.stat().st_mode & 0o777
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read ({err})") from None
    data.setdefault(section, {}).update(values)
    config = from_mapping(ProjectConfig, data, where=str(path))
    with staged(path) as tmp:  # the mode is set before the file is in place
        tmp.write_text(dump_config(config), encoding="utf-8")
        tmp.chmod(mode)
    return config
