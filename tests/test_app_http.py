"""The annotation app over HTTP, served for real (Gradio auth backed by the store): every flow through
gradio_client with auth, refusals (no session, wrong password, lock-out, someone else's item, lead-only
endpoints), the lead tab's agreement and adjudication, nothing served outside the app, and 8 annotators
x 500 submits at once."""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter

import httpx
import pytest
from conftest import APP_USERS, add_ranking_round, free_port, serving, set_config, start_server
from gradio_client import Client
from sqlalchemy import func, select

from curate import open_project, project_status
from curate.annotate.client import AppClient
from curate.errors import RefusedError
from curate.store.schema import Completion, Judgment


def login(url: str, name: str) -> Client:
    return Client(url, auth=(name, APP_USERS[name][1]), verbose=False)


@pytest.fixture(scope="module")
def served(annotation_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("served") / "proj"
    shutil.copytree(annotation_base, root)
    with serving(root) as url:
        yield url, root


def stored(root, judgment_id):
    with open_project(root) as project, project.store.read() as conn:
        return conn.execute(select(Judgment).where(Judgment.id == judgment_id)).first()


def test_pairwise_skip_flag_undo_and_stats_through_gradio_client(served):
    url, root = served
    bob = login(url, "bob")
    item = bob.predict(api_name="/item")
    assert item["view"] == "pair" and len(item["completions"]) == 2 and "model" not in str(item.keys())
    page = bob.predict(api_name="/next")  # what the page shows: the same item, and the progress line
    assert page[0]["assignment"] == item["assignment"] and "**bob** (annotator)" in page[3]
    result, message, last = bob.predict(str(item["assignment"]), item["token"], "B", 4, "clearer",
                                        api_name="/submit_pair")
    assert message == "saved" and not result["duplicate"] and last == str(item["assignment"])
    again, message, _ = bob.predict(str(item["assignment"]), item["token"], "B", 4, "clearer",
                                    api_name="/submit_pair")
    assert again == {**result, "duplicate": True} and "already saved" in message
    j = stored(root, result["judgment"])
    assert j.source == "app" and j.confidence == 4 and j.reason == "clearer" and j.instruction_version == "1"
    assert len(j.shown_order) == 2 and j.time_ms is not None and j.label_schema_version == "1"

    second = bob.predict(api_name="/item")
    assert second["assignment"] != item["assignment"]
    with pytest.raises(Exception, match="say why"):
        bob.predict(str(second["assignment"]), second["token"], "", api_name="/flag")
    bob.predict(str(second["assignment"]), second["token"], "the two texts are cut off", api_name="/flag")
    third = bob.predict(api_name="/item")
    _, message, last = bob.predict(str(second["assignment"]), api_name="/undo")
    assert "taken back" in message and last == ""
    with pytest.raises(Exception, match="only once"):
        bob.predict(str(second["assignment"]), api_name="/undo")
    assert bob.predict(api_name="/item")["assignment"] == second["assignment"]
    bob.predict(str(second["assignment"]), "flag-again-token", "the two texts are cut off", api_name="/flag")
    assert bob.predict(api_name="/item")["assignment"] == third["assignment"]
    line, table = bob.predict(api_name="/stats")
    assert "done 1" in line and [r[0] for r in table["data"]] == ["bob"]  # annotators see their own row
    with pytest.raises(Exception, match="only leads"):
        bob.predict(api_name="/flagged")
    flagged = login(url, "alice").predict(api_name="/flagged")
    assert [row[flagged["headers"].index("reason")] for row in flagged["data"]] == ["the two texts are cut off"]
    with open_project(root) as project:
        assert project_status(project)["judgments_by_source"]["app"] >= 1


def test_lead_tab_endpoints_adjudicate_and_refuse_annotators(served):
    from curate.labels import final_labels
    from curate.labels.adjudication import adjudication_queue

    url, root = served
    with open_project(root) as project:
        first, second = adjudication_queue(project)[:2]
    bob = login(url, "bob")
    with pytest.raises(Exception, match="only leads"):
        bob.predict(api_name="/lead")
    with pytest.raises(Exception, match="only leads"):
        bob.predict(first.pair_id, "b", "I think B", api_name="/adjudicate")
    with pytest.raises(Exception, match="only leads"):
        bob.predict(first.pair_id, api_name="/pair_detail")
    alice = login(url, "alice")
    summary, bars, confusion, title, queue, pick = alice.predict(api_name="/lead")
    assert "Fleiss" in summary and "Dawid–Skene" in summary and bars and confusion
    with open_project(root) as project:
        assert f"{len(adjudication_queue(project))} pairs" in title
    assert queue["data"][0][0] == pick["value"] == first.pair_id and len(pick["choices"]) == len(queue["data"])
    assert "Votes" in alice.predict(first.pair_id[:8], api_name="/pair_detail")
    with pytest.raises(Exception, match="no pair 'ffffffffff'"):
        alice.predict("ffffffffff", api_name="/pair_detail")
    with pytest.raises(Exception, match="needs a note"):
        alice.predict(first.pair_id, "a", "  ", api_name="/adjudicate")
    final, note = alice.predict(first.pair_id, "a", "A answers the stance", api_name="/adjudicate")
    assert "adjudicated by alice" in final and note == ""
    with open_project(root) as project:
        label = final_labels(project)[first.pair_id]
        assert (label.choice, label.how, label.decided_by) == ("a", "adjudicated", "alice")
        assert adjudication_queue(project)[0].pair_id == second.pair_id


def test_rank_and_rewrite_views_through_gradio_client(annotation, shared_data, tmp_path):
    from curate.select.rounds import select_round, set_round_status

    set_round_status(annotation, 1, "closed")
    select_round(annotation, budget=1, strategy="random", route="rewrite")
    add_ranking_round(annotation, shared_data, tmp_path)
    with serving(annotation.root) as url:
        carol = login(url, "carol")
        rewrite = carol.predict(api_name="/item")
        assert rewrite["view"] == "rewrite" and rewrite["round"] == 2
        text = rewrite["completions"][0] + " This is supported by several studies."
        result, message, _ = carol.predict(str(rewrite["assignment"]), rewrite["token"], text, None, "",
                                           api_name="/submit_rewrite")
        assert message == "rewrite saved"
        ranking = carol.predict(api_name="/item")
        assert ranking["view"] == "rank" and len(ranking["completions"]) == 4
        ranked, _, _ = carol.predict(str(ranking["assignment"]), ranking["token"], 3, "", 1, 2, 2, 4,
                                     *[None] * 4, api_name="/submit_rank")
        assert carol.predict(api_name="/item") is None  # nothing left in the open rounds
    j = stored(annotation.root, result["judgment"])
    with annotation.store.read() as conn:
        new = conn.execute(select(Completion).where(Completion.id == j.completion_id)).first()
    assert new.origin == "rewrite" and new.text == text and new.round_id is not None
    r = stored(annotation.root, ranked["judgment"])
    assert [len(group) for group in r.ranking] == [1, 2, 1] and r.confidence == 3


def test_no_session_wrong_password_and_lock_out_are_refused(served):
    url, _ = served
    anonymous = httpx.post(f"{url}/gradio_api/run/submit_pair", json={"data": ["1", "token-123", "A", None, ""]})
    assert anonymous.status_code in (401, 403)
    assert httpx.post(f"{url}/gradio_api/run/item", json={"data": []}).status_code in (401, 403)
    with pytest.raises(ValueError, match="Could not login"):
        Client(url, auth=("bob", "not-bob-password"), verbose=False)
    for _ in range(5):  # dave guesses five times: locked, and the right password is refused too
        assert httpx.post(f"{url}/login", data={"username": "dave", "password": "guess"}).status_code == 400
    assert httpx.post(f"{url}/login", data={"username": "dave", "password": "dave-password"}).status_code == 400
    with pytest.raises(RefusedError, match="login as dave refused"):
        AppClient(url, "dave", "dave-password")


def test_someone_elses_item_is_refused(served):
    url, _ = served
    with AppClient(url, "bob", "bob-password") as bob, AppClient(url, "carol", "carol-password") as carol:
        item = bob.item()
        with pytest.raises(RefusedError, match="not assigned to you"):
            carol.submit_pair(item, "A")
        with pytest.raises(RefusedError, match="not assigned to you"):
            carol.skip(item, "mine now")
        assert not bob.submit_pair(item, "A")["duplicate"]


def judgments(root) -> int:
    with open_project(root) as project, project.store.read() as conn:
        return conn.scalar(select(func.count()).select_from(Judgment))


def test_text_no_database_can_store_is_refused_naming_the_field(served):
    url, root = served
    before = judgments(root)
    with AppClient(url, "bob", "bob-password") as bob:
        item = bob.item()
        with pytest.raises(RefusedError, match=r"Reason \(optional; required to flag\) holds a NUL character"):
            bob.submit_pair(item, "A", reason="fine\x00")
        body = json.dumps({"data": [str(item["assignment"]), item["token"], "A", None, "fine\ud800"],
                           "session_hash": bob._session})  # the JSON escape: httpx would not encode it
        response = bob._http.post("/gradio_api/run/submit_pair", content=body,
                                  headers={"content-type": "application/json"})
        assert "holds a lone surrogate, which is not valid Unicode (\\ud800) at character 5" in response.json()["error"]
        assert judgments(root) == before
        assert not bob.submit_pair(item, "A", reason="fine")["duplicate"]


def test_nothing_is_served_outside_the_app(served):
    url, root = served
    with AppClient(url, "bob", "bob-password") as bob:
        http = bob._http
        for path in (root / "curate.db", root / "curate.toml", "/etc/passwd"):
            assert http.get(f"/gradio_api/file={path}").status_code in (403, 404)
        upload = http.post("/gradio_api/upload", files={"files": ("x.txt", b"hello" * 100)})
        assert upload.status_code >= 400
    assert httpx.get(f"{url}/gradio_api/file={root / 'curate.db'}").status_code in (401, 403, 404)


@pytest.mark.slow
def test_eight_annotators_500_submits_each_at_once_lose_and_double_nothing(annotation_base, tmp_path):
    root = tmp_path / "proj"
    shutil.copytree(annotation_base, root)
    set_config(root, "annotate", overlap=8)
    with open_project(root) as project:
        from curate.annotate.users import add_user

        names = [*APP_USERS, "erin", "frank", "grace", "heidi"]
        for name in names[4:]:
            add_user(project.store, name, role="annotator", password=f"{name}-password")
    acked: dict[str, list[str]] = {name: [] for name in names}
    errors: list[BaseException] = []

    def annotate(name: str) -> None:
        try:
            with AppClient(url, name, APP_USERS.get(name, ("", f"{name}-password"))[1]) as client:
                for n in range(500):
                    item = client.item()
                    saved = client.submit_pair(item, "AB"[n % 2])
                    if n % 25 == 0:  # a double click: the same token again
                        assert client.submit_pair(item, "A") == {**saved, "duplicate": True}
                    acked[name].append(saved["judgment"])
                assert client.item() is None
        except BaseException as err:  # reported below
            errors.append(err)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(root, port)  # its own process, as in production: the clients here do not slow it
    try:
        threads = [threading.Thread(target=annotate, args=(name,)) for name in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.terminate()
        server.wait()
    assert not errors, errors[:3]
    with open_project(root) as project, project.store.read() as conn:
        rows = conn.execute(select(Judgment.id, Judgment.item_id, Judgment.annotator_id)
                            .where(Judgment.source == "app")).all()
        per_item = Counter(r.item_id for r in rows)
        assert conn.scalar(select(func.count(func.distinct(Judgment.annotator_id)))
                           .where(Judgment.source == "app")) == 8
    assert len(rows) == 8 * 500 == len({(r.item_id, r.annotator_id) for r in rows})
    assert set(per_item.values()) == {8} and len(per_item) == 500
    assert {j for ids in acked.values() for j in ids} == {r.id for r in rows}


def test_editing_the_instructions_bumps_the_version_later_judgments_carry(served):
    url, root = served
    with AppClient(url, "carol", "carol-password") as carol:
        first = carol.submit_pair(carol.item(), "A")
        (root / "instructions.md").write_text("# Rules, second edition\n\nPrefer arguments with evidence.\n")
        second = carol.submit_pair(carol.item(), "B")
    assert stored(root, first["judgment"]).instruction_version == "1"
    assert stored(root, second["judgment"]).instruction_version == "2"
    shown = login(url, "alice").predict(api_name="/next")
    assert shown[0]["view"] == "pair"
