"""The words of labels, owned here and nowhere else: the choices a pair judgment can make, where a judgment
comes from, how a final label was decided and the methods that decide it.

Every value is a ``StrEnum``, so it compares and serialises as the plain text the store and the files hold.
"""

from __future__ import annotations

from enum import StrEnum

from curate.vocabulary import Method


class Choice(StrEnum):
    """A judgment of a pair. Its order is the order of the codes in label tables (``CHOICES.index``)."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Source(StrEnum):
    """Where a judgment comes from. ``app`` and ``adjudication`` are made in the project; the others were
    imported with the data."""

    APP = "app"  # a person (or a simulated annotator) in the annotation app
    ADJUDICATION = "adjudication"  # a lead's decision
    GOLD = "gold"  # an imported reference answer
    CROWD = "crowd"  # an imported vote by a named annotator
    DATASET = "dataset"  # the imported data set's own label (e.g. hh-rlhf's chosen/rejected)


class How(StrEnum):
    """How a pair's final label was decided (see ``curate.labels.rule``)."""

    ADJUDICATED = "adjudicated"
    UNANIMOUS = "unanimous"
    MAJORITY = "majority"
    MODEL_WEIGHTED = "model-weighted"
    SINGLE = "single"
    GOLD = "gold"
    DATASET = "dataset"
    TIED = "tied"


CHOICES: tuple[Choice, ...] = tuple(Choice)
PREFERENCES = (Choice.A, Choice.B)  # the choices that say which completion is better
PROJECT_SOURCES = (Source.ADJUDICATION, Source.APP)  # judgments made in this project
VOTER_SOURCES = (Source.APP, Source.CROWD)  # sources of votes by named people (agreement is measured on them)
PRECEDENCE = (Source.ADJUDICATION, Source.APP, Source.GOLD, Source.CROWD, Source.DATASET)  # first decides


__all__ = ["CHOICES", "PRECEDENCE", "PREFERENCES", "PROJECT_SOURCES", "VOTER_SOURCES", "Choice", "How", "Method",
           "Source", "names"]


def names(values: type[StrEnum] | tuple[StrEnum, ...]) -> str:
    """The values as a comma-separated list, for messages."""
    return ", ".join(str(v) for v in values)
