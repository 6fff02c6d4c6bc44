"""Shared fixtures: the real data, projects on SQLite and on a throw-away PostgreSQL 15 cluster."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from curate import embed_pool, ingest_files, init_project, open_project
from curate.samples import sample_paths

REPO = Path(__file__).resolve().parents[1]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _shared_data() -> Path | None:
    for candidate in (os.environ.get("CURATE_SHARED_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "ukp-convarg1-dev.jsonl.gz").is_file():
            return Path(candidate)
    return None


SHARED_DATA = _shared_data()
needs_shared_data = pytest.mark.skipif(
    SHARED_DATA is None, reason="../shared/data not found (set CURATE_SHARED_DATA to the folder)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if SHARED_DATA is None:
        pytest.skip("../shared/data not found (set CURATE_SHARED_DATA to the folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    return {p.name.split("-")[0]: p for p in sample_paths()}


def run_as_postgres(*args: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL 15 cluster in a temp dir on a free port, for this test session only."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN} (make test installs them)")
    root = Path(tempfile.mkdtemp(prefix="pg."))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    data = root / "data"
    run_as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--no-locale", "--no-sync")
    run_as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "30",
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        run_as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: str) -> str:
    """A new empty database on the throw-away server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    """The database URL for a new project: None (SQLite in the project) or a PostgreSQL database."""
    return None if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def project(tmp_path: Path, backend: str | None):
    with init_project(tmp_path / "proj", db_url=backend) as proj:
        yield proj


