"""The words of rounds and training, owned here and nowhere else: what kind of work an item is, how a round
routes its pairs, and the kinds of training data (the export formats and the recipes' kinds are one list).
The words of labels (choices, judgment sources) live in ``curate.labels.vocabulary``; the label methods are here
because the config names them."""

from __future__ import annotations

from enum import StrEnum


class ItemKind(StrEnum):
    """One unit of an expert's work."""

    RANK = "rank"  # choose between the two completions of a pair
    REWRITE = "rewrite"  # write a better completion
    RANKING = "ranking"  # order all of a prompt's completions


class RouteMode(StrEnum):
    """How ``curate select`` turns a chosen pair into an item: by the route rules (``auto``) or all alike."""

    AUTO = "auto"
    RANK = "rank"
    REWRITE = "rewrite"
    RANKING = "ranking"


class TrainingKind(StrEnum):
    """What a recipe trains and an export holds, in TRL's columns."""

    DPO = "dpo"
    REWARD = "reward"
    SFT = "sft"
    KTO = "kto"


class Method(StrEnum):
    """How several votes on a pair become one: plurality (ties stay undecided) or Dawid–Skene."""

    MAJORITY = "majority"
    DAWID_SKENE = "dawid-skene"
