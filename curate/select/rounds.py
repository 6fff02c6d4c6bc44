"""Building a round: the frozen test and calibration slices (reserved once), the strategy (or the cold
start while the pool has no labels), the random arm, near-duplicate exclusion, routing, the items in
the store, the audit entry and ``rounds/NNNN/manifest.json``. Same seed and same state give the same
manifest, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.files import publish_text
from curate.ids import member_mask
from curate.project import Project
from curate.select.candidates import PoolContext, build_pool_view
from curate.select.filters import (
    Where,
    late_split_positions,
    restrict,
    split_positions,
    where_conditions,
    where_mask,
)
from curate.select.routing import route_pairs
from curate.strategies import NoNearDuplicates, PoolView, Quotas, RandomMix, Strategy, make_strategy
from curate.strategies.stratified import allocate

COLD_STARTS = ("cluster", "rules", "reward-margin", "random")  # strategies that need no labels


@dataclass
class RoundResult:
    number: int
    strategy: str
    cold_start: bool
    items: int
    routes: dict[str, int]
    arms: dict[str, int]
    reserved: dict[str, int]  # slices reserved by this round (only the first reserves)
    manifest: Path
    notes: list[str]


def slice_size(size: float, n: int) -> int:
    return round(size * n) if size < 1 else int(size)


def reserve_slices(pool: PoolView, context: PoolContext, *, test_size: float, calibration_size: float,
                   rng: np.random.Generator, test: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Positions of the frozen test and calibration slices: stratified by cluster where there are
    clusters, from pairs with a known label first (a test slice needs answers; slice pairs without one
    become rank items of the first round, arm "test"/"calibration"), and each pair's near-duplicates in
    the same slice as it (so nothing leaks from test into training). ``test``: the test slice's positions,
    taken whole instead of drawn (the [select] test_split pairs; ``test_size`` is then not used)."""
    n = len(pool)
    sizes = {"test": slice_size(test_size, n) if test is None else len(test),
             "calibration": slice_size(calibration_size, n)}
    if sum(sizes.values()) >= n:
        lower = "test_size / calibration_size" if test is None else "calibration_size, or set another test_split,"
        raise CurateError(f"the test ({sizes['test']}) and calibration ({sizes['calibration']}) slices would take "
                          f"all {n} pairs: lower [select] {lower} in curate.toml")
    strata = pool.groups.get("cluster", np.zeros(n, dtype=np.int64))
    known = member_mask(pool.ids, context.known_labels)
    taken = pool.labelled | pool.excluded
    out = {}
    if test is not None:
        out["test"] = np.array(sorted(set(np.asarray(test).tolist())), dtype=np.int64)
        taken = taken.copy()
        taken[out["test"]] = True
        sizes.pop("test")
    for name, size in sizes.items():
        picks: set[int] = set()
        for tier in (known, ~known):  # labelled pairs first; the rest only if there are too few
            free = np.flatnonzero(tier & ~taken)
            want = min(size - len(picks), len(free))
            if want <= 0:
                continue
            names, counts = np.unique(strata[free], return_counts=True)
            for stratum, k in zip(names, allocate(counts, want, "proportional"), strict=True):
                added = 0
                for i in rng.permutation(free[strata[free] == stratum]).tolist():
                    if added >= k:
                        break
                    if i in picks:
                        continue
                    group = [i] if pool.duplicates is None or pool.duplicates[i] < 0 else \
                        np.flatnonzero((pool.duplicates == pool.duplicates[i]) & ~taken).tolist()
                    added += len(set(group) - picks)  # a pair's near-duplicates join it, and count
                    picks.update(group)
            taken = taken.copy()
            taken[list(picks)] = True
        out[name] = np.array(sorted(picks), dtype=np.int64)
    return out


