"""One prompt rendering for every model step, on real multi-turn hh-rlhf records: the tokens entropy, LM states,
the margin and the reward models score are exactly the tokens TRL's trainers build from curate's export of the
same rows, a one-at-a-time loop over them agrees with the batched passes, and cached scores follow the rendering."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from curate import ingest_files, init_project
from curate.rendering import Content, Conversation, Rendering, transcript_turns

HH_ROWS = 16


def test_transcript_turns_reads_hh_rlhf_prompts_and_nothing_else():
    text = "Human: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman:  Tell me a joke.\n\nAssistant:"
    assert transcript_turns(text) == [{"role": "user", "content": "Hi there"},
                                      {"role": "assistant", "content": "Hello! How can I help?"},
                                      {"role": "user", "content": "Tell me a joke."}]
    assert transcript_turns("\n\n" + text) == transcript_turns(text)  # as the source has it, before stripping
    for other in ("Tell me a joke.", "Human: Hi\n\nAssistant: Hello",  # not a prompt: its answer is given
                  "Human: Hi\n\nHuman: Again\n\nAssistant:",  # turns that do not alternate
                  "Assistant: Hi\n\nHuman: Hello\n\nAssistant:",  # the assistant speaks first
                  "Human: \n\nAssistant: Hi\n\nHuman: Hello\n\nAssistant:",  # an empty turn
                  "Note. Human: Hi\n\nAssistant:"):  # text before the first turn
        assert transcript_turns(other) is None, other


@pytest.fixture(scope="module")
def hh_project(tmp_path_factory, shared_data) -> Path:
    """The first HH_ROWS hh-rlhf dev rows whose prompts have several turns, ingested (labels from the data set)."""
    folder = tmp_path_factory.mktemp("hh")
    rows = []
    with gzip.open(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["chosen"].count("\n\nHuman:") > 1:
                rows.append(row)
            if len(rows) == HH_ROWS:
                break
    (folder / "hh.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with init_project(folder / "p") as project:
        ingest_files(project, [folder / "hh.jsonl"])
    return folder / "p"


def no_template(source: Path, target: Path) -> Path:
    """A copy of a model folder whose tokenizer has no chat template."""
    from transformers import AutoTokenizer

    shutil.copytree(source, target)
    (target / "chat_template.jinja").unlink(missing_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(target)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(target)
    assert not Rendering(AutoTokenizer.from_pretrained(target), name="copy").chat
    return target


def exported(project, fmt: str, *, chat: bool) -> tuple[list[dict], list[Conversation], list[Conversation]]:
    """The DPO or reward rows ``curate train`` trains on (as it renders them for a model with or without a chat
    template), and each row's chosen and rejected completion in its prompt's context, as the scorers read them."""
    from curate.export import build_examples, render
    from curate.store import pool

    examples = build_examples(project, fmt=fmt, with_imported=True, required=True)
    rows = [r for split in render(project, examples.rows, fmt, chat=chat, lineage=True).values() for r in split]
    with project.store.read() as conn:
        ids, parts = pool.pair_contents(conn)
    contents = dict(zip(ids, parts, strict=True))
    best = "completion" if fmt == "sft" else "chosen"
    chosen, rejected = [], []
    for row in rows:
        prompt, a, b = contents[row["pair_id"]]
        said = row[best][-1]["content"] if chat else row[best].strip()
        first, second = (a, b) if said == a.text else (b, a)
        chosen.append(Conversation(prompt, first))
        rejected.append(Conversation(prompt, second))
    kept = ("prompt", "completion") if fmt == "sft" else ("prompt", "chosen", "rejected")
    return [{k: r[k] for k in kept} for r in rows], chosen, rejected


def trl_dataset(trainer_class, config_class, model, tokenizer, rows: list[dict], folder: Path, **options):
    """TRL's own tokenisation of ``rows``: the dataset its trainer builds before training."""
    from datasets import Dataset

    args = config_class(output_dir=str(folder), report_to=[], max_length=None, bf16=False, use_cpu=True, **options)
    trainer = trainer_class(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    return trainer.train_dataset


@pytest.mark.parametrize("chat", [True, False], ids=["chat-template", "plain"])
def test_scorers_see_the_tokens_trl_trains_on(hh_project, tiny_models, tmp_path, chat):
    """Every hh prompt here has several turns. The DPO trainer's prompt and completion ids of each exported row equal
    curate's rendering; entropy, log-probabilities (the margin's) and LM states batched over the store's
    conversations equal a one-at-a-time loop over TRL's ids; generation's prompt is TRL's prompt."""
    from transformers import AutoTokenizer, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    from curate import open_project
    from curate.scores.entropy import STATS, token_entropy
    from curate.scores.states import lm_states

    folder = tiny_models["causal"] if chat else no_template(tiny_models["causal"], tmp_path / "plain")
    model, tokenizer = LlamaForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    with open_project(hh_project) as project:
        rows, chosen, rejected = exported(project, "dpo", chat=chat)
    assert len(rows) == HH_ROWS and all(len(c.prompt.messages) >= 3 for c in chosen)  # multi-turn, every one
    assert isinstance(rows[0]["prompt"], list) == chat
    built = trl_dataset(DPOTrainer, DPOConfig, model, tokenizer, rows, tmp_path / "dpo")
    rendering = Rendering(tokenizer, name="tiny")
    for trl_row, good, bad in zip(built, chosen, rejected, strict=True):
        for side, conversation in (("chosen_ids", good), ("rejected_ids", bad)):
            encoded = rendering.encode(conversation, max_length=4096)
            assert (encoded.prompt, encoded.completion) == (trl_row["prompt_ids"], trl_row[side])
            assert not encoded.truncated
        assert rendering.prompt_ids(good.prompt) == trl_row["prompt_ids"]  # what generation continues

    conversations = [*chosen, *rejected]
    ids = [(r["prompt_ids"], r[side]) for side in ("chosen_ids", "rejected_ids") for r in built]
    reference_stats, reference_states = [], []
    with torch.no_grad():
        for prompt, completion in ids:  # one example at a time, no padding, TRL's own ids
            out = model(torch.tensor([prompt + completion]), output_hidden_states=True)
            logp = torch.log_softmax(out.logits[0, len(prompt) - 1:-1].float(), dim=-1)
            entropy = -(logp.exp() * logp).sum(-1)
            actual = logp.gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)
            reference_stats.append([entropy.mean().item(), entropy.max().item(), entropy.sum().item(),
                                    actual.mean().item(), len(completion), 0.0])
            reference_states.append(out.hidden_states[2][0, len(prompt):].mean(0).double().numpy())
    stats = token_entropy(model, tokenizer, conversations)
    assert np.abs(stats - np.array(reference_stats)).max() < 1e-4
    logprob_sums = stats[:, STATS.index("logprob_mean")] * stats[:, STATS.index("tokens")]  # what the margin takes
    assert np.abs(logprob_sums - [r[3] * r[4] for r in reference_stats]).max() < 1e-3
    states = lm_states(model, tokenizer, conversations, layer=2)
    assert np.abs(states - np.array(reference_states)).max() < 1e-5 * np.abs(states).max()


