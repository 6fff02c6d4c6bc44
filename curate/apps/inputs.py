"""The app's input components, made strict about types: a value of the wrong JSON type (a list for a reason, a
string for a rank, ``true`` for a confidence) is refused with a message, never coerced (Gradio's own components
turn ``["x"]`` into the text "['x']"). Each wraps the component's own ``preprocess`` on that one instance (a
subclass would make Gradio write a ``.pyi`` stub beside this module). Text no database can store (a NUL, a lone
surrogate) is refused the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr  # imported only by the app

from curate.text import unstorable

C = TypeVar("C", bound=gr.components.Component)


def text(component: C) -> C:
    """``component`` (a textbox or a dropdown) accepting storable text only, or nothing."""
    return _strict(component, "text", lambda v: isinstance(v, str), unstorable)


def number(component: C) -> C:
    """``component`` accepting numbers only (not text, not true/false), or nothing."""
    return _strict(component, "a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool))


def choice(component: C) -> C:
    """Radio buttons accepting one of their choices, of its own type, or nothing."""
    values = [value for _, value in component.choices]  # type: ignore[attr-defined]
    return _strict(component, f"one of {values}", lambda v: any(type(v) is type(w) and v == w for w in values))


def _strict(component: C, wanted: str, ok: Callable[[Any], bool],
            flaw: Callable[[Any], str | None] = lambda value: None) -> C:
    """``component`` refusing a value that is not ``ok``, or whose ``flaw`` is not None."""
    plain = component.preprocess
    name = component.label or "a field"

    def preprocess(payload: Any) -> Any:
        if payload is not None:
            if not ok(payload):
                raise gr.Error(f"{name} must be {wanted}, not {type(payload).__name__}")
            if (why := flaw(payload)) is not None:
                raise gr.Error(f"{name} holds {why}")
        return plain(payload)

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component
