"""The README's "Five minutes on your own data", run as written: its commands, in its order, on a JSONL file
of our own (real UKPConvArg1 arguments), with two people judging in the served app over HTTP."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO, free_port, run_cli, set_config, start_server

PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}


def _tutorial_lines() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Five minutes on your own data"):]
    section = section[:section.index("\n## ")]
    block = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def _own_file(shared_data: Path, path: Path, rows: int) -> dict[tuple[str, str], str]:
    """A pool file in the tutorial's layout, and each pair's gold winner by its two texts."""
    gold, out = {}, []
    with gzip.open(shared_data / "ukp-convarg1-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["a1"].strip() == row["a2"].strip():
                continue
            out.append({"prompt": f"Which argument is more convincing? {row['title']}", "response_a": row["a1"],
                        "response_b": row["a2"]})
            gold[(row["a1"].strip(), row["a2"].strip())] = row["gold"]
            if len(out) == rows:
                break
    path.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return gold


def _judge(url: str, name: str, gold: dict[tuple[str, str], str]) -> int:
    """Judge every item the app gives ``name``: the gold winner as shown, tie where gold is equal or absent."""
    from curate.annotate.client import AppClient

    done = 0
    with AppClient(url, name, PASSWORDS[name]) as client:
        while (item := client.item()) is not None:
            left, right = (text.strip() for text in item["completions"])
            winner = gold.get((left, right)) or {"a1": "a2", "a2": "a1"}.get(gold.get((right, left)) or "", "equal")
            client.submit_pair(item, {"a1": "A", "a2": "B"}.get(winner, "tie"))
            done += 1
    return done


@pytest.mark.slow
def test_the_readme_tutorial_takes_a_file_through_a_full_round(tmp_path, shared_data, tiny_models):
    data = tmp_path / "data" / "pool.jsonl"
    data.parent.mkdir()
    gold = _own_file(shared_data, data, rows=150)
    cwd, judged, ran = tmp_path, {}, []
    for line in _tutorial_lines():
        if line.startswith("source "):  # the test runs the venv's curate already
            continue
        if line.startswith("# edit curate.toml: [annotate] overlap = 2"):
            set_config(cwd, "annotate", overlap=2)
            continue
        for command in line.split("&&"):
            words = shlex.split(command.split(" #")[0])
            while "=" in words[0]:  # CURATE_PASSWORD=... : the test sets each user's password itself
                words.pop(0)
            if words[0] == "cd":
                cwd = cwd / words[1]
                continue
            assert words[0] == "curate", line
            words = [str(data) if w == "~/data/pool.jsonl" else w for w in words[1:]]
            if words == ["serve"]:
                port = free_port()
                server = start_server(cwd, port)
                try:
                    judged = {name: _judge(f"http://127.0.0.1:{port}", name, gold) for name in ("bob", "alice")}
                finally:
                    server.terminate()
                    server.wait(timeout=30)
                continue
            if words[:2] == ["user", "add"]:
                os.environ["CURATE_PASSWORD"] = PASSWORDS[words[2]]
            if words[0] == "train":
                # the packaged SmolLM2 is the demo's; a tiny model and a few short steps test the flow, not a model
                words += ["--set", f"model={tiny_models['causal']}", "--set", "train.max_length=128",
                          "--set", "train.max_steps=2", "--set", "train.eval_examples=4"]
            try:
                result = run_cli(*words, cwd=cwd, timeout=600)
            finally:
                os.environ.pop("CURATE_PASSWORD", None)
            assert result.returncode == 0, f"{line}: {result.stderr}"
            ran.append((words, result.stdout))
    commands = [w[0] for w, _ in ran]
    assert commands == ["init", "ingest", "ingest", "embed", "cluster", "select", "user", "user", "status", "agreement",
                        "adjudicate", "export", "train", "report"]
    status = json.loads(run_cli("status", "--json", cwd=cwd).stdout)
    items = status["items"]
    assert judged["bob"] + judged["alice"] == 2 * items  # every item of round 1 judged by both, in the app
    assert status["judgments_by_source"] == {"app": 2 * items}
    (model,) = status["trained_models"]
    assert model["name"] == "dpo-lora-r1" and model["round"] == 1 and model["test"]["examples"] > 0
    train = (cwd / "round1.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(train) == model["data"]["train"]["rows"] > 0
    assert (cwd / "round1.test.jsonl").is_file() and (cwd / "report.html").is_file()
    agreement = next(out for words, out in ran if words[0] == "agreement")
    assert "Fleiss" in agreement


@pytest.mark.slow
def test_the_readme_python_example_runs(tmp_path, shared_data, tiny_models, monkeypatch):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API"):]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    rows = []
    with gzip.open(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            rows.append(line)
            if len(rows) == 150:
                break
    (tmp_path / "prefs.jsonl").write_text("".join(rows), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = code.replace('overrides=["train.max_steps=10"]',  # a tiny model and short steps: the API, not a model
                        f'overrides=["train.max_steps=2", "model={tiny_models["causal"]}", "train.eval_examples=4", '
                        '"train.max_length=128"]')
    assert "model=" in code  # the example still trains with overrides, as the test assumes
    exec(compile(code, "README.md", "exec"), {})
    status = json.loads(run_cli("status", "--project", "myproj", "--json", cwd=tmp_path).stdout)
    assert status["rounds"] == 1 and status["trained_models"][0]["name"] == "dpo-lora-r1"
    assert (tmp_path / "myproj" / "report.html").is_file() and (tmp_path / "myproj" / "exports" / "r1.jsonl").is_file()
