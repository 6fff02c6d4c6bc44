"""The adjudication queue (pairs a lead should decide, and why), a lead's decision, and what a lead sees of a
pair. A decision is a judgment of source ``adjudication``: the label rule puts it above everything else."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from curate.errors import CurateError
from curate.labels.rule import FinalLabel, decide, final_labels
from curate.labels.vocabulary import VOTER_SOURCES, Choice, How, Source, names
from curate.labels.votes import gather, read_judgments
from curate.project import Project
from curate.store import Connection, accounts, audit, judgments, pool, scores


@dataclass(frozen=True)
class QueueEntry:
    """A pair a lead should decide, and why."""

    pair_id: str
    record_id: str
    reason: str
    votes: dict[str, int]
    majority: str | None
    committee_p: float | None  # the latest committee's P(A better than B)


def adjudication_queue(project: Project, *, round_number: int | None = None) -> list[QueueEntry]:
    """Pairs a lead should decide, of those whose label people's votes decide (in the app, else an imported
    crowd's): ties, winning shares below ``[labels] adjudicate_below``, and majorities the latest reward
    committee contradicts with ``[labels] committee_confidence`` or more, judged on the votes themselves whatever
    ``[labels] method`` is (a lead may overrule Dawid–Skene). ``round_number`` keeps that round's pairs (with all
    their votes). Ties come first, then the weakest majorities, then the strongest contradictions."""
    rule = project.config.labels
    labels = final_labels(project, method="majority")
    with project.store.read() as conn:
        records = {p: r for p, r, _, _ in pool.pairs(conn)}
        run = scores.latest_run(conn, "committee")
        p_a = {} if run is None else scores.unit_values(conn, run_id=run.id, name="p_mean")
        in_round = None if round_number is None else {
            i.pair_id for i in judgments.round_items(conn, round_number=round_number)}
    queue: list[tuple[tuple[int, float], QueueEntry]] = []
    for pair, label in labels.items():
        if label.source not in VOTER_SOURCES or (in_round is not None and pair not in in_round):
            continue
        n, top, p = sum(label.votes.values()), max(label.votes.values()), p_a.get(pair)
        voted = label.choice
        backing = None if p is None or voted not in (Choice.A, Choice.B) else (p if voted == Choice.A else 1 - p)
        if label.how == How.TIED:
            key, reason = (0, 0.0), f"tie: {_describe(label.votes)}"
        elif n >= 2 and top / n < rule.adjudicate_below:
            key, reason = (1, top / n), f"weak majority {top}/{n}: {_describe(label.votes)}"
        elif backing is not None and backing <= 1 - rule.committee_confidence:
            key, reason = (2, backing), (f"the committee gives the people's choice ({voted.upper()}) "
                                         f"P = {backing:.2f}")
        else:
            continue
        queue.append((key, QueueEntry(pair, records[pair], reason, label.votes,
                                      str(voted) if voted is not None else None,
                                      None if p is None else round(float(p), 4))))
    return [entry for _, entry in sorted(queue, key=lambda q: (q[0], q[1].pair_id))]


def adjudicate(project: Project, *, pair: str, choice: str, note: str, lead: str,
               actor: str | None = None) -> FinalLabel:
    """Record lead ``lead``'s decision on ``pair`` (a pair id, or a unique prefix of 6+ characters) with a
    required note; the decision is a judgment (source ``adjudication``) plus an audit entry, in one
    transaction. A later decision on the same pair replaces it as the final label (both stay on record)."""
    if choice not in tuple(Choice):
        raise CurateError(f"choice must be one of {names(Choice)}, not {choice!r}")
    note = (note or "").strip()
    if not note:
        raise CurateError("an adjudication needs a note saying why (--note)")
    with project.store.write() as conn:
        pair_id, record_id = _find_pair(conn, pair)
        lead_id = accounts.lead_id(conn, name=lead)
        if lead_id is None:
            raise CurateError(f"{lead!r} is not a lead: only leads adjudicate (curate user add NAME --role lead)")
        item_id = judgments.latest_rank_item(conn, pair_id=pair_id)
        known = gather(read_judgments(conn, pair_ids=[pair_id]))
        votes = decide(known)[pair_id].votes if known.pairs() else {}  # the people's (else the crowd's) votes
        previous = known.adjudicated.get(pair_id)
        was = {"choice": str(previous[0]), "lead": previous[1]} if previous else None
        judgments.add_pair_judgment(conn, source=Source.ADJUDICATION, record_id=record_id, pair_id=pair_id,
                                    item_id=item_id, annotator_id=lead_id, choice=choice, reason=note,
                                    meta={"votes": votes, "previous": was})
        audit(conn, "adjudicate", entity="pair", entity_id=pair_id, actor=actor,
              details={"lead": lead, "choice": choice, "note": note, "votes": votes, "previous": was})
    return FinalLabel(pair_id, Choice(choice), How.ADJUDICATED, Source.ADJUDICATION, 1.0, votes, lead)


def pair_detail(project: Project, pair: str) -> dict[str, Any]:
    """What a lead needs to decide ``pair`` (an id or a unique prefix): the prompt, A and B, every judgment with
    its reason, and the final label so far."""
    with project.store.read() as conn:
        pair_id, _ = _find_pair(conn, pair)
        prompt, a, b = pool.pair_texts(conn, pair_id=pair_id)
        votes = judgments.pair_judgments(conn, pair_id=pair_id)
    label = final_labels(project).get(pair_id)
    return {"pair_id": pair_id, "prompt": prompt, "a": a, "b": b, "judgments": votes,
            "final": as_dict(label) if label else None}


def _find_pair(conn: Connection, pair: str) -> tuple[str, str]:
    """(pair id, record id) of the pair whose id is or starts with ``pair`` (6+ characters, unique)."""
    if len(pair) < 6:
        raise CurateError(f"pair id {pair!r} is too short: give 6 or more characters")
    found = judgments.pairs_with_prefix(conn, prefix=pair, limit=2)
    if len(found) != 1:
        raise CurateError(f"no pair {pair!r}" if not found else f"pair prefix {pair!r} is ambiguous: "
                          "give more characters")
    return found[0][0], found[0][1]


def _describe(votes: dict[str, int]) -> str:
    return ", ".join(f"{n} {c.upper() if len(c) == 1 else c.replace('_', ' ')}" for c, n in votes.items())


def as_dict(entry: Any) -> dict[str, Any]:
    """A final label or queue entry as plain data (for --json and the app); choices and sources as text."""
    return {k: (str(v) if isinstance(v, (Choice, How, Source)) else v) for k, v in asdict(entry).items()}