def choose_strategy(project: Project, name: str | None, options: dict[str, Any]) -> tuple[Strategy, bool]:
    """The strategy to run and whether it is the cold start (no pair has a label yet)."""
    from curate.labels import training_labels

    config = project.config.select
    cold = not training_labels(project)
    if cold and name is None:
        name = config.cold_start
        if name not in COLD_STARTS:
            raise CurateError(f"[select] cold_start must be one of {', '.join(COLD_STARTS)}, not "
                              f"'{config.cold_start}'")
    name = name or config.strategy
    if name == "rules" and "path" not in options:
        rules = Path(config.rules) if config.rules else None
        options = {**options, "path": str(rules if rules is None or rules.is_absolute() else project.root / rules)
                   if rules else ""}
    return make_strategy(name, **options), cold


def select_round(project: Project, *, budget: int, strategy: str | None = None, options: dict[str, Any] | None = None,
                 random_frac: float | None = None, seed: int | None = None, route: str | None = None,
                 quota: tuple[str, float, float] | None = None, where: Iterable[str | Where] | None = None
                 ) -> RoundResult:
    """Choose ``budget`` pairs for experts (reserving the slices at the first round) and store the round.
    ``quota``: (grouping, min share, max share) of the strategy's part, e.g. ("cluster", 0.02, 0.3) or
    ("topic", 0, 0.1); groupings are ``cluster`` and the pairs' metadata keys. ``where``: conditions on the
    pairs' metadata that every candidate of this round (both arms) meets, e.g. ["language=en,de",
    "subset!=code"]; the slices are still reserved from the whole pool."""
    conditions = where_conditions(where)
    config = project.config.select
    seed = config.seed if seed is None else seed
    random_frac = config.random_frac if random_frac is None else random_frac
    if seed < 0 or not 0 <= random_frac <= 1:
        raise CurateError(f"the seed must be 0 or more and the random fraction between 0 and 1, not {seed} and "
                          f"{random_frac}")
    chosen_strategy, cold = choose_strategy(project, strategy, options or {})
    repaired = repair_manifests(project, problems=("missing", "incomplete"))  # an earlier select killed midway
    pool, context = build_pool_view(project, with_texts=chosen_strategy.name == "rules")
    matching = where_mask(context, conditions) if conditions else None
    rng = np.random.default_rng(seed)
    reserved = {}
    if not context.slices:
        test = split_positions(pool, context, config.test_split) if config.test_split else None
        reserved = reserve_slices(pool, context, test_size=config.test_size,
                                  calibration_size=config.calibration_size, rng=rng, test=test)
    elif config.test_split:  # pairs of the test split ingested (or test_split set) after the first round
        late = late_split_positions(pool, context, config.test_split)
        reserved = {"test": late} if len(late) else {}
    if reserved:
        excluded = pool.excluded.copy()
        for positions in reserved.values():
            excluded[positions] = True
        pool = replace(pool, excluded=excluded)
    if pool.duplicates is not None:  # a near-duplicate of a slice pair (found by a later dedup) would leak
        in_slice = member_mask(pool.ids, context.slices)
        for positions in reserved.values():
            in_slice[positions] = True
        sliced = pool.duplicates[in_slice]
        leaks = np.isin(pool.duplicates, sliced[sliced >= 0]) & ~pool.excluded
        if leaks.any():
            context.notes.append(f"{int(leaks.sum())} near-duplicates of test/calibration pairs left out")
            pool = replace(pool, excluded=pool.excluded | leaks)
    if matching is not None:
        pool = restrict(pool, context, conditions, matching)
    wrapped, random_arm = chosen_strategy, make_strategy("random")
    if config.exclude_near_duplicates and pool.duplicates is not None:
        wrapped, random_arm = NoNearDuplicates(wrapped), NoNearDuplicates(random_arm)
    if quota:
        wrapped = Quotas(wrapped, by=quota[0], min_share=quota[1], max_share=quota[2])
    mix = RandomMix(wrapped, frac=random_frac, random=random_arm)
    positions, arms = mix.select_with_arms(pool, budget, rng)
    ranking = (route or project.config.route.mode) == "ranking"
    routes = route_pairs(pool, positions, project.config.route, mode=route,
                         completions=_completions_per_pair(project, context) if ranking else None,
                         records=[record for _, record, _, _ in context.pairs] if ranking else None)
    manifest = _manifest(project, pool, context, positions, arms, routes, reserved, strategy=chosen_strategy,
                         cold=cold, seed=seed, budget=budget, random_frac=random_frac, options=options or {})
    manifest["quota"] = dict(zip(("by", "min_share", "max_share"), quota, strict=True)) if quota else None
    manifest["where"] = [c.as_dict() for c in conditions] or None
    number = _store_round(project, pool, context, positions, arms, routes, reserved, manifest)
    path = write_manifest(project, number, manifest)
    notes = [f"round {n}'s manifest was {why}: rewritten from the store" for n, why in repaired.items()]
    return RoundResult(number=number, strategy=chosen_strategy.name, cold_start=cold, items=len(positions),
                       routes=_count(str(r.kind) for r in routes), arms=_count(arms),
                       reserved={k: len(v) for k, v in reserved.items()}, manifest=path,
                       notes=notes + context.notes)


