"""``curate select`` on the bundled UKP sample: slices, random arm, routing, manifests, status, the audit
log, reproducibility, cold start, and clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from curate import open_project, project_status
from curate.config import RouteSection
from curate.select.routing import route_pairs
from curate.strategies import PoolView


@pytest.fixture
def scored(ukp):
    """The embedded UKP sample with clusters, near-duplicates and the fast committee."""
    from curate.pool.cluster import cluster_pool
    from curate.pool.dedup import dedup_pool
    from curate.scores.committee import score_committee

    cluster_pool(ukp, k=4)
    dedup_pool(ukp, threshold=0.7)  # the sample has few near-duplicates; 0.7 makes 15 groups
    score_committee(ukp)
    return ukp


def manifest(project, number: int) -> dict:
    return json.loads((project.root / "rounds" / f"{number:04d}" / "manifest.json").read_text())


def test_select_end_to_end(cli, scored):
    root = scored.root
    code, out, err = cli("select", "--project", root, "--budget", "40", "--strategy", "uncertainty", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["number"] == 1 and result["items"] == 40 and result["arms"] == {"random": 4, "strategy": 36}
    assert result["reserved"] == {"calibration": 10, "test": 20} or result["reserved"]["test"] >= 20
    first = manifest(scored, 1)
    assert first["strategy"] == "uncertainty" and not first["cold_start"] and len(first["items"]) == 40
    assert first["models"]["scores"]["committee"]["run"] and first["models"]["cluster_run"]
    strategy_items = [i for i in first["items"] if i["arm"] == "strategy"]
    random_items = [i for i in first["items"] if i["arm"] == "random"]
    doubt = [abs(i["scores"]["committee.p_mean"] - 0.5) for i in strategy_items]
    assert doubt == sorted(doubt) and np.mean(doubt) < np.mean([abs(i["scores"]["committee.p_mean"] - 0.5)
                                                                for i in random_items])
    assert all(i["route"] in ("rank", "rewrite") and i["why"] and i["route_reason"] for i in first["items"])
    sliced = {p for ids in first["slices_reserved"].values() for p in ids}
    assert not sliced & {i["pair_id"] for i in first["items"]}
    code, out, err = cli("select", "--project", root, "--budget", "40", "--strategy", "coreset", "--json")
    assert code == 0, err
    assert json.loads(out)["reserved"] == {}
    second = manifest(scored, 2)
    assert second["strategy"] == "coreset" and second["slices_reserved"] == {}
    assert not {i["pair_id"] for i in first["items"]} & {i["pair_id"] for i in second["items"]}
    assert not sliced & {i["pair_id"] for i in second["items"]}
    from curate.select.candidates import build_pool_view

    pool, _ = build_pool_view(scored)
    group_of = dict(zip(pool.ids.tolist(), pool.duplicates.tolist(), strict=True))
    groups = [group_of[i["pair_id"]] for i in first["items"] + second["items"] if group_of[i["pair_id"]] >= 0]
    assert groups and len(groups) == len(set(groups))  # never two of one near-duplicate group, either arm
    status = project_status(scored)
    assert status["rounds"] == 2 and status["latest_round"]["number"] == 2
    assert status["items"] == 80 + len(first["slice_items"])  # slice pairs without a label are items too
    assert status["slices"] == {k: len(v) for k, v in first["slices_reserved"].items()}
    assert status["manifest_problems"] == []  # each manifest is what the store says, byte for byte
    code, out, _ = cli("status", "--project", root)
    assert "round 2 (coreset, open)" in out and "slice: test" in out and "round repair" not in out
    from sqlalchemy import select

    from curate.store.schema import AuditEntry

    with scored.store.read() as conn:
        actions = [r[0] for r in conn.execute(select(AuditEntry.action).where(AuditEntry.action == "select"))]
    assert actions == ["select", "select"]


def test_a_pair_comparing_a_completion_with_itself_is_never_selected(scored, tmp_path):
    from curate import embed_pool, ingest_files
    from curate.select.candidates import build_pool_view
    from curate.select.rounds import select_round

    row = {"prompt": "Which argument is stronger?", "a": "The same words.", "b": "The same words.", "w": "a"}
    (tmp_path / "same.jsonl").write_text(json.dumps(row) + "\n")
    ingest_files(scored, [tmp_path / "same.jsonl"], mapping="prompt=prompt,a=a,b=b,label=w")
    embed_pool(scored)
    pool, context = build_pool_view(scored)
    same = [i for i, pair in enumerate(context.pairs) if pair[2] == pair[3]]
    assert len(same) == 1 and pool.excluded[same[0]] and any("compare a completion with itself" in n
                                                             for n in context.notes)
    # every strategy leaves excluded units alone (the contract test), so it is in no round
    select_round(scored, budget=20, strategy="random")
    assert any("compare a completion with itself" in n for n in manifest(scored, 1)["notes"])


def test_same_seed_same_state_same_manifest(scored, tmp_path):
    from curate.select.rounds import select_round

    copy = tmp_path / "copy"
    shutil.copytree(scored.root, copy)
    select_round(scored, budget=30, seed=7)
    with open_project(copy) as other:
        select_round(other, budget=30, seed=7)
    assert (scored.root / "rounds/0001/manifest.json").read_bytes() == (copy / "rounds/0001/manifest.json").read_bytes()
    with open_project(copy) as other:
        select_round(other, budget=30, seed=8)
        assert manifest(other, 2)["items"] != manifest(scored, 1)["items"]


def test_slices_stratified_keep_near_duplicates_together_and_prefer_labelled_pairs(scored):
    from curate.select.candidates import build_pool_view
    from curate.select.rounds import reserve_slices

    pool, context = build_pool_view(scored)
    slices = reserve_slices(pool, context, test_size=0.2, calibration_size=10, rng=np.random.default_rng(0))
    test, calibration = slices["test"], slices["calibration"]
    assert len(test) >= 40 and len(calibration) >= 10 and not set(test.tolist()) & set(calibration.tolist())
    clusters = pool.groups["cluster"]
    known = np.isin(pool.ids, list(context.known_labels))  # slices are drawn from labelled pairs first
    shares = np.bincount(clusters[known], minlength=4) / known.sum()
    from dataclasses import replace

    plain = reserve_slices(replace(pool, duplicates=None), context, test_size=0.2, calibration_size=10,
                           rng=np.random.default_rng(0))["test"]  # without near-duplicate groups to keep whole
    assert len(plain) == 40 and np.abs(np.bincount(clusters[plain], minlength=4) - 40 * shares).max() < 1
    groups = pool.duplicates
    for positions in (test, calibration):
        inside = set(groups[positions][groups[positions] >= 0].tolist())
        outside = np.setdiff1d(np.arange(len(pool)), positions)
        assert not inside & set(groups[outside].tolist())  # a group is whole in one slice, or not in it
    assert all(pool.ids[i] in context.known_labels for i in plain)


def test_cold_start_by_cluster_and_slice_items_without_labels(cli, tmp_path, samples):
    import gzip

    with gzip.open(samples["ukp"], "rt") as fh:
        rows = [json.loads(line) for line in fh][:120]
    data = tmp_path / "unlabelled.jsonl"
    data.write_text("".join(json.dumps({"prompt": r["topic"], "a": r["a1"], "b": r["a2"]}) + "\n" for r in rows))
    root = tmp_path / "cold"
    assert cli("init", root)[0] == 0
    assert cli("ingest", data, "--project", root, "--map", "prompt=prompt,a=a,b=b")[0] == 0
    assert cli("embed", "--project", root)[0] == 0
    code, _, err = cli("select", "--project", root, "--budget", "20")
    assert code == 1 and "strategy 'cluster' needs the grouping 'cluster': run `curate cluster` first" in err
    assert cli("cluster", "--project", root, "--k", "3")[0] == 0
    code, out, err = cli("select", "--project", root, "--budget", "20", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["cold_start"] and result["strategy"] == "cluster"
    with open_project(root) as project:
        first = manifest(project, 1)
        slice_items = first["slice_items"]
        assert len(slice_items) == sum(len(v) for v in first["slices_reserved"].values())  # none has a label
        arms = project_status(project)["latest_round"]["arms"]
    assert arms["test"] == len(first["slices_reserved"]["test"]) and arms["random"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--strategy", "uncertain"], "unknown strategy 'uncertain' (strategies: random, uncertainty, qbc"),
    (["--strategy", "qbc", "--option", "measur=bald"], "strategy 'qbc' has no option 'measur'"),
    (["--strategy", "token-entropy"], "needs the score entropy.entropy_mean: run `curate score entropy` first"),
    (["--random-frac", "1.5"], "--random-frac must be between 0 and 1, not 1.5"),
    (["--budget", "5000"], "a budget of 5000 is more than the"),
    (["--route", "maybe"], "--route must be one of auto, rank, rewrite, ranking, not 'maybe'"),
    (["--option", "oops"], "--option takes key=value, not 'oops'"),
])
def test_bad_select_requests_are_clear_errors(cli, scored, args, message):
    budget = [] if "--budget" in args else ["--budget", "10"]
    code, _, err = cli("select", "--project", scored.root, *budget, *args)
    assert code == 1 and message in err and "Traceback" not in err
    assert project_status(scored)["rounds"] == 0


def test_routing_rules_in_order():
    n = 5
    pool = PoolView(ids=np.arange(n).astype(str).astype(object), labelled=np.zeros(n, bool), excluded=np.zeros(n, bool),
                    scores={"reward.reward_mean.a": np.array([-2.0, 0.5, 0.5, 0.5, 0.1]),
                            "reward.reward_mean.b": np.array([-1.5, 0.2, 0.1, 0.3, 0.9]),
                            "committee.p_mean": np.array([0.5, 0.55, 0.9, 0.1, 0.95]),
                            "entropy.entropy_mean": np.array([1.0, 1.0, 3.0, 1.0, 1.0])})
    routes = route_pairs(pool, np.arange(n), RouteSection(rewrite_entropy_quantile=0.8))
    assert [r.kind for r in routes] == ["rewrite", "rank", "rewrite", "rank", "rank"]
    assert routes[0].side == "b" and "both completions weak" in routes[0].reason  # b is the better of two weak
    assert routes[1].reason.startswith("contested") and routes[2].reason.startswith("the policy is unsure")
    forced = route_pairs(pool, np.arange(n), RouteSection(), mode="rewrite")
    assert [r.side for r in forced] == ["b", "a", "a", "a", "b"]


def test_stream_mode_selects_about_the_rate(cli, scored, shared_data, monkeypatch):
    import gzip
    import io

    with gzip.open(shared_data / "ukp-convarg1-dev.jsonl.gz", "rt") as fh:
        lines = [line for _, line in zip(range(1500), fh, strict=False)][1200:]  # rows the sample does not hold
    text = "".join(lines)
    runs = {}
    for strategy in ("uncertainty", "qbc", "random"):
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        code, out, err = cli("select", "--project", scored.root, "--stream", "--rate", "0.2", "--strategy", strategy)
        assert code == 0, err
        decisions = [json.loads(line) for line in out.splitlines()]
        assert len(decisions) == 300 and [d["line"] for d in decisions] == list(range(1, 301))
        share = np.mean([d["selected"] for d in decisions])
        assert 0.1 <= share <= 0.3, (strategy, share)
        assert all(d["selected"] == (d["score"] >= d["threshold"]) for d in decisions if strategy != "random")
        assert f"of 300 records selected ({share:.1%}; rate 20.0%)" in err
        runs[strategy] = out
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert cli("select", "--project", scored.root, "--stream", "--rate", "0.2", "--strategy", "random")[1] == \
        runs["random"]  # seeded
    assert project_status(scored)["rounds"] == 0  # stream mode decides, it does not create a round
    monkeypatch.setattr("sys.stdin", io.StringIO(lines[0] + "{not json\n"))
    code, out, err = cli("select", "--project", scored.root, "--stream", "--rate", "0.2")
    assert code == 1 and "<stdin>:2: invalid JSON" in err and len(out.splitlines()) == 1
    code, _, err = cli("select", "--project", scored.root, "--stream", "--strategy", "coreset")
    assert code == 1 and "stream mode decides by uncertainty, qbc, random, not 'coreset'" in err


def test_quotas_per_cluster_and_per_record_metadata(cli, scored):
    from curate.select.candidates import build_pool_view

    code, _, err = cli("select", "--project", scored.root, "--budget", "40", "--quota", "topic=0:0.2")
    assert code == 0, err
    pool, _ = build_pool_view(scored)
    assert len(set(pool.groups["topic"].tolist())) > 5  # the sample's UKP topics, from record metadata
    topic = dict(zip(pool.ids.tolist(), pool.groups["topic"].tolist(), strict=True))
    first = manifest(scored, 1)
    arm = [i for i in first["items"] if i["arm"] == "strategy"]  # quotas shape the strategy's part, not the random arm
    assert len(arm) == 36 and np.bincount([topic[i["pair_id"]] for i in arm]).max() <= 0.2 * 36
    assert first["quota"] == {"by": "topic", "min_share": 0.0, "max_share": 0.2}
    from curate.strategies import NoNearDuplicates, make_strategy
    from curate.strategies.wrappers import without

    pool, _ = build_pool_view(scored)
    clusters = pool.groups["cluster"]
    capacity = [NoNearDuplicates(make_strategy("uncertainty")).capacity(without(pool, np.flatnonzero(clusters != c)))
                for c in range(4)]
    code, _, err = cli("select", "--project", scored.root, "--budget", "40", "--quota", "cluster=0.15:1")
    assert code == 0, err
    arm = [i for i in manifest(scored, 2)["items"] if i["arm"] == "strategy"]
    counts = np.bincount([i["cluster"] for i in arm], minlength=4)
    assert (counts >= np.minimum(6, capacity)).all() and min(capacity) < 6  # a short cluster gives all it can
    for quota, message in (("colour=0:0.5", "needs the grouping 'colour'"), ("topic=0.5", "--quota takes BY=MIN:MAX"),
                           ("topic=0.6:0.5", "quotas need 0 <= min share <= max share <= 1")):
        code, _, err = cli("select", "--project", scored.root, "--budget", "10", "--quota", quota)
        assert code == 1 and message in err, err
    code, _, err = cli("select", "--project", scored.root, "--budget", "10", "--quota", "topic=0:0.5",
                       "--quota", "cluster=0:0.5")
    assert code == 1 and "one --quota per round" in err


def test_slices_are_never_learned_from_nor_leaked_through_near_duplicates(cli, scored):
    from sqlalchemy import insert, select

    from curate.scores.committee import score_committee
    from curate.store.schema import NearDuplicate, Slice

    before = score_committee(scored).labelled
    code, _, err = cli("select", "--project", scored.root, "--budget", "20")
    assert code == 0, err
    status = project_status(scored)["scores"]["committee"]
    assert status["stale"] and "slices reserved since" in status["why"]
    with scored.store.read() as conn:
        sliced = [r[0] for r in conn.execute(select(Slice.pair_id).where(Slice.name == "test"))]
    after = score_committee(scored).labelled
    assert after < before  # the slices' labels are no longer fitted on
    assert not project_status(scored)["scores"]["committee"]["stale"]
    manifest_1 = manifest(scored, 1)
    chosen = {i["pair_id"] for i in manifest_1["items"]}
    from curate.select.candidates import build_pool_view

    pool, _ = build_pool_view(scored)
    free = [p for p in pool.ids[pool.available].tolist() if p not in chosen][:3]
    with scored.store.write() as conn:  # a later dedup finds three free pairs to be copies of a test pair
        conn.execute(insert(NearDuplicate), [{"field": "pair", "unit_id": p, "representative_id": sliced[0],
                                              "similarity": 0.99, "threshold": 0.95, "model": "test"} for p in free])
    from curate.strategies import NoNearDuplicates, make_strategy
    from curate.strategies.wrappers import without

    pool, _ = build_pool_view(scored)
    sliced_group = pool.duplicates[list(pool.ids).index(sliced[0])]
    capacity = NoNearDuplicates(make_strategy("random")).capacity(without(pool, np.flatnonzero(
        pool.duplicates == sliced_group)))
    code, _, err = cli("select", "--project", scored.root, "--budget", str(capacity), "--strategy", "random",
                       "--random-frac", "0")
    assert code == 0, err  # everything that may be chosen is chosen, and still not the three copies
    second = manifest(scored, 2)
    assert not set(free) & {i["pair_id"] for i in second["items"]}
    assert "3 near-duplicates of test/calibration pairs left out" in second["notes"]


def test_strategy_options_are_typed_and_bad_values_are_one_line_errors(cli, scored, tmp_path):
    for args, message in ((["--strategy", "hybrid", "-o", "factor=x"], "option 'factor' of strategy 'hybrid' must be a "
                                                                          "number, not 'x'"),
                          (["--strategy", "hybrid", "-o", "factor=inf"], "must be a number, not 'inf'"),
                          (["--strategy", "hybrid", "-o", "factor=0.5"], "hybrid factor must be at least 1")):
        code, _, err = cli("select", "--project", scored.root, "--budget", "5", *args)
        assert code == 1 and message in err and "Traceback" not in err, err
    code, _, err = cli("select", "--project", scored.root, "--budget", "5", "--seed", "-1")
    assert code == 2 and "greater than or equal to 0" in err and "Traceback" not in err
    rules = tmp_path / "2024"
    rules.write_text("evidence\n")
    code, _, err = cli("select", "--project", scored.root, "--budget", "5", "--strategy", "rules", "-o",
                       f"path={rules}")
    assert code == 0, err  # a rules file whose name is a number stays a path


def test_a_round_without_its_manifest_is_flagged_and_rewritten_from_the_store(cli, tmp_path, samples):
    from curate import ingest_files, init_project

    root = tmp_path / "proj"
    with init_project(root) as project:
        ingest_files(project, [samples["ukp"]])
    for seed in ("1", "2"):
        assert cli("select", "--project", root, "-n", "5", "--strategy", "random", "--seed", seed)[0] == 0
    paths = [root / "rounds" / f"{n:04d}" / "manifest.json" for n in (1, 2)]
    written = [p.read_bytes() for p in paths]
    paths[0].unlink()  # killed between storing round 1 and writing its manifest
    paths[1].write_bytes(written[1][:100])  # a manifest cut short (written by hand, or by a tool that crashed)

    def problems() -> list[dict]:
        code, out, err = cli("status", "--project", root, "--json")
        assert code == 0, err
        return json.loads(out)["manifest_problems"]

    assert problems() == [{"round": 1, "problem": "missing"}, {"round": 2, "problem": "incomplete"}]
    code, out, _ = cli("status", "--project", root)
    assert "round 1: rounds/0001/manifest.json: missing (curate round repair 1 rewrites it from the store)" in out
    code, out, err = cli("round", "repair", "1", "--project", root)
    assert code == 0 and "rewritten from the store (missing)" in out, err
    assert paths[0].read_bytes() == written[0]
    # the next select repairs the rest before it proceeds, and says so
    code, out, err = cli("select", "--project", root, "-n", "5", "--strategy", "random", "--seed", "3", "--json")
    assert code == 0, err
    assert json.loads(out)["notes"][:1] == ["round 2's manifest was incomplete: rewritten from the store"]
    assert paths[1].read_bytes() == written[1] and problems() == []
    # an edited manifest is reported, left to `round repair` (select does not overwrite it)
    paths[0].write_text(paths[0].read_text().replace('"seed": 1', '"seed": 7'))
    assert problems() == [{"round": 1, "problem": "differs from the store"}]
    assert cli("select", "--project", root, "-n", "5", "--strategy", "random", "--seed", "4")[0] == 0
    assert problems() == [{"round": 1, "problem": "differs from the store"}]
    code, out, err = cli("round", "repair", "--project", root, "--json")
    assert code == 0 and json.loads(out)[0]["was"] == "differs from the store" and problems() == [], err
    assert paths[0].read_bytes() == written[0]
    code, out, _ = cli("round", "repair", "--project", root)
    assert out.strip() == "every round's manifest matches the store"
    code, _, err = cli("round", "repair", "9", "--project", root)
    assert code == 1 and "there is no round 9" in err and len(err.strip().splitlines()) == 1
    paths[0].unlink()
    paths[0].mkdir()  # not a file at all: reported, not a traceback
    assert problems() == [{"round": 1, "problem": "unreadable (Is a directory)"}]
