"""Token entropy on the packaged SmolLM2: batched numbers equal a one-at-a-time loop; the CLI end to end."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from curate import ingest_files, init_project, open_project, project_status
from curate.rendering import Content, Conversation, Rendering
from curate.scores.entropy import STATS, token_entropy
from curate.scores.lm import load_causal_lm


@pytest.fixture(scope="session")
def smollm2(model_cache):
    from curate.models import DEFAULT_POLICY, resolve_model

    return load_causal_lm(resolve_model(DEFAULT_POLICY, cache=model_cache))


@pytest.fixture(scope="session")
def examples(samples) -> tuple[list[str], list[str]]:
    """Twelve real PandaLM prompts and responses of mixed lengths, an empty response among them."""
    with gzip.open(samples["pandalm"], "rt") as fh:
        rows = [json.loads(line) for line in fh]
    rows = [r for r in rows if isinstance(r["response1"], str)]
    empty = next(r for r in rows if not r["response1"].strip())
    answered = sorted((r for r in rows[:60] if r["response1"].strip()), key=lambda r: len(r["response1"]))
    chosen = [*answered[::5][:11], empty]
    return [f"{r['instruction']}\n\n{r['input']}".strip() for r in chosen], [r["response1"] for r in chosen]


def talk(prompts: list[str], completions: list[str]) -> list[Conversation]:
    """Plain-text prompts and completions as conversations."""
    return [Conversation(Content(p), Content(c)) for p, c in zip(prompts, completions, strict=True)]


def encode(tokenizer, prompt: str, completion: str, *, max_length: int):
    return Rendering(tokenizer, name="SmolLM2").encode(Conversation(Content(prompt), Content(completion)),
                                                       max_length=max_length)


def naive_entropy(model, tokenizer, prompt: str, completion: str, max_length: int = 1024) -> list[float]:
    """One example at a time, no padding, the full logits: the reference the batched code must match."""
    import torch

    e = encode(tokenizer, prompt, completion, max_length=max_length)
    with torch.no_grad():
        logits = model(torch.tensor([e.prompt + e.completion])).logits[0].float()
    logp = torch.log_softmax(logits[len(e.prompt) - 1:len(e.prompt) - 1 + len(e.completion)], dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    actual = logp.gather(-1, torch.tensor(e.completion)[:, None]).squeeze(-1)
    return [entropy.mean().item(), entropy.max().item(), entropy.sum().item(), actual.mean().item(),
            len(e.completion), float(e.truncated)]


@pytest.mark.slow
def test_batched_entropy_equals_the_naive_loop(smollm2, examples):
    model, tokenizer = smollm2
    prompts, completions = examples
    batched = token_entropy(model, tokenizer, talk(prompts, completions))
    reference = np.array([naive_entropy(model, tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)])
    assert batched.shape == (12, len(STATS))
    assert np.abs(batched - reference).max() < 1e-4
    end_of_turn = tokenizer("<|im_end|>\n", add_special_tokens=False)["input_ids"]
    assert batched[-1, STATS.index("tokens")] == len(end_of_turn) == 2  # the empty response: the template's end only
    assert (batched[:, STATS.index("entropy_max")] >= batched[:, STATS.index("entropy_mean")]).all()


@pytest.mark.slow
def test_lm_states_equal_the_naive_loop_and_are_cached(smollm2, examples, model_cache):
    import torch

    from curate.errors import CurateError
    from curate.scores.states import completion_states, lm_states, standardise_states

    model, tokenizer = smollm2
    prompts, completions = examples
    states = lm_states(model, tokenizer, talk(prompts, completions), layer=20)
    reference = []
    for prompt, completion in zip(prompts, completions, strict=True):
        e = encode(tokenizer, prompt, completion, max_length=1024)
        with torch.no_grad():
            hidden = model(torch.tensor([e.prompt + e.completion]), output_hidden_states=True).hidden_states[20]
        reference.append(hidden[0, len(e.prompt):].mean(0).double().numpy())
    reference = np.array(reference)
    assert states.shape == (12, model.config.hidden_size)
    assert np.abs(states - reference).max() < 1e-5 * np.abs(reference).max()
    rows = [(str(i), c) for i, c in enumerate(talk(prompts, completions))]
    first, computed = completion_states(rows, cache=model_cache, layer=20)
    again, recomputed = completion_states(rows, cache=model_cache, layer=20)
    assert (computed, recomputed) == (12, 0) and np.array_equal(first, again)
    assert np.abs(first - states).max() < 1e-5 * np.abs(states).max()  # stored as float32
    z = standardise_states(first)
    assert np.allclose(z.mean(0), 0, atol=1e-9) and np.linalg.norm(z, axis=1).mean() == pytest.approx(1, rel=0.2)
    with pytest.raises(CurateError, match=r"not one of the model's decoder layers 1\.\.30"):
        lm_states(model, tokenizer, talk(prompts, completions), layer=31)


@pytest.mark.slow
def test_long_examples_are_truncated_and_counted(smollm2, examples):
    model, tokenizer = smollm2
    prompts, completions = examples
    cut = token_entropy(model, tokenizer, talk(prompts, completions), max_length=48)
    reference = np.array([naive_entropy(model, tokenizer, p, c, max_length=48) for p, c in zip(prompts, completions,
                                                                                                strict=True)])
    assert cut[:, STATS.index("truncated")].sum() > 0
    assert (cut[:, STATS.index("tokens")] <= 47).all()
    assert np.abs(cut - reference).max() < 1e-4


@pytest.mark.slow
def test_a_tokenizer_without_pad_token_pads_with_its_end_token(smollm2, examples):
    model, tokenizer = smollm2
    prompts, completions = examples
    expected = token_entropy(model, tokenizer, talk(prompts[:4], completions[:4]))
    pad = tokenizer.pad_token
    tokenizer.pad_token = None
    try:
        assert tokenizer.pad_token_id is None
        assert np.abs(token_entropy(model, tokenizer, talk(prompts[:4], completions[:4])) - expected).max() < 1e-5
    finally:
        tokenizer.pad_token = pad


@pytest.mark.slow
def test_score_entropy_end_to_end_cached_and_stale(cli, tmp_path, model_cache):
    import shutil

    root = tmp_path / "p"
    rows = [{"prompt": f"What is {i} + {i}?", "chosen": f"It is {2 * i}.", "rejected": "No idea."} for i in range(5)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with init_project(root) as project:
        shutil.copytree(model_cache / "models", root / "cache" / "models")  # the dequantised model, reused
        ingest_files(project, [tmp_path / "d.jsonl"])
    code, out, err = cli("score", "entropy", "--project", root, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["completions"] == first["computed"] == 10 and first["truncated"] == 0
    code, out, _ = cli("score", "entropy", "--project", root, "--json")
    assert json.loads(out)["computed"] == 0 and json.loads(out)["cached"] == 10
    with open_project(root) as project:
        assert project_status(project)["scores"]["entropy"]["stale"] is False
        (tmp_path / "e.jsonl").write_text(json.dumps({"prompt": "Name a colour.", "completion": "Blue."}) + "\n")
        ingest_files(project, [tmp_path / "e.jsonl"])
        status = project_status(project)["scores"]["entropy"]
    assert status["stale"] is True and "+1 completions since" in status["why"]


def test_empty_pool_cannot_be_scored(cli, tmp_path):
    cli("init", tmp_path / "p")
    code, _, err = cli("score", "entropy", "--project", tmp_path / "p")
    assert code == 1 and "no completions to score" in err


def test_disagreement_measures_on_known_committees():
    from curate.learners.bradley_terry import disagreement

    agree = disagreement(np.array([[0.9, 0.2], [0.9, 0.2], [0.9, 0.2]]))
    assert np.allclose(agree["p_var"], 0) and np.allclose(agree["vote_entropy"], 0) and np.allclose(agree["bald"], 0)
    split = disagreement(np.array([[0.99], [0.01]]))
    assert np.isclose(split["vote_entropy"][0], np.log(2)) and split["bald"][0] > 0.6
    doubt = disagreement(np.array([[0.5], [0.5]]))  # all members unsure: uncertain, but no disagreement
    assert np.isclose(doubt["bald"][0], 0) and np.isclose(doubt["p_mean"][0], 0.5)


def test_committee_scores_every_pair_and_goes_stale_with_new_judgments(ukp, tmp_path):
    from sqlalchemy import select

    from curate.labels import final_labels, preferences
    from curate.scores.committee import NAMES, score_committee
    from curate.store.schema import Score

    labels = preferences(final_labels(ukp))
    first = score_committee(ukp, members=6)
    second = score_committee(ukp, members=6)
    assert first.pairs == 200 and first.labelled == len(labels) > 140  # a plurality tie or a tie label: none
    with ukp.store.read() as conn:
        values = {run: {(u, n): v for u, n, v in conn.execute(select(Score.unit_id, Score.name, Score.value)
                                                              .where(Score.run_id == run))}
                  for run in (first.run_id, second.run_id)}
    assert values[first.run_id] == values[second.run_id]  # same seed, same committee
    table = values[first.run_id]
    assert len(table) == 200 * len(NAMES)
    p = np.array([v for (_, n), v in table.items() if n == "p_mean"])
    entropy = np.array([v for (_, n), v in table.items() if n == "vote_entropy"])
    assert ((p > 0) & (p < 1)).all() and p.std() > 0.05 and (entropy <= np.log(2) + 1e-9).all()
    assert all(v >= -1e-9 for (_, n), v in table.items() if n == "bald")
    assert project_status(ukp)["scores"]["committee"]["stale"] is False
    row = {"prompt": "Which is better?", "a": "This one.", "b": "That one.", "w": "a"}
    (tmp_path / "more.jsonl").write_text(json.dumps(row) + "\n")
    ingest_files(ukp, [tmp_path / "more.jsonl"], mapping="prompt=prompt,a=a,b=b,label=w")
    assert "judgments since" in project_status(ukp)["scores"]["committee"]["why"]


@pytest.mark.slow
def test_committee_on_lm_states_and_the_laplace_learner(ukp_lm_states, tmp_path, cli):
    import shutil

    from curate import open_project
    from curate.errors import CurateError
    from curate.scores.committee import score_committee

    root, laplace = ukp_lm_states
    assert (laplace.learner, laplace.features, laplace.members) == ("laplace", "lm", 0)
    assert laplace.computed > 150 and laplace.pairs == 200  # one state per distinct completion in its prompt
    shutil.copytree(root, tmp_path / "proj")
    ukp = open_project(tmp_path / "proj")
    code, out, err = cli("score", "committee", "--project", ukp.root, "--features", "lm", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["computed"] == 0 and again["learner"] == "committee"  # the states came from the cache
    status = project_status(ukp)["scores"]["committee"]
    assert status["stale"] is False and status["model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct@")
    with pytest.raises(CurateError, match=r"unknown features 'pixels' \(features: embedding, lm, embedding\+length"):
        score_committee(ukp, features="pixels")

    # +length: the same states (from the cache) and two length features, recorded with the run
    from curate.scores.features import length_differences, project_pair_features
    from curate.store.pool import pair_contents

    code, out, err = cli("score", "committee", "--project", ukp.root, "--features", "lm+length", "--json")
    assert code == 0, err
    longer = json.loads(out)
    assert longer["computed"] == 0 and longer["features"] == "lm+length"
    assert project_status(ukp)["scores"]["committee"]["stale"] is False
    ids, plain, _, _ = project_pair_features(ukp, features="lm", device="cpu")
    same_ids, d, _, _ = project_pair_features(ukp, features="lm+length", device="cpu")
    with ukp.store.read() as conn:
        order, parts = pair_contents(conn)
    texts = dict(zip(order, parts, strict=True))
    assert same_ids == ids and d.shape == (plain.shape[0], plain.shape[1] + 2) and (d[:, :-2] == plain).all()
    expected = length_differences([texts[i][1].text for i in ids], [texts[i][2].text for i in ids])
    assert np.array_equal(d[:, -2:], expected) and np.abs(expected).max() > 0
    ukp.close()


def test_length_differences_are_log_lengths_of_a_minus_b():
    from curate.scores.features import length_differences

    d = length_differences(["one two three", ""], ["one", "a b"])
    assert d.shape == (2, 2) and d.dtype == np.float32
    assert d[0].tolist() == pytest.approx([np.log(14) - np.log(4), np.log(4) - np.log(2)])
    assert d[1].tolist() == pytest.approx([0 - np.log(4), 0 - np.log(3)])


def test_committee_needs_labels(tmp_path):
    from curate.errors import CurateError
    from curate.learners.bradley_terry import fit_committee

    with pytest.raises(CurateError, match="at least 10 labelled pairs"):
        fit_committee(np.ones((3, 4)), np.array([1, 0, 1]))


@pytest.mark.slow
def test_committee_on_ukp_dev_predicts_and_its_disagreement_means_something(shared_data, tmp_path):
    """Topic-grouped 5-fold CV accuracy; out-of-fold disagreement against the spread of the crowd's votes."""
    from sklearn.model_selection import GroupKFold
    from sqlalchemy import select

    from curate import embed_pool
    from curate.labels import final_labels, preferences
    from curate.learners.bradley_terry import fit_committee, margin_disagreement, member_margins
    from curate.pool.units import embedded_units
    from curate.scores.features import unit_differences
    from curate.store.schema import Judgment, Pair, Record

    with init_project(tmp_path / "p") as project:
        ingest_files(project, [shared_data / "ukp-convarg1-dev.jsonl.gz"])
        embed_pool(project)
        units, cache = embedded_units(project, "pair")
        d = unit_differences(units, cache)
        labels = preferences(final_labels(project))
        with project.store.read() as conn:
            topic = {p: m["topic"] for p, m in conn.execute(select(Pair.id, Record.meta)
                                                             .join(Record, Record.id == Pair.record_id))}
            votes: dict[str, list[int]] = {}
            for pair_id, choice in conn.execute(select(Judgment.pair_id, Judgment.choice)
                                                .where(Judgment.source == "crowd")):
                votes.setdefault(pair_id, []).append({"a": 1, "b": -1}.get(choice, 0))
    ids = [u for u in units.ids if u in labels]
    rows = np.array([units.ids.index(u) for u in ids])
    y = np.array([labels[u] for u in ids])
    groups = [topic[u] for u in ids]
    p_mean, p_var = np.empty(len(ids)), np.empty(len(ids))
    for train, test in GroupKFold(n_splits=5).split(rows, y, groups):
        weights = fit_committee(d[rows[train]], y[train], members=8)
        scores = margin_disagreement(member_margins(weights, d[rows[test]]))
        p_mean[test], p_var[test] = scores["p_mean"], scores["p_var"]
    accuracy = float(np.mean((p_mean > 0.5) == y))
    margin = np.array([abs(sum(votes[u])) / len(votes[u]) for u in ids])  # 1 = unanimous, 0 = even split
    order = np.argsort(p_var)
    decile = len(ids) // 10
    top, bottom = margin[order[-decile:]].mean(), margin[order[:decile]].mean()
    print(f"UKP dev, topic-grouped 5-fold: accuracy {accuracy:.3f}; mean vote margin, top disagreement decile "
          f"{top:.3f} vs bottom decile {bottom:.3f}")
    assert accuracy > 0.6
    assert top < bottom