def _completions_per_pair(project: Project, context: PoolContext) -> np.ndarray:
    """How many completions the prompt of each pool pair has."""
    from curate.store import pool as pool_store

    with project.store.read() as conn:
        counts = pool_store.completions_per_record(conn)
    return np.array([counts.get(record_id, 0) for _, record_id, _, _ in context.pairs])


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def _manifest(project: Project, pool: PoolView, context: PoolContext, positions: np.ndarray, arms: list[str],
              routes: list[Any], reserved: dict[str, np.ndarray], *, strategy: Strategy, cold: bool, seed: int,
              budget: int, random_frac: float, options: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import asdict

    items = []
    for order, (i, arm, route) in enumerate(zip(positions.tolist(), arms, routes, strict=True), 1):
        pair_id, record_id, a_id, b_id = context.pairs[i]
        why = (f"{strategy.criterion} (#{order} of {arms.count('strategy')})" if arm == "strategy"
               else "random arm: drawn at random, the baseline the strategy is measured against")
        items.append({
            "order": order, "pair_id": pair_id, "record_id": record_id, "arm": arm, "route": route.kind,
            "rewrite_completion": {"a": a_id, "b": b_id}[route.side] if route.kind == "rewrite" else None,
            "why": why, "route_reason": route.reason,
            "cluster": int(pool.groups["cluster"][i]) if "cluster" in pool.groups else None,
            "scores": {name: float(values[i]) for name, values in sorted(pool.scores.items())}})
    return {
        "strategy": strategy.name, "criterion": strategy.criterion, "options": options, "cold_start": cold,
        "seed": seed, "budget": budget, "random_frac": random_frac,
        "config": {"select": asdict(project.config.select), "route": asdict(project.config.route)},
        "models": {"embedding": context.embedding_model, "scores": context.score_runs,
                   "cluster_run": context.cluster_run},
        "pool": {"pairs": len(pool), "labelled": int(pool.labelled.sum()), "excluded": int(pool.excluded.sum()),
                 "available": len(pool.available)},
        "slices_reserved": {name: [context.pairs[i][0] for i in rows.tolist()] for name, rows in reserved.items()},
        "slice_items": [{"pair_id": context.pairs[i][0], "record_id": context.pairs[i][1], "slice": name}
                        for name, rows in reserved.items() for i in rows.tolist()
                        if context.pairs[i][0] not in context.known_labels],
        "notes": context.notes, "items": items}


def _store_round(project: Project, pool: PoolView, context: PoolContext, positions: np.ndarray, arms: list[str],
                 routes: list[Any], reserved: dict[str, np.ndarray], manifest: dict[str, Any]) -> int:
    """Round, slices and items in one transaction, refused if another selection got there first."""
    from curate.store import audit, rounds

    with project.store.write() as conn:
        taken = rounds.taken_pairs(conn)
        sliced = set(rounds.slices(conn))
        ids = [context.pairs[i][0] for i in positions.tolist()]
        reserving = {context.pairs[i][0] for rows in reserved.values() for i in rows.tolist()}
        if taken & set(ids) or reserving & (sliced | taken) or sliced - set(context.slices):
            raise CurateError("another selection changed the pool while this one ran: run curate select again")
        number = rounds.add_round(
            conn, strategy=manifest["strategy"], seed=manifest["seed"], config=manifest,
            slices=[(context.pairs[i][0], name) for name, rows in reserved.items() for i in rows.tolist()],
            items=[{"record_id": item["record_id"], "pair_id": item["pair_id"],
                    "completion_id": item["rewrite_completion"], "kind": item["route"], "arm": item["arm"],
                    "score": None, "reason": item["why"]} for item in manifest["items"]] + [
                   {"record_id": item["record_id"], "pair_id": item["pair_id"], "completion_id": None,
                    "kind": "rank", "arm": item["slice"], "score": None,
                    "reason": f"{item['slice']} slice: needs a label to measure models against"}
                   for item in manifest["slice_items"]])
        audit(conn, "select", entity="round", entity_id=str(number),
              details={"strategy": manifest["strategy"], "seed": manifest["seed"], "items": len(ids),
                       "reserved": {k: len(v) for k, v in reserved.items()}})
    return number


def manifest_path(project: Project, number: int) -> Path:
    """Where round ``number``'s manifest lives: ``rounds/NNNN/manifest.json``."""
    return project.root / "rounds" / f"{number:04d}" / "manifest.json"


def _manifest_text(number: int, manifest: dict[str, Any]) -> str:
    return json.dumps({"round": number, **manifest}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_manifest(project: Project, number: int, manifest: dict[str, Any]) -> Path:
    """``rounds/NNNN/manifest.json``, written whole and renamed into place."""
    return publish_text(manifest_path(project, number), _manifest_text(number, manifest))


def manifest_problems(project: Project) -> dict[int, str]:
    """Rounds in the store whose manifest is ``missing`` (a kill between storing the round and writing it),
    ``incomplete`` (not JSON), ``differs from the store`` (edited) or ``unreadable``: round number -> which."""
    from curate.store import reports

    with project.store.read() as conn:
        stored = reports.rounds(conn)
    problems = {}
    for round_ in stored:
        try:
            text = manifest_path(project, round_.number).read_text(encoding="utf-8")
        except FileNotFoundError:
            problems[round_.number] = "missing"
            continue
        except (IsADirectoryError, PermissionError) as err:
            problems[round_.number] = f"unreadable ({err.strerror})"
            continue
        except UnicodeDecodeError:
            text = ""
        if text == _manifest_text(round_.number, round_.config):
            continue
        try:
            json.loads(text)
            problems[round_.number] = "differs from the store"
        except ValueError:
            problems[round_.number] = "incomplete"
    return problems


def repair_manifests(project: Project, *, number: int | None = None,
                     problems: tuple[str, ...] = ("missing", "incomplete", "differs from the store")
                     ) -> dict[int, str]:
    """Rewrite from the store (the round row keeps the whole manifest) the manifest of round ``number``, or of
    every round with one of ``problems``: byte for byte what ``select`` wrote. Round number -> what was wrong
    (``ok`` for a named round whose manifest was right)."""
    from curate.store import reports

    with project.store.read() as conn:
        stored = {r.number: r.config for r in reports.rounds(conn)}
    if number is not None and number not in stored:
        raise CurateError(f"there is no round {number} (see curate status)")
    found = manifest_problems(project)
    wanted = {number: found.get(number, "ok")} if number is not None else \
        {n: why for n, why in found.items() if why in problems}
    for n in wanted:
        write_manifest(project, n, stored[n])
    return wanted


def set_round_status(project: Project, number: int, status: str) -> None:
    """Close round ``number`` (the app then hands out and accepts nothing more of it) or open it again."""
    from curate.store import audit, rounds

    if status not in ("open", "closed"):
        raise CurateError(f"a round is open or closed, not '{status}'")
    with project.store.write() as conn:
        current = rounds.round_status(conn, number=number)
        if current is None:
            raise CurateError(f"there is no round {number} (see curate status)")
        if current == status:
            raise CurateError(f"round {number} is already {status}")
        rounds.set_round_status(conn, number=number, status=status)
        audit(conn, f"round.{'close' if status == 'closed' else 'reopen'}", entity="round", entity_id=str(number))
