"""Which characters a feed can carry and a reader can show: one rule for every text field.

Ingest applies it to labels (tags, authors, section names, credits), which become names and keys
in the store (removed, with a note) and to ids, which are identities (refused); render applies it
to titles, summaries and bodies, and again to labels, for a store written before ingest did.
"""

from __future__ import annotations

import re

# XML 1.0 forbids C0 controls other than tab/LF/CR, lone surrogates and U+FFFE/U+FFFF; lxml
# refuses them, so one such byte in one article would otherwise fail a whole feed. C1 controls
# (U+0080-U+009F: Windows-1252 text decoded as Latin-1) and the other noncharacters are legal
# XML but no reader shows them as anything but garbage (the W3C validator's BadCharacters); nor
# is U+FFFD, which only ever stands for bytes that were lost in decoding (and is what an HTML
# parser makes of `&#0;` or `&#xD800;`).
# The noncharacters of planes 1-16 (U+1FFFE, U+1FFFF, ... U+10FFFF) are matched as one range
# and told apart in `_unless_showable`: a class listing them leaves re's fast path, ten times
# slower on every body.
_UNSHOWABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffd-\uffff"
    "\U0001fffe-\U0010ffff]"
)


def _showable_match(character: str) -> bool:
    """Whether a character `_UNSHOWABLE` matched is one to keep: of planes 1-16, no noncharacter."""
    return character > "\uffff" and ord(character) & 0xFFFE != 0xFFFE


def _unless_showable(match: re.Match[str]) -> str:
    character = match.group()
    return character if _showable_match(character) else ""


def showable(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry or no reader shows (C0 and C1
    controls but tab/LF/CR, lone surrogates, noncharacters, U+FFFD)."""
    return _UNSHOWABLE.sub(_unless_showable, text)


def unshowable(text: str) -> list[str]:
    """The characters `showable` removes from `text`, each once, as code points (`U+FFFE`), in
    the order they first appear: what a note or a refusal names."""
    if not _UNSHOWABLE.search(text):  # the common case, a search alone
        return []
    found = (m.group() for m in _UNSHOWABLE.finditer(text) if not _showable_match(m.group()))
    return [f"U+{ord(c):04X}" for c in dict.fromkeys(found)]
