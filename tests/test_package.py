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
from conftest import REPO


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


def test_every_public_name_is_the_function_even_after_its_modules_are_imported():
    import importlib
    import pkgutil

    import curate

    for module in pkgutil.walk_packages(curate.__path__, "curate."):  # a submodule named like an API function
        if not module.name.startswith(("curate.apps", "curate.recipes")):  # would shadow it once imported
            importlib.import_module(module.name)
    for name in curate.__all__:
        value = getattr(curate, name)
        assert name == "__version__" or (callable(value) and not isinstance(value, type(curate))), name


def test_the_cli_reference_in_docs_and_readme_is_current():
    from curate.cli_reference import README_END, README_START, cli_reference, command_table

    assert (REPO / "docs" / "cli.md").read_text(encoding="utf-8") == cli_reference(), \
        "docs/cli.md is stale: python -m curate.cli_reference"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index(README_START) + len(README_START):readme.index(README_END)]
    assert table.strip() == command_table(), "the README's command table is stale: python -m curate.cli_reference"
    for name in ("init", "ingest", "select", "serve", "export", "train", "generate", "report", "demo", "score entropy"):
        assert f"## curate {name}\n" in cli_reference()


def test_long_work_logs_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    """Piped to a file, a command shows no bar but timestamped lines (every CURATE_PROGRESS_SECONDS)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("curate")
    rows = "".join(f'{{"prompt": "Q{i}?", "chosen": "A{i}.", "rejected": "No."}}\n' for i in range(5))
    (tmp_path / "d.jsonl").write_text(rows)
    subprocess.run([exe, "init", tmp_path / "p"], check=True, capture_output=True)
    done = subprocess.run([exe, "ingest", tmp_path / "d.jsonl", "--project", tmp_path / "p"], capture_output=True,
                          text=True, env={**os.environ, "CURATE_PROGRESS_SECONDS": "0"}, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "reading d.jsonl" in line]
    assert [line.split(" ", 1)[1].split(" in ")[0] for line in lines] == [f"reading d.jsonl: {i}" for i in
                                                                          range(1, 6)]
    assert "\x1b[" not in done.stderr  # no bar, no escape codes
