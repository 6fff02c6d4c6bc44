"""A real headless Chromium (Debian's chromium + chromedriver, through Selenium) on the annotation app:
two annotators log in at once in two browsers; one judges three pairs by keyboard, does a rewrite and a
ranking; then a lead adjudicates a disagreement in the lead tab. Screenshots of the views are saved (to
$CURATE_SCREENSHOTS, e.g. docs/app, or a temp dir)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import APP_USERS, NO_BROWSER, add_ranking_round, browser, has_browser, serving
from sqlalchemy import select

from curate import open_project
from curate.labels import final_labels
from curate.labels.adjudication import adjudication_queue
from curate.store.schema import Annotator, Judgment

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not has_browser(), reason=NO_BROWSER)]


def wait_for(driver, script: str, timeout: float = 30.0):
    """Poll a JavaScript expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {script}")


TOKEN = "(document.querySelector('#token textarea, #token input') || {}).value"
VISIBLE = "(id) => { const e = document.getElementById(id); return !!(e && e.offsetParent !== null); }"


def log_in(driver, url: str, name: str, ready: str = TOKEN) -> str:
    """Log in as ``name``; the value of ``ready`` (by default the token of the first item served)."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(driver, "document.querySelector('input[type=password]')")
    driver.find_element(By.CSS_SELECTOR, "input[type=text], input:not([type])").send_keys(name)
    password = driver.find_element(By.CSS_SELECTOR, "input[type=password]")
    password.send_keys(APP_USERS[name][1])
    password.submit() if password.get_attribute("form") else driver.find_element(
        By.XPATH, "//button[contains(., 'Login')]").click()
    return wait_for(driver, ready, 60)


def open_tab(driver, label: str, shown_id: str) -> None:
    """Click the tab called ``label`` until ``shown_id`` is visible (the lead tabs are re-rendered when the
    page's statistics load makes them visible, which can swallow a click made just before)."""
    wait_for(driver, f"({VISIBLE})('{shown_id}') || void [...document.querySelectorAll('button[role=tab]')]"
                     f".find(b => b.innerText.includes('{label}'))?.click()", 60)


def view_is(driver, view_id: str) -> bool:
    return driver.execute_script(f"return ({VISIBLE})('{view_id}')")


def press(driver, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("document.activeElement && document.activeElement.blur()")
    for key in keys:
        ActionChains(driver).send_keys(key).perform()
        time.sleep(0.15)


def next_token(driver, old: str) -> str:
    return wait_for(driver, f"{TOKEN} && {TOKEN} !== '{old}' && {TOKEN}")


def test_two_annotators_in_two_browsers_keyboard_rewrite_ranking_and_screenshots(annotation_base, tmp_path,
                                                                                   shared_data):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots = Path(os.environ.get("CURATE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "proj"
    shutil.copytree(annotation_base, root)
    with open_project(root) as project:
        from curate.select.rounds import select_round

        select_round(project, budget=1, strategy="random", route="rewrite")  # round 2
        add_ranking_round(project, shared_data, tmp_path)  # round 3
    bob, carol = browser(), browser()
    try:
        with serving(root) as url:
            token_bob, token_carol = log_in(bob, url, "bob"), log_in(carol, url, "carol")
            assert view_is(bob, "pair-view") and view_is(carol, "pair-view")
            tabs = [t.text for t in bob.find_elements(By.CSS_SELECTOR, "[role=tab]")]
            assert "Annotate" in tabs and "Review" not in tabs and "Adjudicate" not in tabs  # leads only
            assert "**" not in bob.find_element(By.ID, "progress").text  # markdown rendered
            bob.save_screenshot(str(shots / "app-pairwise.png"))
            for key in ("1", "2", "3"):  # bob: three pairs by keyboard (choice, then Enter)
                press(bob, key)
                assert bob.execute_script("return document.querySelector('#choice input:checked').value") == \
                    {"1": "A", "2": "B", "3": "tie"}[key]
                press(bob, Keys.ENTER)
                token_bob = next_token(bob, token_bob)
                if key == "1":  # carol, at the same time, in her own browser
                    press(carol, "4", Keys.ENTER)
                    token_carol = next_token(carol, token_carol)
            assert "done 3" in bob.find_element(By.ID, "progress").text

            from curate.select.rounds import set_round_status

            with open_project(root) as lead:  # the lead closes round 1: bob reloads and gets the rewrite
                set_round_status(lead, 1, "closed")
            bob.refresh()
            wait_for(bob, f"({VISIBLE})('rewrite-view')", 60)
            editor = bob.find_element(By.CSS_SELECTOR, "#editor textarea")
            editor.send_keys(Keys.END, " This is shown by several studies.")
            wait_for(bob, "document.querySelector('#diff ins')")
            bob.save_screenshot(str(shots / "app-rewrite.png"))
            token_bob = bob.execute_script(f"return {TOKEN}")
            editor.send_keys(Keys.CONTROL, Keys.ENTER)
            token_bob = next_token(bob, token_bob)
            wait_for(bob, f"({VISIBLE})('rank-view')")
            boxes = bob.find_elements(By.CSS_SELECTOR, "[id^=rank-] input")
            assert len([b for b in boxes if b.is_displayed()]) == 4
            for box, rank in zip(boxes, (2, 1, 3, 3), strict=False):
                box.send_keys(Keys.CONTROL, "a")
                box.send_keys(str(rank))
            bob.save_screenshot(str(shots / "app-rank.png"))
            bob.find_element(By.ID, "submit-rank").click()
            wait_for(bob, "document.body.innerText.includes('Nothing left to do')")

            # the lead adjudicates the first disagreement of the queue (crowd votes tied 2-2-1) in her browser
            with open_project(root) as project:
                first = adjudication_queue(project)[0]
            lead = carol
            lead.delete_all_cookies()
            log_in(lead, url, "alice", ready="document.body.innerText.includes('Nothing left to do')")
            open_tab(lead, "Adjudicate", "adjudicate-detail")
            wait_for(lead, "(document.querySelector('#adjudicate-detail') || {}).innerText?.includes('Votes')", 120)
            assert first.pair_id[:12] in lead.find_element(By.CSS_SELECTOR, "#adjudicate-pair input").get_attribute(
                "value")
            assert "Fleiss" in lead.find_element(By.ID, "agreement-summary").text
            wait_for(lead, "document.querySelectorAll('#agreement-bars img, #agreement-bars svg, #confusion img, "
                           "#confusion svg').length >= 2", 60)
            lead.find_element(By.CSS_SELECTOR, "#decision input[value='b']").click()
            lead.find_element(By.CSS_SELECTOR, "#adjudicate-note textarea").send_keys("B argues the stance; A drifts")
            lead.find_element(By.ID, "decide").click()
            wait_for(lead, "(document.querySelector('#final-label') || {}).innerText?.includes('adjudicated')", 60)
            assert "adjudicated by alice" in lead.find_element(By.ID, "final-label").text
            lead.save_screenshot(str(shots / "app-adjudicate.png"))
            lead.set_window_size(1280, 1500)
            lead.execute_script("window.scrollTo(0, 0)")
            lead.save_screenshot(str(shots / "app-lead.png"))
    finally:
        bob.quit()
        carol.quit()
    with open_project(root) as project, project.store.read() as conn:
        rows = conn.execute(select(Annotator.name, Judgment.kind, Judgment.choice, Judgment.shown_order,
                                   Judgment.instruction_version, Judgment.time_ms, Judgment.ranking)
                            .join(Annotator, Annotator.id == Judgment.annotator_id)
                            .where(Judgment.source == "app").order_by(Judgment.created_at)).all()
    kinds = [(r.name, r.kind) for r in rows]
    assert sorted(kinds) == sorted([("bob", "pair")] * 3 + [("carol", "pair"), ("bob", "rewrite"),
                                                               ("bob", "ranking")])
    assert [r.choice for r in rows if r.name == "bob" and r.kind == "pair"][2] == "tie"
    assert all(r.instruction_version == "1" and r.time_ms > 0 and r.shown_order for r in rows)
    ranking = next(r.ranking for r in rows if r.kind == "ranking")
    assert [len(group) for group in ranking] == [1, 1, 2]
    with open_project(root) as project:
        label = final_labels(project)[first.pair_id]
    assert (label.choice, label.how, label.decided_by) == ("b", "adjudicated", "alice")
    for name in ("app-pairwise.png", "app-rewrite.png", "app-rank.png", "app-adjudicate.png", "app-lead.png"):
        assert (shots / name).stat().st_size > 10_000