@pytest.fixture
def sqlite_project(tmp_path: Path):
    with init_project(tmp_path / "proj") as proj:
        yield proj


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed ``curate`` console script as a user would."""
    exe = Path(sys.executable).with_name("curate")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Call the CLI in-process: ``code, out, err = cli("status", "--json")``."""
    from curate.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["curate", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture(scope="session")
def ukp_embedded(tmp_path_factory, samples) -> Path:
    """A project holding the bundled UKP sample, embedded with the default model (built once)."""
    root = tmp_path_factory.mktemp("ukp") / "proj"
    with init_project(root) as project:
        ingest_files(project, [samples["ukp"]])
        embed_pool(project)
    return root


def private_copy(base: Path, tmp_path: Path):
    """Open a copy of the project at ``base`` (SQLite file, cache and all) in ``tmp_path``."""
    root = tmp_path / "proj"
    shutil.copytree(base, root)
    with open_project(root) as project:
        yield project


@pytest.fixture
def ukp(ukp_embedded, tmp_path):
    """A private copy of the embedded project."""
    yield from private_copy(ukp_embedded, tmp_path)


@pytest.fixture(scope="session")
def ukp_lm_states(ukp_embedded, model_cache, tmp_path_factory):
    """The embedded UKP sample scored once by the Laplace learner on SmolLM2's LM states (cached in the
    project's cache/scores/states): the project's root and the run's result."""
    from curate.scores.committee import score_committee

    root = tmp_path_factory.mktemp("lm") / "proj"
    shutil.copytree(ukp_embedded, root)
    shutil.copytree(model_cache / "models", root / "cache" / "models", dirs_exist_ok=True)
    with open_project(root) as project:
        return root, score_committee(project, learner="laplace", features="lm")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A cache folder holding the packaged SmolLM2, dequantised once for the session."""
    from curate.models import DEFAULT_POLICY, resolve_model

    cache = tmp_path_factory.mktemp("cache")
    resolve_model(DEFAULT_POLICY, cache=cache)
    return cache


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, model_cache) -> dict[str, Path]:
    """Tiny random Llamas with SmolLM2's tokenizer, saved as folders: ``causal`` (a causal LM),
    ``reward1``/``reward2`` (one-output sequence classifiers, different seeds), ``reward_lora`` (a SEQ_CLS
    LoRA adapter with its score head on ``causal``) and ``dpo_lora`` (a CAUSAL_LM LoRA adapter on it).
    LoRA weights are randomised so an adapter really changes its base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    from curate.models import DEFAULT_POLICY, resolve_model

    root = tmp_path_factory.mktemp("tiny")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(DEFAULT_POLICY, cache=model_cache).path)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id, num_labels=1)
    paths = {name: root / name for name in ("causal", "reward1", "reward2", "reward_lora", "dpo_lora")}

    def randomise_lora(model) -> None:
        generator = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(paths["causal"])
    for seed, name in ((1, "reward1"), (2, "reward2")):
        torch.manual_seed(seed)
        LlamaForSequenceClassification(config).save_pretrained(paths[name])
    for name in ("causal", "reward1", "reward2"):
        tokenizer.save_pretrained(paths[name])
    torch.manual_seed(3)
    reward = get_peft_model(LlamaForSequenceClassification.from_pretrained(paths["causal"], num_labels=1),
                            LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    randomise_lora(reward)
    reward.save_pretrained(paths["reward_lora"])
    policy = get_peft_model(LlamaForCausalLM.from_pretrained(paths["causal"]),
                            LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    randomise_lora(policy)
    policy.save_pretrained(paths["dpo_lora"])
    return paths


# The annotation app: users (name -> (role, password)) and a project with a round to annotate.
APP_USERS = {"alice": ("lead", "alice-password"), "bob": ("annotator", "bob-password"),
             "carol": ("annotator", "carol-password"), "dave": ("annotator", "dave-password")}


def set_config(root: Path, section: str, **values: object) -> None:
    """Change keys of one section of a project's curate.toml (validated as curate reads it)."""
    from curate.config import update_config

    update_config(root / "curate.toml", section, **values)


@pytest.fixture(scope="session")
def annotation_base(tmp_path_factory, shared_data) -> Path:
    """UKP dev (real crowd votes and gold) with round 1: 500 random pairs to rank; app users added."""
    from curate.annotate.users import add_user
    from curate.select.rounds import select_round

    root = tmp_path_factory.mktemp("annotation") / "proj"
    with init_project(root) as project:
        ingest_files(project, [shared_data / "ukp-convarg1-dev.jsonl.gz"])
        select_round(project, budget=500, strategy="random", route="rank")
        for name, (role, password) in APP_USERS.items():
            add_user(project.store, name, role=role, password=password)
    return root


@pytest.fixture
def annotation(annotation_base, tmp_path):
    """A private copy of ``annotation_base``."""
    yield from private_copy(annotation_base, tmp_path)


@pytest.fixture(scope="session")
def judged_base(annotation_base, tmp_path_factory, shared_data) -> Path:
    """``annotation_base`` with round 1 judged in the app: one simulated annotator gives each item its first
    recorded crowd vote (the round's own judgments, as a round export needs)."""
    from curate.annotate.simulated import answer_queue
    from curate.ingest import known_choices

    root = tmp_path_factory.mktemp("judged") / "proj"
    shutil.copytree(annotation_base, root)
    with open_project(root) as project:
        answer_queue(project, known_choices([shared_data / "ukp-convarg1-dev.jsonl.gz"]), annotators=1)
    return root


@pytest.fixture
def judged(judged_base, tmp_path):
    """A private copy of ``judged_base``."""
    yield from private_copy(judged_base, tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_ranking_round(project, shared_data: Path, folder: Path) -> int:
    """Ingest one prompt with four completions (real UKP arguments) and select it as a ranking round
    (the rules strategy finds it by its prompt). Returns the round number."""
    import gzip
    import json

    from curate.select.rounds import select_round

    rows, texts = [], set()
    with gzip.open(shared_data / "ukp-convarg1-dev.jsonl.gz", "rt") as f:
        for line in f:  # two pairs of four different arguments
            row = json.loads(line)
            if len(rows) < 2 and not {row["a1"], row["a2"]} & texts and row["a1"] != row["a2"]:
                rows.append(row)
                texts |= {row["a1"], row["a2"]}
    data = folder / "four-arguments.jsonl"
    data.write_text("".join(json.dumps({"prompt": "Which argument is strongest? Rank all four.",
                                        "chosen": r["a1"], "rejected": r["a2"]}) + "\n" for r in rows))
    ingest_files(project, [data])
    rules = folder / "rules.txt"
    rules.write_text("Rank all four\n")
    return select_round(project, budget=1, strategy="rules", options={"path": str(rules)}, random_frac=0.0,
                        route="ranking").number


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """The annotation app of the project at ``root``, served in this process on a free port: its URL."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from curate.apps.annotate import launch

    with open_project(root) as project:
        port = free_port()
        app = launch(project, port=port, block=False)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            app.close()


def start_server(root: Path, port: int) -> subprocess.Popen:
    """`curate serve` on ``root`` as a real process, once it answers on ``port``."""
    import httpx

    proc = subprocess.Popen([str(Path(sys.executable).with_name("curate")), "serve", "--project", str(root),
                             "--port", str(port)], env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"curate serve exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("curate serve did not start")


def hh_as_messages(text: str) -> list[dict[str, str]]:
    """An hh-rlhf transcript ("\\n\\nHuman: ... \\n\\nAssistant: ...") as chat messages."""
    import re

    parts = re.split(r"\n\n(Human|Assistant): ", "\n\n" + text.strip())[1:]
    return [{"role": "user" if who == "Human" else "assistant", "content": said.strip()}
            for who, said in zip(parts[::2], parts[1::2], strict=True)]


def hh_chat_file(shared_data: Path, folder: Path, rows: int) -> Path:
    """The first ``rows`` hh-rlhf dev pairs that share their conversation up to the last answer, written as TRL
    conversational preference rows (prompt / chosen / rejected messages) to ``folder``/chat.jsonl."""
    import gzip
    import json

    found = []
    with gzip.open(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            chosen, rejected = (hh_as_messages(json.loads(line)[k]) for k in ("chosen", "rejected"))
            if len(chosen) > 1 and chosen[:-1] == rejected[:-1] and chosen[-1] != rejected[-1]:
                found.append({"prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:]})
            if len(found) == rows:
                break
    data = folder / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in found), encoding="utf-8")
    return data


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NO_BROWSER = "Debian chromium and chromium-driver are not installed (make test installs them)"


def has_browser() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def browser(width: int = 1280, height: int = 1000):
    """A real headless Chromium through Selenium (Debian's chromium + chromedriver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    return driver
