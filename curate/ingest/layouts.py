"""Which layout reads a file: recognised from its columns (first match wins) or described by ``--map``; and the
row's columns the layout does not read, kept as metadata.

The layouts themselves live in ``rows`` (the contract), ``fields`` (column roles: TRL's types, ``--map``),
``known`` (UKPConvArg1, PandaLM, Chatbot Arena, chat) and ``ranked`` (a prompt with N scored completions).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from curate.errors import InputError
from curate.ingest.fields import PAIR_VALUES, RATING_VALUES, Fields
from curate.ingest.known import Arena, Chat, PandaLM, UKPConvArg
from curate.ingest.ranked import PAIR_RULES, TEXT_FIELDS, Ranked
from curate.ingest.rows import Layout, Parsed
from curate.ingest.values import NOT_KEPT, kept_value
from curate.labels.vocabulary import CHOICES

__all__ = ["CHOICES", "LAYOUTS", "PAIR_RULES", "Layout", "detect_layout", "mapped_layout", "parse_row",
           "with_pair_rule"]

LAYOUTS: list[Layout] = [
    UKPConvArg(),
    PandaLM(),
    Arena(),
    Ranked("ultrafeedback", prompt=["instruction"], completions=["completions"]),
    Fields("ultrafeedback-binarized", {"prompt": ["prompt"], "chosen": ["chosen"], "rejected": ["rejected"],
                                       "score": ["score_chosen", "score_rejected"]}, optional=("messages",)),
    Fields("preference", {"prompt": ["prompt"], "chosen": ["chosen"], "rejected": ["rejected"]}),
    Fields("implicit-preference", {"chosen": ["chosen"], "rejected": ["rejected"]}),
    Fields("unpaired-preference", {"prompt": ["prompt"], "completion": ["completion"], "label": ["label"]},
           RATING_VALUES),
    Ranked("ranked", prompt=["prompt"], completions=["responses", "completions", "outputs"],
           score_columns=("ratings", "scores", "rewards")),
    Fields("prompt-completion", {"prompt": ["prompt"], "completion": ["completion"]}),
    Chat(),
    Fields("prompt-only", {"prompt": ["prompt"]}),
]

MAP_ROLES = ("prompt", "chosen", "rejected", "a", "b", "completion", "completions", "score", "label", "gold", "id")


def detect_layout(columns: set[str] | dict[str, Any], where: str) -> Layout:
    """The first layout whose columns are all present (``columns``: a row, or its column names)."""
    for layout in LAYOUTS:
        if layout.matches(set(columns)):
            return layout
    example = "prompt=question,a=answer_1,b=answer_2,label=winner"
    if isinstance(columns, dict):  # a list of texts is most likely the completions
        lists = [k for k, v in columns.items() if _texts_list(v)]
        texts = [k for k, v in columns.items() if isinstance(v, str)]
        if lists and texts:
            example = f"prompt={texts[0]},completions={lists[0]}"
    raise InputError(f"{where}: cannot tell the layout from the columns ({', '.join(sorted(columns)) or 'none'}); "
                     f"use --map, e.g. --map {example}")


def _texts_list(value: Any) -> bool:
    """A non-empty list of texts, or of objects with a text field: what completions look like."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, str) or (isinstance(v, dict) and any(f in v for f in TEXT_FIELDS)) for v in value)


def with_pair_rule(layout: Layout, rule: str | None) -> Layout:
    """``layout`` deriving its pairs by ``rule`` (rank-N layouts only; None keeps the layout's own)."""
    if rule is None:
        return layout
    if not isinstance(layout, Ranked):
        raise InputError(f"--pairs applies to rank-N layouts (a prompt with a list of completions), not to "
                         f"'{layout.name}'")
    return replace(layout, rule=rule)


def parse_row(layout: Layout, row: dict[str, Any], *, used: set[str]) -> Parsed:
    """``layout.parse(row)`` with the row's other columns (those not in ``used``) kept as its metadata, and a note
    where such a column holds a list that could have been the completions."""
    parsed = layout.parse(row)
    kept = {}
    for key, value in row.items():
        if key in used:
            continue
        value, note = kept_value(value, f"field '{key}'")
        if note:
            parsed.notes.append(f"column '{key}' {note} in the metadata")
        if value is not NOT_KEPT:
            kept[key] = value
    parsed.meta = {**kept, **parsed.meta}
    if not isinstance(layout, Ranked) and len(parsed.completions) < 2:
        for key, value in kept.items():
            if _texts_list(value):
                parsed.notes.append(f"column '{key}' holds a list of texts, kept as metadata; to read it as the "
                                    f"prompt's completions: --map prompt=COLUMN,completions={key}")
    return parsed


