"""`curate demo` end to end (with a tiny random Llama standing in for SmolLM2), the simulated annotators it
uses, `curate ingest --no-labels` and `curate report`, checked against the sample file itself."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import NO_BROWSER, browser, has_browser, run_cli

STEPS = ("init:", "ingest:", "embed:", "cluster:", "dedup:", "map:", "select: round 1 by cluster (cold start)",
         "annotate:", "agreement:", "committee:", "export: round 1 as dpo", "trained dpo-lora-r1", "generated with",
         "select: round 2 by uncertainty", "report:")


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_models) -> tuple[Path, str]:
    """The demo project after `curate demo --model TINY` (the packaged SmolLM2 is `make demo`'s), and its output."""
    root = tmp_path_factory.mktemp("demo") / "demo-project"
    result = run_cli("demo", "--dir", str(root), "--model", str(tiny_models["causal"]), cwd=root.parent, timeout=900)
    assert result.returncode == 0, result.stderr
    return root, result.stdout


def _status(root: Path) -> dict:
    return json.loads(run_cli("status", "--project", str(root), "--json").stdout)


def test_demo_runs_the_whole_loop_in_order(demo, samples):
    root, stdout = demo
    where = [stdout.find(step) for step in STEPS]
    assert -1 not in where and where == sorted(where), dict(zip(STEPS, where, strict=True))
    status = _status(root)
    assert status["pairs"] > 500 and status["rounds"] == 2  # the sample's 500 and the generated ones
    assert set(status["judgments_by_source"]) == {"app"}  # every label came through the app's queue
    assert status["annotators"] == {"simulated": 3}
    (model,) = status["trained_models"]
    assert model["name"] == "dpo-lora-r1" and model["round"] == 1 and model["test"]["examples"] == 16
    assert model["data"]["train"]["rows"] > 0 and model["data"]["test"]["rows"] > 0
    (generation,) = status["generations"]
    assert generation["model"] == "dpo-lora-r1" and generation["completions"] > 0 and generation["status"] == "done"
    assert (root / "exports" / "round-1-dpo.jsonl").is_file() and (root / "report.html").is_file()
    assert status["latest_round"]["number"] == 2 and status["latest_round"]["strategy"] == "uncertainty"


def test_simulated_annotators_answer_with_the_sample_votes(demo, samples):
    from sqlalchemy import select

    from curate.ingest import known_choices
    from curate.project import open_project
    from curate.store.schema import Annotator, Assignment, Completion, Item, Judgment, Pair, Round

    root, _ = demo
    answers = known_choices(list(samples.values()))
    with open_project(root) as project, project.store.read() as conn:
        judged = conn.execute(select(Annotator.name, Judgment.pair_id, Judgment.choice, Round.number)
                              .join(Annotator, Annotator.id == Judgment.annotator_id)
                              .join(Item, Item.id == Judgment.item_id).join(Round, Round.id == Item.round_id)).all()
        round1 = conn.execute(select(Item.id).join(Round, Round.id == Item.round_id).where(Round.number == 1)).all()
        generated = {p for (p,) in conn.execute(
            select(Pair.id).join(Completion, Completion.id == Pair.a_id).where(Completion.origin == "generated"))}
        skipped = conn.execute(select(Item.pair_id, Assignment.reason).join(Item, Item.id == Assignment.item_id)
                               .where(Assignment.status == "skipped")).all()
    for name, pair, choice, _ in judged:  # sim-k gives the pair's k-th recorded vote, in the store's A/B order
        votes = answers[pair]
        assert choice == votes[(int(name.split("-")[1]) - 1) % len(votes)]
    per_item = Counter(number for *_, number in judged)
    assert per_item[1] == 3 * len(round1)  # every round-1 item (strategy, random, slices) judged by all three
    assert skipped and all(p in generated and "no known answer" in why for p, why in skipped)
    assert not generated & {p for _, p, _, _ in judged}  # nobody invented an answer for a generated pair


def test_a_person_still_gets_the_items_simulated_annotators_passed_on(demo, tmp_path):
    import shutil

    from curate.annotate.queue import next_item
    from curate.annotate.users import add_user
    from curate.project import open_project

    root = tmp_path / "copy"
    shutil.copytree(demo[0], root)
    with open_project(root) as project:
        person = add_user(project.store, "erin", role="annotator", password="erin-password")
        shown = next_item(project.store, person, project.config.annotate)
    assert shown is not None and shown.round == 2 and shown.view == "pair"


def test_demo_agreement_is_the_agreement_of_the_sample_votes(demo, samples):
    from sqlalchemy import select
    from statsmodels.stats.inter_rater import fleiss_kappa

    from curate.ingest import known_choices
    from curate.labels.agreement import agreement_report
    from curate.project import open_project
    from curate.store.schema import Item, Round

    root, _ = demo
    answers = known_choices(list(samples.values()))
    with open_project(root) as project:
        report = agreement_report(project, round_number=1, resamples=0)
        with project.store.read() as conn:
            pairs = [p for (p,) in conn.execute(select(Item.pair_id).join(Round, Round.id == Item.round_id)
                                                .where(Round.number == 1))]
    categories = ("a", "b", "tie", "both_bad")
    table = np.array([[[answers[p][k % len(answers[p])] for k in range(3)].count(c) for c in categories]
                      for p in pairs])
    assert report["items_multi"] == len(pairs)
    assert report["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(table), abs=1e-9)


def test_report_shows_both_rounds_with_pictures(demo):
    root, _ = demo
    page = (root / "report.html").read_text(encoding="utf-8")
    for heading in ("Where each round chose", "What each round selected, and why", "Round 1: the strategy",
                    "Round 2: the strategy", "Learning curve against the random arm", "Agreement", "Model versions",
                    "What changed between rounds", "dpo-lora-r1", "The pool by metadata", "<h3>topic</h3>"):
        assert heading in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 4 and all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    assert "<script" not in page  # one static file: no code, nothing fetched


def test_report_json_learning_curve_counts_the_arms_labels(demo, samples):
    from sqlalchemy import select

    from curate.labels import final_labels, preferences
    from curate.project import open_project
    from curate.report.data import report_data
    from curate.store.schema import Item, Round

    root, _ = demo
    with open_project(root) as project:
        data = report_data(project)
        labels = preferences(final_labels(project))
        with project.store.read() as conn:
            items = conn.execute(select(Round.number, Item.arm, Item.pair_id)
                                 .join(Round, Round.id == Item.round_id)).all()
    curve = data["learning_curve"]
    assert curve["rounds"] == [1, 2] and curve["note"] is None and curve["test_pairs"] >= 10
    for k, number in enumerate(curve["rounds"]):
        for arm in ("strategy", "random"):
            expected = {p for n, a, p in items if n <= number and a == arm and p in labels}
            assert curve[arm][k]["labels"] == len(expected)
        assert curve["both"][k]["labels"] == curve["strategy"][k]["labels"] + curve["random"][k]["labels"]
        accuracy = curve["both"][k]["accuracy"]
        assert accuracy is not None and 0 <= accuracy <= 1
    rounds = {r["number"]: r for r in data["rounds"]}
    assert rounds[1]["cold_start"] and rounds[1]["arms"]["test"] > 0 and rounds[2]["arms"]["random"] == 12
    assert rounds[1]["status"] == "closed" and rounds[2]["status"] == "open"
    (change,) = data["changes"]
    assert change["pool_pairs"][1] > change["pool_pairs"][0] and 0 <= change["cluster_shift"] <= 1


def test_report_command_writes_where_asked_and_refuses_a_project_without_rounds(demo, tmp_path):
    out = tmp_path / "nested" / "r.html"
    result = run_cli("report", "--project", str(demo[0]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    run_cli("init", str(tmp_path / "empty"))
    result = run_cli("report", "--project", str(tmp_path / "empty"))
    assert result.returncode == 1 and "no rounds yet" in result.stderr and len(result.stderr.splitlines()) == 1


def test_ingest_no_labels_keeps_the_texts_and_known_choices_are_the_labels(tmp_path, samples):
    from sqlalchemy import select

    from curate.ingest import ingest_files, known_choices
    from curate.project import init_project
    from curate.store.schema import Judgment

    result = run_cli("init", str(tmp_path / "bare"))
    result = run_cli("ingest", *map(str, samples.values()), "--no-labels", "--project", str(tmp_path / "bare"),
                     "--json")
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert sum(f["pairs"] for f in files) == 500 and all(f["judgments"] == {} for f in files)
    with init_project(tmp_path / "full") as project:  # the same files with their labels
        ingest_files(project, list(samples.values()))
        with project.store.read() as conn:
            crowd = conn.execute(select(Judgment.pair_id, Judgment.choice).where(Judgment.source == "crowd")).all()
    stored: dict[str, Counter] = {}
    for pair, choice in crowd:
        stored.setdefault(pair, Counter())[choice] += 1
    answers = known_choices(list(samples.values()))
    assert {p: Counter(v) for p, v in answers.items()} == stored  # same pairs, same votes, same A/B orientation


def test_demo_replaces_an_earlier_demo_project(tmp_path):
    from curate.demo import run_demo

    for _ in range(2):
        steps = run_demo(tmp_path / "demo-project")
        assert next(steps).name == "init" and next(steps).result.files[0].pairs == 300
        steps.close()
    assert (tmp_path / "demo-project" / "curate.toml").exists()


def test_demo_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    result = run_cli("demo", "--dir", str(tmp_path / "mine"))
    assert result.returncode == 1 and "is not a curate demo project" in result.stderr
    assert (tmp_path / "mine" / "thesis.tex").exists()
    run_cli("init", str(tmp_path / "real"))  # a real project is never wiped by a demo pointed at it
    result = run_cli("demo", "--dir", str(tmp_path / "real"))
    assert result.returncode == 1 and "a curate project that curate demo did not make" in result.stderr
    assert (tmp_path / "real" / "curate.db").exists() and len(result.stderr.splitlines()) == 1


def test_interactive_demo_serves_the_app_until_people_finish_round_1(tmp_path, samples):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from conftest import set_config
    from sqlalchemy import select

    from curate.annotate.client import AppClient
    from curate.demo import _people
    from curate.errors import CurateError
    from curate.ingest import ingest_files
    from curate.project import init_project, open_project
    from curate.report.data import write_report
    from curate.select.rounds import select_round
    from curate.store.schema import Judgment

    with init_project(tmp_path / "p") as project:
        ingest_files(project, list(samples.values()), labels=False)
    set_config(tmp_path / "p", "select", test_size=4, calibration_size=2)
    with open_project(tmp_path / "p") as project:
        select_round(project, budget=6, strategy="random")
        page = write_report(project).read_text(encoding="utf-8")  # nothing embedded or labelled yet
        assert "the test slice has 0 labelled pairs" in page and "(nothing to draw yet)" in page
        steps = _people(project)
        serve = next(steps)
        assert serve.name == "serve" and serve.result["url"].startswith("http://127.0.0.1:")
        judged: list[str] = []

        def person() -> None:
            with AppClient(serve.result["url"], serve.result["user"], serve.result["password"]) as lead:
                try:
                    while (item := lead.item()) is not None:
                        judged.append(lead.submit_pair(item, "A")["judgment"])
                except (httpx.HTTPError, CurateError):  # the demo closed the app once the round was done
                    pass

        worker = threading.Thread(target=person)
        worker.start()
        with ThreadPoolExecutor(1) as waiting:  # the demo goes on once round 1 is complete (a hang fails)
            assert waiting.submit(next, steps, None).result(timeout=120) is None
        worker.join(timeout=60)
        with project.store.read() as conn:
            stored = {r[0] for r in conn.execute(select(Judgment.id).where(Judgment.source == "app"))}
    assert len(judged) == 12 and set(judged) == stored  # 6 chosen + 4 test + 2 calibration items, all kept


@pytest.mark.skipif(not has_browser(), reason=NO_BROWSER)
def test_report_opens_in_a_browser_with_every_picture(demo, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser(1200, 2200)
    try:
        driver.get((demo[0] / "report.html").as_uri())
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) >= 4
        assert all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 300", img)
                   for img in images)
        headings = [h.text for h in driver.find_elements(By.TAG_NAME, "h3")]
        assert "Round 1: the strategy's first items" in headings and "Round 2: the strategy's first items" in headings
        rows = driver.find_elements(By.CSS_SELECTOR, "table tr")
        assert any(r.text.startswith("2 uncertainty") for r in rows)  # round 2's row in the rounds table
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert (tmp_path / "report.png").stat().st_size > 10_000



def test_report_escapes_the_data_it_shows(tmp_path):
    from curate.ingest import ingest_files
    from curate.project import init_project
    from curate.report.data import write_report
    from curate.select.rounds import select_round

    data = tmp_path / "hostile.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"<script>alert({i})</script><img src=x onerror=alert(1)> {i}",
                                        "chosen": f"a <b>good</b> answer {i}", "rejected": f"a bad answer {i}"}) + "\n"
                            for i in range(40)), encoding="utf-8")
    with init_project(tmp_path / "p") as project:
        ingest_files(project, [data])
        select_round(project, budget=10, strategy="random")
        page = write_report(project, out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(" in page  # the prompts are shown, as text
    assert "<script" not in page and "<img src=x" not in page
