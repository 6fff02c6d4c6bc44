"""One rendering of a prompt and a completion for every model step: token entropy, LM states, the reward
models, the DPO margin, generation and training all give a model the same context.

A prompt is plain text, or a list of turns (``{"role", "content"}`` messages, a system turn first where the
data has one); a completion is plain text, or its assistant turn(s). A model with a chat template sees the
conversation through it, as TRL's trainers build a conversational example: the prompt with the generation
prompt, and the completion as the tokens that ``prompt + completion`` (rendered whole) adds after the longest
shared start. A model without one sees the plain text as TRL joins a standard example: prompt, a space, the
completion and the end token. Too long an example loses the start of its prompt after its first token where
that is a special one (BOS, [CLS], a template's first marker), never its completion (unless the completion
alone does not fit the context, when its end is cut); either way it counts as truncated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from curate.errors import CurateError, reason

Messages = list[dict[str, Any]]
# The version of this rendering, part of every cached score's key: a change here recomputes, never reuses.
RENDERING = "trl-conversation-1"
_TRANSCRIPT = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
_ROLES = {"Human": "user", "Assistant": "assistant"}


@dataclass(frozen=True)
class Content:
    """A prompt or a completion as the store holds it: its plain text and, where the data has turns, its messages."""

    text: str
    messages: Messages | None = None

    def key(self) -> str:
        """Everything a rendering may read of it (text and messages), as one canonical text (for cache keys)."""
        return json.dumps([self.text, self.messages], ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class Conversation:
    """A completion in its prompt's context."""

    prompt: Content
    completion: Content

    def key(self) -> str:
        """What is rendered, as one canonical text (for cache keys): the rendering's version, prompt and completion."""
        return json.dumps([RENDERING, self.prompt.text, self.prompt.messages, self.completion.text,
                           self.completion.messages], ensure_ascii=False, sort_keys=True)


@dataclass
class Encoded:
    """Token ids of a prompt as rendered for one model and of the completion after it, and whether it was cut."""

    prompt: list[int]
    completion: list[int]
    truncated: bool

    @property
    def ids(self) -> list[int]:
        """The whole example: what a reward model reads and a trainer trains on."""
        return [*self.prompt, *self.completion]


def prompt_turns(prompt: Content) -> Messages:
    """The prompt as turns: its own, or its text as one user turn."""
    return prompt.messages or [{"role": "user", "content": prompt.text}]


def completion_turns(completion: Content) -> Messages:
    """The completion as turns: its own, or its text as one assistant turn."""
    return completion.messages or [{"role": "assistant", "content": completion.text}]


def standard_completion(completion: Content) -> str:
    """The completion as a standard (text) example holds it: TRL joins prompt and completion as they are and curate
    stores texts stripped, so it starts with a space."""
    return " " + completion.text


def transcript_turns(text: str) -> Messages | None:
    """The turns of an hh-rlhf style transcript (``Human: … Assistant: … Human: … Assistant:``, the answer
    left open), or None where ``text`` is not one: it must start with a Human turn, alternate, and end on the
    open Assistant turn."""
    marks = list(_TRANSCRIPT.finditer(text))
    if len(marks) < 2 or marks[0].start() != 0 or marks[-1].group(1) != "Assistant" or text[marks[-1].end():].strip():
        return None
    turns = []
    for i, mark in enumerate(marks[:-1]):
        if mark.group(1) != ("Human" if i % 2 == 0 else "Assistant"):
            return None
        content = text[mark.end():marks[i + 1].start()].strip()
        if not content:
            return None
        turns.append({"role": _ROLES[mark.group(1)], "content": content})
    return turns


class Rendering:
    """How one model's tokenizer renders conversations (``chat``: through its chat template)."""

    def __init__(self, tokenizer: Any, *, name: str) -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    def prompt_ids(self, prompt: Content) -> list[int]:
        """The prompt's token ids as a model continues it (generation)."""
        if self.chat:
            return self._tokens(self._template(prompt_turns(prompt), add_generation_prompt=True))
        return list(self.tokenizer(prompt.text)["input_ids"])

    def encode(self, conversation: Conversation, *, max_length: int) -> Encoded:
        """The prompt's and the completion's token ids, at most ``max_length`` in all."""
        from trl.data_utils import common_prefix_length  # a model step has torch and transformers loaded already

        tokenizer = self.tokenizer
        if self.chat:
            turns = prompt_turns(conversation.prompt)
            prompt = self._tokens(self._template(turns, add_generation_prompt=True))
            whole = self._tokens(self._template([*turns, *completion_turns(conversation.completion)]))
        else:
            prompt = list(tokenizer(conversation.prompt.text)["input_ids"])
            end = tokenizer.eos_token or ""
            completion = standard_completion(conversation.completion)
            whole = list(tokenizer(conversation.prompt.text + completion
                                   + (end if not completion.endswith(end) else ""))["input_ids"])
        shared = common_prefix_length(prompt, whole)  # the completion starts where the two diverge, as TRL cuts it
        prompt, completion = whole[:shared], whole[shared:]
        if not completion:
            raise CurateError(f"'{self.name}' renders the completion '{conversation.completion.text[:40]}' as no "
                              "tokens at all")
        if not prompt:  # no template and no start token: the first token needs a position before it
            prompt = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id]
        truncated = len(prompt) + len(completion) > max_length
        if truncated:  # a start token (BOS, [CLS], a template's first marker) stays where a model expects it
            head = prompt[:1] if len(prompt) > 1 and prompt[0] in tokenizer.all_special_ids else []
            completion = completion[:max_length - 1 - len(head)]
            prompt = head + prompt[len(head):][-(max_length - len(head) - len(completion)):]
        return Encoded(prompt, completion, truncated)

    def _template(self, turns: Messages, *, add_generation_prompt: bool = False) -> str:
        from jinja2 import TemplateError

        try:
            return self.tokenizer.apply_chat_template(turns, add_generation_prompt=add_generation_prompt,
                                                      tokenize=False)
        except (TemplateError, ValueError, TypeError) as err:
            raise CurateError(f"the chat template of '{self.name}' refused the conversation starting "
                              f"'{str(turns[0].get('content', ''))[:40]}': {reason(err)}") from None

    def _tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