def used_columns(layout: Layout, columns: set[str]) -> set[str]:
    return {c for names in layout.roles(columns).values() for c in names}


def mapped_layout(spec: str, label_values: str | None, *, annotator_prefix: str,
                  pair_rule: str | None = None) -> Layout:
    """A layout from ``--map role=COL[+COL],...`` and ``--label-values VALUE=CHOICE,...``."""
    columns = _map_roles(spec)
    roles = set(columns)
    if "completions" not in roles:
        return _mapped_fields(columns, label_values, annotator_prefix=annotator_prefix, pair_rule=pair_rule)
    if roles - {"prompt", "completions", "score", "id"}:
        raise InputError("--map: completions takes prompt, score and id, not "
                         f"{', '.join(sorted(roles - {'prompt', 'completions', 'score', 'id'}))}")
    if "prompt" not in roles or label_values:
        raise InputError("--map: completions needs a prompt column" if "prompt" not in roles else
                         "--label-values needs a label column in --map")
    _one_role_per_column(columns)
    return Ranked("map", prompt=columns["prompt"], completions=columns["completions"],
                  score=columns.get("score", [None])[0], rule=pair_rule or "all",
                  id_column=columns.get("id", [None])[0])


def _mapped_fields(columns: dict[str, list[str]], label_values: str | None, *, annotator_prefix: str,
                   pair_rule: str | None) -> Fields:
    roles = set(columns)
    if pair_rule is not None:
        raise InputError("--pairs applies to rank-N layouts: map a list column with completions=COL")
    pair = {"chosen", "rejected"} & roles or {"a", "b"} & roles
    if ({"chosen", "rejected"} & roles and not {"chosen", "rejected"} <= roles) or (
            {"a", "b"} & roles and not {"a", "b"} <= roles):
        raise InputError("--map: a pair needs both chosen and rejected, or both a and b")
    if len([g for g in ({"chosen"}, {"a"}, {"completion"}) if g & roles]) > 1:
        raise InputError("--map: give one of chosen/rejected, a/b or completion")
    if "prompt" not in roles and "chosen" not in roles:
        raise InputError("--map: a prompt column is needed (only chosen/rejected transcripts may omit it)")
    for role in ("label", "gold"):
        if role in roles and not ({"a"} & roles or "completion" in roles):
            raise InputError(f"--map: {role} needs a/b (pair choices) or completion (good/bad ratings)")
    if "gold" in roles and len(columns["gold"]) > 1:
        raise InputError("--map: gold takes one column")
    if "score" in roles and len(columns["score"]) != (2 if pair else 1):
        raise InputError("--map: score takes one column per completion: " +
                         ("score=CHOSEN_SCORE+REJECTED_SCORE" if pair else "score=COLUMN"))
    targets = PAIR_VALUES if pair else RATING_VALUES
    values = dict(targets)
    for part in filter(None, (p.strip() for p in (label_values or "").split(","))):
        value, sep, target = part.partition("=")
        target = target.strip().lower()
        allowed = sorted(set(targets.values()))
        if not sep or target not in allowed:
            raise InputError(f"--label-values: '{part}' must be VALUE=ONE_OF({'|'.join(allowed)})")
        values[value.strip().lower()] = target
    if label_values and not {"label", "gold"} & roles:
        raise InputError("--label-values needs a label column in --map")
    _one_role_per_column(columns)
    return Fields("map", columns, values, annotator_prefix)


def _map_roles(spec: str) -> dict[str, list[str]]:
    columns: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        role, sep, cols = part.partition("=")
        role = role.strip()
        if not sep or not cols.strip():
            raise InputError(f"--map: '{part}' is not ROLE=COLUMN")
        if role not in MAP_ROLES:
            raise InputError(f"--map: unknown role '{role}' (roles: {', '.join(MAP_ROLES)})")
        if role in columns:
            raise InputError(f"--map: role '{role}' is given twice")
        names = [c.strip() for c in cols.split("+")]
        if len(names) > 1 and role not in ("prompt", "label", "score"):
            raise InputError(f"--map: only prompt, label and score take several columns, not '{role}'")
        columns[role] = names
    return columns


def _one_role_per_column(columns: dict[str, list[str]]) -> None:
    roles_of: dict[str, str] = {}
    for role, names in columns.items():
        for name in names:
            if name in roles_of:  # a=X,b=X would pair every text with itself
                raise InputError(f"--map: column '{name}' is given to both {roles_of[name]} and {role}")
            roles_of[name] = role
