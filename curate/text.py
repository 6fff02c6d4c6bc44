"""What text may hold and when it shows nothing: the character-level rules for every text curate stores, from a
file or from the app.

``unstorable`` finds what neither database can hold (NUL, which PostgreSQL refuses, and lone surrogates, which
are not Unicode); ``blank`` is the one meaning of "empty": no visible character, only whitespace, control and
format characters, separators and default-ignorable code points. Unassigned (newer emoji than Python's tables)
and private-use characters are visible.
"""

from __future__ import annotations

import re
import unicodedata

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_INVISIBLE = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp"))
# Default_Ignorable_Code_Point outside Cf (variation selectors, Hangul fillers, tags, reserved ignorables), and
# the braille blank, which shows nothing
_IGNORABLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2065\u2800\u3164\ufe00-\ufe0f\uffa0"
                        "\ufff0-\ufff8\U000e0000-\U000e0fff]")


def unstorable(text: str) -> str | None:
    """What in ``text`` no database can store (``a NUL character (\\u0000) at character 3``), or None."""
    bad = _UNSTORABLE.search(text)
    if bad is None:
        return None
    char = bad.group()
    kind = "a NUL character" if char == "\x00" else "a lone surrogate, which is not valid Unicode"
    return f"{kind} (\\u{ord(char):04x}) at character {bad.start() + 1}"


def blank(text: str) -> bool:
    """True when ``text`` shows nothing: only whitespace and other invisible characters."""
    return not any(_visible(char) for char in text)


def _visible(char: str) -> bool:
    if char.isascii():
        return "!" <= char <= "~"
    return unicodedata.category(char) not in _INVISIBLE and not char.isspace() and _IGNORABLE.match(char) is None