def test_the_sft_trainer_learns_the_completion_tokens_the_scorers_read(hh_project, tiny_models, tmp_path):
    """SFT on the round's best answers: TRL's prompt (masked out of the loss) and completion tokens are curate's."""
    from transformers import AutoTokenizer, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    from curate import open_project

    model = LlamaForCausalLM.from_pretrained(tiny_models["causal"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["causal"])
    with open_project(hh_project) as project:
        rows, chosen, _ = exported(project, "sft", chat=True)
    built = trl_dataset(SFTTrainer, SFTConfig, model, tokenizer, rows, tmp_path / "sft", completion_only_loss=True)
    rendering = Rendering(tokenizer, name="tiny")
    assert len(built) == len(chosen) > 0
    for trl_row, conversation in zip(built, chosen, strict=True):
        start = next(i for i, label in enumerate(trl_row["labels"]) if label != -100)  # the loss's first token
        encoded = rendering.encode(conversation, max_length=4096)
        assert (encoded.prompt, encoded.completion) == (trl_row["input_ids"][:start], trl_row["input_ids"][start:])


def test_reward_models_read_the_conversation_the_reward_trainer_builds(hh_project, tiny_models, tmp_path):
    """A sequence classifier scores the whole rendered conversation, the completion its last assistant turn: the
    reward trainer's chosen ids, one at a time, give the batched rewards."""
    from transformers import AutoTokenizer, LlamaForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from curate import open_project
    from curate.scores.reward import reward_scores

    model = LlamaForSequenceClassification.from_pretrained(tiny_models["reward1"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["reward1"])
    with open_project(hh_project) as project:
        rows, chosen, rejected = exported(project, "reward", chat=True)
    built = trl_dataset(RewardTrainer, RewardConfig, model, tokenizer, rows, tmp_path / "reward")
    conversations = [*chosen, *rejected]
    expected = []
    with torch.no_grad():
        for ids in [*(r["chosen_ids"] for r in built), *(r["rejected_ids"] for r in built)]:
            expected.append(model(input_ids=torch.tensor([ids])).logits[0, 0].item())
    ours = reward_scores(model, tokenizer, conversations)
    assert np.abs(ours[:, 0] - expected).max() < 1e-4 and ours[:, 1].sum() == 0


def test_a_long_conversation_loses_the_start_of_its_prompt_never_its_completion(hh_project, tiny_models):
    from transformers import AutoTokenizer

    from curate import open_project
    from curate.store import pool

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["causal"])
    rendering = Rendering(tokenizer, name="tiny")
    with open_project(hh_project) as project, project.store.read() as conn:
        conversation = max((c for _, c in pool.completion_rows(conn)), key=lambda c: len(c.prompt.text))
    whole = rendering.encode(conversation, max_length=4096)
    cut = rendering.encode(conversation, max_length=len(whole.completion) + 10)
    assert cut.truncated and not whole.truncated
    assert whole.prompt[0] in tokenizer.all_special_ids  # the template's first marker stays where it was
    assert cut.completion == whole.completion and cut.prompt == [whole.prompt[0], *whole.prompt[-9:]]


def test_cached_scores_follow_the_rendering(tiny_models, tmp_path):
    """The same texts as turns or as one prompt, or under a changed chat template, are scored anew; the same
    conversation again is read from the cache."""
    from curate.models import resolve_model
    from curate.scores.lm import load_causal_lm
    from curate.scores.runs import cached_completion_scores

    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "Name a colour."}]
    text = "Human: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour.\n\nAssistant:"
    rows = [("1", Conversation(Content(text, turns), Content("Blue."))),
            ("2", Conversation(Content(text), Content("Blue.")))]

    def computed(folder: Path, rows) -> int:
        from curate.scores.entropy import token_entropy

        return cached_completion_scores(tmp_path / "cache", resolve_model(str(folder)), rows, kind="entropy",
                                        load=load_causal_lm, score=token_entropy, max_length=256, shard=8)[1]

    assert computed(tiny_models["causal"], rows) == 2  # turns and one flattened prompt are different contexts
    assert computed(tiny_models["causal"], rows) == 0
    changed = tmp_path / "changed-template"
    shutil.copytree(tiny_models["causal"], changed)
    template = next(p for p in (changed / "chat_template.jinja", changed / "tokenizer_config.json") if p.is_file())
    template.write_text(template.read_text().replace("<|im_start|>system", "<|im_start|>system "))
    assert computed(changed, rows) == 2


def test_simulate_reads_the_turns_of_hh_prompts(hh_project, shared_data):
    """Ingest reads an hh-rlhf transcript's turns, and so does simulate, whose LM features render them."""
    from sqlalchemy import select

    from curate import open_project
    from curate.simulate.run import read_preferences
    from curate.store.schema import Record

    with open_project(hh_project) as project, project.store.read() as conn:
        records = conn.execute(select(Record.prompt, Record.messages)).all()
    assert len(records) == HH_ROWS and all(m == transcript_turns(p) and len(m) >= 3 for p, m in records)
    data = read_preferences(shared_data / "hh-rlhf-harmless-test-dev.jsonl.gz")
    multi = [p for p in data.prompts if p.messages is not None and len(p.messages) > 1]
    assert len(data.prompts) > 1000 and len(multi) > len(data.prompts) / 2
    assert all(p.messages == transcript_turns(p.text) for p in itertools.islice(multi, 50))
