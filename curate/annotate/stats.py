"""Progress of the open rounds, per-annotator statistics and the leads' list of flagged items."""

from __future__ import annotations

import statistics
from typing import Any

from curate.annotate.users import User
from curate.config import AnnotateSection
from curate.labels.vocabulary import Source
from curate.store import Connection, Store, accounts, annotation_stats
from curate.store.annotation_stats import Judged

PREVIEW = 120


def round_progress(conn: Connection, overlap: int) -> list[dict[str, Any]]:
    """For each open round: items, items with ``overlap`` judgments (complete), judgments done / needed.
    Gold items are left out: they measure annotators and need no overlap."""
    rows = []
    for number, done in annotation_stats.done_per_open_round(conn):
        items, complete, judged = len(done), sum(v >= overlap for v in done), sum(min(v, overlap) for v in done)
        rows.append({"round": number, "items": items, "complete": complete, "judgments": judged,
                     "needed": items * overlap})
    return rows


def progress_line(store: Store, user: User, rule: AnnotateSection) -> str:
    """One markdown line: who is logged in, their counts, and each open round's completion."""
    with store.read() as conn:
        mine = annotation_stats.open_round_statuses(conn, annotator_id=user.id)
        rounds = round_progress(conn, rule.overlap)
    parts = [f"**{user.name}** ({user.role}) · done {mine.get('done', 0)} · assigned {mine.get('open', 0)}"
             + (f" · skipped {mine['skipped']}" if mine.get("skipped") else "")]
    parts += [f"round {r['round']}: {r['complete']} / {r['items']} items complete "
              f"({r['judgments']} / {r['needed']} judgments)" for r in rounds]
    return " · ".join(parts) if rounds else parts[0] + " · no open round"


def annotator_stats(store: Store, *, only: int | None = None) -> list[dict[str, Any]]:
    """Per app user: judgments, skips, flags, median seconds per judgment, and accuracy on gold items."""
    with store.read() as conn:
        gold_items = annotation_stats.gold_items(conn)
        rows = []
        for account in accounts.app_accounts(conn, account_id=only):
            judged = annotation_stats.judged_by(conn, annotator_id=account.id, source=Source.APP)
            skipped = annotation_stats.skipped_count(conn, annotator_id=account.id)
            flags = annotation_stats.flag_count(conn, annotator_id=account.id)
            correct, scored = _gold_accuracy(conn, judged, gold_items)
            times = [j.time_ms / 1000 for j in judged if j.time_ms is not None]
            rows.append({"annotator": account.name, "role": account.role, "judgments": len(judged),
                         "skipped": skipped, "flagged": flags,
                         "median_s": round(statistics.median(times), 1) if times else None,
                         "gold_judged": scored, "gold_accuracy": round(correct / scored, 3) if scored else None})
    return rows


def _gold_accuracy(conn: Connection, judged: list[Judged], gold_items: set[int]) -> tuple[int, int]:
    """Right answers and answers on gold items (judgments whose item came from the gold arm)."""
    mine = [j for j in judged if j.item_id in gold_items and j.pair_id is not None]
    if not mine:
        return 0, 0
    from curate.labels.votes import gather, read_judgments

    answers = gather(read_judgments(conn, pair_ids={j.pair_id for j in mine}), sources=[Source.GOLD]).gold
    return sum(answers.get(j.pair_id) == j.choice for j in mine), len(mine)


def flagged_items(store: Store) -> list[dict[str, Any]]:
    """Every flagged item, newest first: round, item, who, when, why, and the start of the prompt."""
    with store.read() as conn:
        rows = annotation_stats.flagged(conn)
    return [{"round": r.round, "item": r.item_id, "kind": r.kind, "by": r.by,
             "at": r.at.isoformat(timespec="seconds"), "reason": r.reason,
             "prompt": r.prompt[:PREVIEW] + ("…" if len(r.prompt) > PREVIEW else "")} for r in rows]
