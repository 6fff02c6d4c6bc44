"""The built wheel carries the apps, the recipes and the demo sample, and installs a working `curate`."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, run_cli


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the source (a stale build/ folder would hide a missing package)."""
    import shutil

    source, out = tmp_path_factory.mktemp("src") / "curate", tmp_path_factory.mktemp("dist")
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", "build", "dist", ".git", "*.egg-info",
                                                                "__pycache__", ".*_cache", "demo-project"))
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)],
                   check=True, capture_output=True, text=True)
    return next(out.glob("curate_toolkit-*.whl"))


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("curate/cli.py", "curate/apps/__init__.py", "curate/recipes/__init__.py",
                     "curate/samples/NOTICE.md", "curate/samples/pandalm-sample.jsonl.gz",
                     "curate/samples/ukp-convarg1-sample.jsonl.gz",
                     *(f"curate/recipes/{k}-lora.yaml" for k in ("sft", "dpo", "reward", "kto"))):
        assert expected in names
    assert not any(n.startswith(("tests/", "apps/", "recipes/")) for n in names)
    modules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "curate").rglob("*.py"))
    assert [m for m in modules if m not in names] == []  # every module of every subpackage ships


def test_wheel_installs_into_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # Dependencies come from this environment (a .pth line); the package itself only from the wheel.
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)], check=True)
    help_text = subprocess.run([str(venv / "bin" / "curate"), "--help"], check=True, capture_output=True,
                               text=True, cwd=tmp_path).stdout
    assert "ingest" in help_text and "demo" in help_text
    where = subprocess.run([str(py), "-c", "import curate, curate.apps, curate.recipes; print(curate.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(venv))
    curate = str(venv / "bin" / "curate")
    subprocess.run([curate, "init", str(tmp_path / "p")], check=True, capture_output=True, cwd=tmp_path)
    sample = subprocess.run([str(py), "-c", "from curate.samples import sample_paths; print(sample_paths()[0])"],
                            check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert sample.startswith(str(venv))  # the demo sample ships inside the wheel
    ingest = subprocess.run([curate, "ingest", sample, "--project", str(tmp_path / "p"), "--json"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["files"][0]["pairs"] == 300
    listed = subprocess.run([curate, "recipes", "list", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert sorted(r["kind"] for r in json.loads(listed.stdout)) == ["dpo", "kto", "reward", "sft"]  # from the wheel


def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.slow
def test_demo_runs_the_loop_and_ends_with_a_status_table(tmp_path, samples):
    ukp, pandalm = _read(samples["ukp"]), _read(samples["pandalm"])
    result = run_cli("demo", "--dir", str(tmp_path / "demo-project"), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    for step in ("embed:", "cluster:", "dedup:", "map:", "committee:", "select: round 1, 40 pairs", "near duplicates"):
        assert step in result.stdout
    status = json.loads(run_cli("status", "--project", str(tmp_path / "demo-project"), "--json").stdout)
    assert status["pairs"] == len(ukp) + len(pandalm) and status["cluster_runs"] == 1
    assert status["judgments_by_source"] == {"crowd": sum(len(r["workers"]) for r in ukp) + 3 * len(pandalm),
                                             "gold": sum(r["gold"] is not None for r in ukp)}
    assert (tmp_path / "demo-project" / "maps" / "pair.html").exists()
    assert status["latest_round"]["arms"]["random"] == 4 and status["slices"]["test"] >= 50
    assert status["scores"]["committee"]["stale"] is False  # refitted without the slices
    assert (tmp_path / "demo-project" / "rounds" / "0001" / "manifest.json").exists()


def test_demo_replaces_an_earlier_demo_project(tmp_path):
    from curate.demo import run_demo

    for _ in range(2):
        steps = run_demo(tmp_path / "demo-project")
        assert next(steps).name == "init" and next(steps).result.files[0].pairs == 300
        steps.close()
    assert (tmp_path / "demo-project" / "curate.toml").exists()


def test_demo_refuses_to_replace_a_folder_that_is_not_a_project(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    result = run_cli("demo", "--dir", str(tmp_path / "mine"))
    assert result.returncode == 1 and "is not a curate project" in result.stderr
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_samples_are_unchanged_rows_of_the_shared_data(samples, shared_data):
    def rows(path: Path) -> list[str]:
        return [json.dumps(row, sort_keys=True) for row in _read(path)]

    for sample, source in ((samples["pandalm"], "pandalm-testset-v1.jsonl.gz"),
                           (samples["ukp"], "ukp-convarg1-dev.jsonl.gz")):
        assert set(rows(sample)) <= set(rows(shared_data / source))


def test_cli_start_up_imports_no_heavy_libraries():
    code = ("import sys, curate.cli, curate; heavy = {'torch', 'transformers', 'gradio', 'datasets', "
            "'sentence_transformers', 'pyarrow', 'trl', 'peft'} & set(sys.modules); print(sorted(heavy))")
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == "[]"