def test_a_folder_that_is_not_a_causal_lm_is_a_one_line_error(cli, tmp_path):
    cli("init", tmp_path / "p")
    (tmp_path / "d.jsonl").write_text(json.dumps({"prompt": "Hi", "completion": "Hello."}) + "\n")
    cli("ingest", tmp_path / "d.jsonl", "--project", tmp_path / "p")
    (tmp_path / "empty-model").mkdir()
    code, _, err = cli("score", "entropy", "--project", tmp_path / "p", "--model", tmp_path / "empty-model")
    assert code == 1 and "cannot be loaded as a causal language model" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_completions_sharing_a_prompt_equal_the_naive_loop(smollm2, examples):
    """A prompt runs once for all its completions (its key/value cache copied): same numbers, any order."""
    model, tokenizer = smollm2
    prompts, completions = examples
    shared = [prompts[i % 3] for i in range(9)] + [""]
    answers = [*completions[:9], "An answer to nothing."]
    batched = token_entropy(model, tokenizer, talk(shared, answers))
    reference = np.array([naive_entropy(model, tokenizer, p, c) for p, c in zip(shared, answers, strict=True)])
    assert np.abs(batched - reference).max() < 1e-4
    order = np.random.default_rng(0).permutation(10)
    shuffled = token_entropy(model, tokenizer, talk([shared[i] for i in order], [answers[i] for i in order]))
    assert np.abs(shuffled - batched[order]).max() < 1e-4
