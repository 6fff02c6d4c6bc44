"""The annotation app's library on real UKP dev items: accounts and lock-out, the work queue (overlap,
leases, gold), submits (idempotent, refused when stale or not yours), skip/flag/undo, rewrites with
provenance, rankings with ties, instruction versions and the pre-filled suggestion."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from conftest import APP_USERS, add_ranking_round, set_config
from sqlalchemy import func, select

from curate import open_project
from curate.annotate.instructions import current_instructions
from curate.annotate.queue import next_item
from curate.annotate.stats import annotator_stats, flagged_items, progress_line
from curate.annotate.submit import skip, submit, undo
from curate.annotate.users import add_user, check_login, get_user, list_users, unlock_user
from curate.errors import CurateError, RefusedError
from curate.store.schema import Annotator, AuditEntry, Completion, Item, Judgment, Pair


def users(project):
    return {name: get_user(project.store, name) for name in APP_USERS}


def judge(project, user, choice="A", **kw):
    shown = next_item(project.store, user, project.config.annotate, instruction_version=1)
    saved = submit(project.store, user, assignment=shown.assignment, token=shown.token, choice=choice, **kw)
    return shown, saved


def test_passwords_are_argon2_hashed_and_bad_accounts_refused(annotation):
    store = annotation.store
    with store.read() as conn:
        stored = conn.scalar(select(Annotator.password_hash).where(Annotator.name == "bob"))
    assert stored.startswith("$argon2") and "bob-password" not in stored
    rule = annotation.config.annotate
    assert check_login(store, "bob", "bob-password", rule)
    assert not check_login(store, "bob", "wrong-password", rule)
    assert not check_login(store, "nobody", "bob-password", rule)
    with pytest.raises(CurateError, match="exists; use --reset"):
        add_user(store, "bob", role="annotator", password="another-password")
    with pytest.raises(CurateError, match="at least 8 characters"):
        add_user(store, "erin", role="annotator", password="short")
    with pytest.raises(CurateError, match="--role must be annotator or lead"):
        add_user(store, "erin", role="admin", password="erin-password")
    with pytest.raises(CurateError, match="user name"):
        add_user(store, "erin smith", role="annotator", password="erin-password")
    with store.read() as conn:  # imported labellers are named source:id, which no login can be
        worker = conn.scalar(select(Annotator.name).where(Annotator.kind == "imported").limit(1))
    with pytest.raises(CurateError, match="must be 1-64 letters"):
        add_user(store, worker, role="annotator", password="worker-password")
    assert not check_login(store, worker, "", rule)


def test_lock_out_after_repeated_failures_even_with_the_right_password(annotation):
    store, rule = annotation.store, annotation.config.annotate
    now = datetime.now(timezone.utc)
    for _ in range(rule.max_failed_logins - 1):
        assert not check_login(store, "carol", "guess", rule, now=now)
    assert check_login(store, "carol", "carol-password", rule, now=now)  # a success resets the count
    for _ in range(rule.max_failed_logins):
        assert not check_login(store, "carol", "guess", rule, now=now)
    assert not check_login(store, "carol", "carol-password", rule, now=now)
    assert {u["name"]: u["locked"] for u in list_users(store)}["carol"] is True
    assert get_user(store, "carol").name == "carol"  # a session opened before the lock-out goes on (no DoS)
    later = now + timedelta(minutes=rule.lockout_minutes + 1)
    assert check_login(store, "carol", "carol-password", rule, now=later)
    for _ in range(rule.max_failed_logins):
        check_login(store, "carol", "guess", rule, now=now)
    unlock_user(store, "carol")
    assert check_login(store, "carol", "carol-password", rule, now=now)
    with store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "user.locked")) == 2


def test_overlap_gives_each_item_to_k_people_and_never_twice_to_one(annotation):
    set_config(annotation.root, "annotate", overlap=3)
    with open_project(annotation.root) as project:
        people = users(project)
        seen: dict[str, list[int]] = {name: [] for name in people}
        for _ in range(40):
            for name, user in people.items():
                shown, _ = judge(project, user)
                seen[name].append(shown.assignment)
        with project.store.read() as conn:
            rows = conn.execute(select(Judgment.item_id, Judgment.annotator_id).where(Judgment.source == "app")).all()
    assert len(rows) == 160 and len(set(rows)) == 160  # nobody judged an item twice
    per_item = Counter(item for item, _ in rows)
    assert max(per_item.values()) == 3
    assert sum(n == 3 for n in per_item.values()) >= 50  # the queue completes items before starting new ones


def test_shown_order_is_random_per_annotator_and_the_choice_is_stored_as_a_or_b(annotation):
    people = users(annotation)
    flips = 0
    for _ in range(30):
        shown, saved = judge(annotation, people["bob"], choice="A")
        with annotation.store.read() as conn:
            j = conn.execute(select(Judgment).where(Judgment.id == saved.judgment)).first()
            pair = conn.execute(select(Pair).where(Pair.id == j.pair_id)).first()
            left = conn.scalar(select(Completion.text).where(Completion.id == j.shown_order[0]))
        assert left == shown.completions[0]  # the stored order is the order shown
        assert j.choice == ("a" if j.shown_order[0] == pair.a_id else "b")  # "A" = the left one
        assert j.annotator_id == people["bob"].id and j.time_ms >= 0 and j.instruction_version == "1"
        flips += j.shown_order[0] != pair.a_id
    assert 5 <= flips <= 25


def test_a_double_submit_stores_one_judgment_and_stale_or_foreign_submits_are_refused(annotation):
    store, rule = annotation.store, annotation.config.annotate
    people = users(annotation)
    shown = next_item(store, people["bob"], rule)
    first = submit(store, people["bob"], assignment=shown.assignment, token=shown.token, choice="B")
    again = submit(store, people["bob"], assignment=shown.assignment, token=shown.token, choice="A")
    assert again.duplicate and again.judgment == first.judgment
    with pytest.raises(RefusedError, match="already judged"):
        submit(store, people["bob"], assignment=shown.assignment, token="another-token", choice="A")
    other = next_item(store, people["carol"], rule)
    with pytest.raises(RefusedError, match="not assigned to you"):
        submit(store, people["bob"], assignment=other.assignment, token="bob-token-1", choice="A")
    with pytest.raises(RefusedError, match="used for another submit"):
        submit(store, people["carol"], assignment=other.assignment, token=shown.token, choice="A")
    with pytest.raises(CurateError, match="choose A, B, tie or both_bad"):
        submit(store, people["carol"], assignment=other.assignment, token="carol-token-1", choice="C")
    with pytest.raises(CurateError, match="confidence"):
        submit(store, people["carol"], assignment=other.assignment, token="carol-token-1", choice="A",
               confidence=9)
    from curate.select.rounds import set_round_status

    set_round_status(annotation, 1, "closed")
    with pytest.raises(RefusedError, match="round is closed"):
        submit(store, people["carol"], assignment=other.assignment, token="carol-token-2", choice="A")
    assert next_item(store, people["carol"], rule) is None
    with store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(Judgment).where(Judgment.source == "app")) == 1


def test_an_expired_lease_goes_back_to_the_queue_and_its_late_submit_is_refused(annotation):
    store, rule = annotation.store, annotation.config.annotate
    people = users(annotation)
    start = datetime.now(timezone.utc)
    held = next_item(store, people["bob"], rule, now=start)
    late = start + timedelta(minutes=rule.lease_minutes + 1)
    taken = next_item(store, people["carol"], rule, now=late)
    from curate.store.schema import Assignment

    with store.read() as conn:
        item_of = dict(conn.execute(select(Assignment.id, Assignment.item_id)).all())
        statuses = dict(conn.execute(select(Assignment.id, Assignment.status)).all())
    assert taken.assignment != held.assignment and item_of[taken.assignment] == item_of[held.assignment]
    assert statuses[held.assignment] == "expired"
    with pytest.raises(RefusedError, match="released after its time limit"):
        submit(store, people["bob"], assignment=held.assignment, token=held.token, choice="A", now=late)
    assert taken.prompt == held.prompt and sorted(taken.completions) == sorted(held.completions)


def test_skip_flag_and_undo(annotation):
    store, rule = annotation.store, annotation.config.annotate
    people = users(annotation)
    bob = people["bob"]
    first, saved = judge(annotation, bob, choice="tie", confidence=4, reason="both argue well")
    with pytest.raises(RefusedError, match="latest judgment"):
        undo(store, bob, rule, assignment=first.assignment + 1000)
    assert undo(store, bob, rule, assignment=first.assignment) == first.assignment
    with pytest.raises(RefusedError, match="only once"):  # a double click on Undo undoes one step
        undo(store, bob, rule, assignment=first.assignment)
    with pytest.raises(RefusedError, match="was undone"):  # the spent token cannot store a judgment again
        submit(store, bob, assignment=first.assignment, token=first.token, choice="A")
    again = next_item(store, bob, rule)
    assert again.assignment == first.assignment and again.token != first.token
    submit(store, bob, assignment=again.assignment, token=again.token, choice="A")
    second = next_item(store, bob, rule)
    with pytest.raises(CurateError, match="say why"):
        skip(store, bob, assignment=second.assignment, token=second.token, flag=True)
    flagged = skip(store, bob, assignment=second.assignment, token=second.token, flag=True, reason="garbled text")
    with pytest.raises(RefusedError, match="used for another submit"):  # a token is for one action
        submit(store, bob, assignment=second.assignment, token=second.token, choice="A")
    third = next_item(store, bob, rule)
    skipped = skip(store, bob, assignment=third.assignment, token=third.token, reason="not my field")
    assert [f["reason"] for f in flagged_items(store)] == ["garbled text"]
    with pytest.raises(RefusedError, match="latest"):
        undo(store, bob, rule, assignment=flagged.assignment)
    undo(store, bob, rule, assignment=skipped.assignment)  # the skip is taken back: the item is bob's again
    assert next_item(store, bob, rule).assignment == third.assignment
    with store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(Judgment).where(Judgment.id == saved.judgment)) == 0
        undone = [d for (d,) in conn.execute(select(AuditEntry.details).where(AuditEntry.action == "judgment.undo"))]
    kept = undone[0]["judgment"]
    assert kept["choice"] == "tie" and kept["reason"] == "both argue well" and kept["confidence"] == 4
    stats = {row["annotator"]: row for row in annotator_stats(store)}
    assert stats["bob"]["judgments"] == 1 and stats["bob"]["skipped"] == 1 and stats["bob"]["flagged"] == 1


def test_undoing_a_skip_never_exceeds_the_overlap(annotation):
    store, rule = annotation.store, annotation.config.annotate  # overlap 1
    people = users(annotation)
    shown = next_item(store, people["bob"], rule)
    skipped = skip(store, people["bob"], assignment=shown.assignment, token=shown.token)
    taken = next_item(store, people["carol"], rule)
    with store.read() as conn:
        from curate.store.schema import Assignment

        same = conn.scalar(select(func.count(func.distinct(Assignment.item_id)))
                           .where(Assignment.id.in_((shown.assignment, taken.assignment)))) == 1
    assert same
    with pytest.raises(RefusedError, match="others have taken this item"):
        undo(store, people["bob"], rule, assignment=skipped.assignment)


def test_gold_items_are_mixed_in_at_the_rate_and_scored(annotation):
    set_config(annotation.root, "annotate", gold_rate=0.3)
    with open_project(annotation.root) as project:
        bob = get_user(project.store, "bob")
        arms = []
        for _ in range(60):
            judge(project, bob, choice="A")
            with project.store.read() as conn:
                arms.append(conn.scalar(select(Item.arm).join(Judgment, Judgment.item_id == Item.id)
                                        .where(Judgment.annotator_id == bob.id).order_by(Judgment.created_at.desc())
                                        .limit(1)))
        stats = {row["annotator"]: row for row in annotator_stats(project.store)}["bob"]
    gold = arms.count("gold")
    assert 8 <= gold <= 30  # 18 expected
    assert stats["gold_judged"] == gold and 0 <= stats["gold_accuracy"] <= 1
    assert "round 1" in progress_line(annotation.store, bob, annotation.config.annotate)


def test_instructions_are_versioned_and_every_judgment_names_its_version(annotation):
    path = annotation.root / annotation.config.annotate.instructions
    version, text = current_instructions(annotation.store, path)
    assert version == 1 and "Both bad" in text
    path.write_text("# Our rules\n\nPrefer the argument with evidence.\n", encoding="utf-8")
    assert current_instructions(annotation.store, path) == (2, path.read_text())
    assert current_instructions(annotation.store, path)[0] == 2  # unchanged text: the same version
    bob = get_user(annotation.store, "bob")
    shown = next_item(annotation.store, bob, annotation.config.annotate, instruction_version=2)
    path.write_text("# Our rules, third edition\n")
    assert current_instructions(annotation.store, path)[0] == 3
    saved = submit(annotation.store, bob, assignment=shown.assignment, token=shown.token, choice="A")
    with annotation.store.read() as conn:  # judged as shown: under version 2
        assert conn.scalar(select(Judgment.instruction_version).where(Judgment.id == saved.judgment)) == "2"
    path.write_text("   \n")
    with pytest.raises(CurateError, match="empty"):
        current_instructions(annotation.store, path)


def test_rewrites_are_new_completions_with_provenance(annotation):
    from curate.select.rounds import select_round, set_round_status

    set_round_status(annotation, 1, "closed")
    select_round(annotation, budget=3, strategy="random", route="rewrite")
    bob = get_user(annotation.store, "bob")
    shown = next_item(annotation.store, bob, annotation.config.annotate)
    assert shown.view == "rewrite" and shown.round == 2 and len(shown.completions) == 1
    for text, message in [("", "empty"), (shown.completions[0], "same as the original")]:
        with pytest.raises(CurateError, match=message):
            submit(annotation.store, bob, assignment=shown.assignment, token=shown.token, text=text)
    better = shown.completions[0] + "\n\nStudies of this question support the point."
    saved = submit(annotation.store, bob, assignment=shown.assignment, token=shown.token, text=better)
    with annotation.store.read() as conn:
        j = conn.execute(select(Judgment).where(Judgment.id == saved.judgment)).first()
        new = conn.execute(select(Completion).where(Completion.id == j.completion_id)).first()
        parent = conn.scalar(select(Item.completion_id).where(Item.id == j.item_id))
    assert j.kind == "rewrite" and new.text == better and new.origin == "rewrite"
    assert new.parent_id == parent and new.author_id == bob.id and new.round_id is not None
    undo(annotation.store, bob, annotation.config.annotate, assignment=shown.assignment)
    with annotation.store.read() as conn:
        assert conn.scalar(select(Completion.id).where(Completion.id == new.id)) is None


def test_rankings_order_all_completions_with_ties(annotation, shared_data, tmp_path):
    """A prompt with four completions becomes one ranking item (after round 1 is closed)."""
    from curate.select.rounds import set_round_status

    set_round_status(annotation, 1, "closed")
    number = add_ranking_round(annotation, shared_data, tmp_path)
    bob = get_user(annotation.store, "bob")
    shown = next_item(annotation.store, bob, annotation.config.annotate)
    assert shown.view == "rank" and shown.round == number and len(shown.completions) == 4
    with pytest.raises(CurateError, match="rank from 1"):
        submit(annotation.store, bob, assignment=shown.assignment, token=shown.token, ranks=[1, 2])
    saved = submit(annotation.store, bob, assignment=shown.assignment, token=shown.token, ranks=[2, 1, 2, 3])
    with annotation.store.read() as conn:
        j = conn.execute(select(Judgment).where(Judgment.id == saved.judgment)).first()
    order = j.shown_order
    assert j.kind == "ranking" and j.ranking == [[order[1]], [order[0], order[2]], [order[3]]]


def test_the_suggestion_is_prefilled_only_when_configured_and_recorded(ukp):
    from curate.scores.committee import score_committee
    from curate.select.rounds import select_round

    score_committee(ukp)
    select_round(ukp, budget=20, strategy="random", route="rank")
    add_user(ukp.store, "bob", role="annotator", password="bob-password")
    bob = get_user(ukp.store, "bob")
    assert next_item(ukp.store, bob, ukp.config.annotate).suggestion is None  # off by default
    set_config(ukp.root, "annotate", prefill=True)
    with open_project(ukp.root) as project:
        add_user(project.store, "carol", role="annotator", password="carol-password")
        carol = get_user(project.store, "carol")
        shown, saved = judge(project, carol, choice="A")
        with project.store.read() as conn:
            meta = conn.scalar(select(Judgment.meta).where(Judgment.id == saved.judgment))
    assert shown.suggestion in ("A", "B") and meta["suggestion_shown"] == shown.suggestion


def test_concurrent_annotators_never_exceed_the_overlap(project, samples):
    """Eight threads take and judge items at once; on PostgreSQL the queue takes an advisory lock."""
    from curate import ingest_files
    from curate.select.rounds import select_round

    ingest_files(project, [samples["ukp"]])
    select_round(project, budget=30, strategy="random", route="rank")
    rule = project.config.annotate
    people = [add_user(project.store, f"user{i}", role="annotator", password="password-123") for i in range(8)]
    errors: list[BaseException] = []

    def work(user):
        try:
            while (shown := next_item(project.store, user, rule)) is not None:
                submit(project.store, user, assignment=shown.assignment, token=shown.token, choice="A")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(u,)) for u in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with project.store.read() as conn:
        rows = conn.execute(select(Judgment.item_id).where(Judgment.source == "app")).scalars().all()
        items = conn.scalar(select(func.count()).select_from(Item))
    assert len(rows) == items and Counter(rows).most_common(1)[0][1] == 1  # overlap 1: each item once


def test_user_round_and_serve_commands(cli, annotation, monkeypatch, tmp_path):
    import io
    import sys

    root = annotation.root
    monkeypatch.setenv("CURATE_PASSWORD", "erin-password")
    code, out, err = cli("user", "add", "erin", "--role", "lead", "--project", root)
    assert code == 0 and "added user erin (lead)" in out, err
    monkeypatch.delenv("CURATE_PASSWORD")
    monkeypatch.setattr(sys, "stdin", io.StringIO("frank-password\nfrank-password\n"))
    code, out, err = cli("user", "add", "frank", "--project", root)
    assert code == 0 and "added user frank (annotator)" in out, err
    assert check_login(annotation.store, "frank", "frank-password", annotation.config.annotate)
    code, out, _ = cli("user", "list", "--project", root, "--json")
    assert {u["name"]: u["role"] for u in json.loads(out)} == {**{n: r for n, (r, _) in APP_USERS.items()},
                                                                "erin": "lead", "frank": "annotator"}
    code, _, err = cli("user", "unlock", "nobody", "--project", root)
    assert code == 1 and "no user 'nobody'" in err
    judge(annotation, get_user(annotation.store, "bob"))
    code, out, _ = cli("status", "--project", root, "--json")
    work = json.loads(out)["annotation"]
    assert work["judgments_by_annotator"] == {"bob": 1} and work["open_rounds"][0]["judgments"] == 1
    assert cli("round", "close", "1", "--project", root)[0] == 0
    code, _, err = cli("round", "close", "1", "--project", root)
    assert code == 1 and "already closed" in err
    code, _, err = cli("round", "close", "9", "--project", root)
    assert code == 1 and "no round 9" in err
    assert cli("round", "reopen", "1", "--project", root)[0] == 0
    from curate import init_project

    with init_project(tmp_path / "empty") as empty:
        code, _, err = cli("serve", "--project", empty.root)
    assert code == 1 and "no app users yet" in err
