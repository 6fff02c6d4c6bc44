"""Simulated annotators: accounts that work the app's own queue (assignments, overlap, submits) and answer
each pair from a known answer key, e.g. the votes of a labelled file ingested without its labels
(``known_choices``). ``curate demo`` uses them; so can a team that rehearses a round before people start."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from curate.annotate.instructions import current_instructions
from curate.annotate.queue import next_item
from curate.annotate.submit import skip, submit
from curate.annotate.users import User
from curate.errors import CurateError
from curate.labels.vocabulary import Choice
from curate.progress import Progress, no_progress
from curate.project import Project
from curate.store import accounts, annotation_stats, assignments

KIND = "simulated"  # Annotator.kind: never a login (no password), told apart from people in the store
NO_ANSWER = {"rewrite": "simulated annotators do not write rewrites",
             "ranking": "simulated annotators do not rank several completions",
             "rank": "no known answer for this pair"}


@dataclass
class SimulatedResult:
    annotators: list[str]
    judged: int = 0
    choices: Counter[str] = field(default_factory=Counter)  # a | b | tie | both_bad, as the store orders pairs
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> items passed on (they stay for people)


def simulated_users(project: Project, count: int, *, prefix: str = "sim") -> list[User]:
    """Accounts ``{prefix}-1`` … ``{prefix}-{count}`` (kind "simulated": they cannot log in); created once."""
    if count < 1:
        raise CurateError(f"simulated annotators: the count must be 1 or more, not {count}")
    names = [f"{prefix}-{i}" for i in range(1, count + 1)]
    with project.store.write() as conn:
        rows = accounts.ensure_annotators(conn, names=names, kind=KIND, role="annotator")
    taken = [n for n in names if rows[n][1] != KIND]
    if taken:
        raise CurateError(f"simulated annotators: '{taken[0]}' is a {rows[taken[0]][1]} account; choose another "
                          "prefix")
    return [User(rows[n][0], n, "annotator") for n in names]


def answer_queue(project: Project, answers: Mapping[str, Sequence[str]], *, annotators: int = 3, prefix: str = "sim",
                 progress: Progress | None = None) -> SimulatedResult:
    """Let ``annotators`` simulated people take the open rounds' items from the queue until it is empty for
    them. Person ``k`` (1-based) answers a pair with its ``k``-th known choice in ``answers`` (pair id ->
    choices, ``a``/``b`` as the store orders the pair, ``tie``, ``both_bad``), cycling when the key has fewer;
    an item without a known answer (a rewrite, a ranking, a pair the key lacks) is skipped, so it stays in
    the queue for people."""
    users = simulated_users(project, annotators, prefix=prefix)
    rule = project.config.annotate
    version, _ = current_instructions(project.store, project.root / rule.instructions)
    result = SimulatedResult([u.name for u in users])
    places = _open_places(project, min(rule.overlap, annotators))
    for _ in (progress or no_progress)(_turns(project, users, answers, version, result), "simulated annotators",
                                       places):
        pass
    return result


def _turns(project: Project, users: list[User], answers: Mapping[str, Sequence[str]], version: int,
           result: SimulatedResult) -> Iterator[None]:
    """Each person in turn takes their next item and answers or skips it (one yield per item) until the
    queue has nothing left for anyone."""
    rule = project.config.annotate
    active = list(enumerate(users))
    while active:
        still = []
        for k, user in active:
            shown = next_item(project.store, user, rule, instruction_version=version)
            if shown is None:
                continue
            still.append((k, user))
            with project.store.read() as conn:
                kind, pair_id, a_id, order = assignments.shown_pair(conn, assignment_id=shown.assignment)
            known = answers.get(pair_id) if kind == "rank" and pair_id else None
            if known:
                choice = known[k % len(known)]
                submit(project.store, user, assignment=shown.assignment, token=shown.token,
                       choice=_as_shown(choice, a_id, order))
                result.judged += 1
                result.choices[choice] += 1
            else:
                skip(project.store, user, assignment=shown.assignment, token=shown.token, reason=NO_ANSWER[kind])
                result.skipped[NO_ANSWER[kind]] += 1
            yield None
        active = still


def _open_places(project: Project, overlap: int) -> int:
    """Judgments the open rounds still want (each item ``overlap`` times), for the progress bar."""
    with project.store.read() as conn:
        items, done = annotation_stats.open_round_places(conn)
    return max(items * overlap - done, 0)


def _as_shown(choice: str, a_id: str, order: Sequence[str]) -> str:
    """The button a person presses for ``choice`` (store order) when the pair is shown in ``order``."""
    if choice in (Choice.TIE, Choice.BOTH_BAD):
        return choice
    if choice not in (Choice.A, Choice.B):
        raise CurateError(f"simulated annotators: unknown choice {choice!r} in the answer key")
    first_is_a = order[0] == a_id
    return "A" if (choice == Choice.A) == first_is_a else "B"
