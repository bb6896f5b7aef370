"""Territory names, and which of them a person could mistake for one another.

A territory is ``@name``. Names are lowercase ASCII letters and digits in words joined by
single hyphens, 2 to 39 characters, as npm scopes and Open VSX publishers are. That
rules out every homoglyph from other scripts (a Cyrillic ``\u0430`` is refused as a
character, not judged as a look-alike). What ASCII still confuses is caught by the
name's skeleton (after Unicode TR39's idea): separators dropped, and letters that look
alike folded together (``0``/``o``, ``1``/``l``/``i``, ``5``/``s``, ``rn``/``m``,
``vv``/``w``, ``cl``/``d``). Two names with one skeleton cannot both be claimed:
``@acme-ai`` blocks ``@acmeai``, ``@acme-a1`` and ``@acrne-ai``.
"""

from __future__ import annotations

import re

__all__ = ["NAME", "name_problem", "skeleton"]

NAME = re.compile(r"^@(?=.{2,39}$)[a-z0-9]+(?:-[a-z0-9]+)*$")
_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_SINGLE = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s", "-": None})


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a territory name, or None."""
    if not isinstance(name, str) or not name.startswith("@"):
        return "a territory is named @name"
    if not name.isascii():
        return "a territory name is ASCII: look-alike letters of other scripts are refused"
    if name != name.lower():
        return f"a territory name is lowercase: {name.lower()}"
    if not NAME.match(name):
        return (
            "a territory name has 2 to 39 lowercase letters and digits, in words joined by "
            "single hyphens"
        )
    return None


def skeleton(name: str) -> str:
    """What ``name`` looks like to a hurried reader; equal skeletons are confusable."""
    text = name.lstrip("@").lower()
    for pair, single in _PAIRS:
        text = text.replace(pair, single)
    return text.translate(_SINGLE)
