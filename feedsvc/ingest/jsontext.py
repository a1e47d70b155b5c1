"""JSON text as ingest reads it: a JSON Lines line (feedsvc.ingest.importer) and an API body
(feedsvc.ingest.api) go through `loads`, so both take and refuse the same texts, with the same
reasons.

RFC 8259 lets a parser bound numbers and nesting (§9), and I-JSON (RFC 7493) refuses
duplicate keys and non-finite numbers; Python's json module bounds nothing itself: a
5,000-digit integer raises ValueError, 100,000 nested arrays RecursionError, `NaN` and
`Infinity` are read, and of a key given twice the last is kept without a word. Here each is
NotJson with its reason, so the importer refuses just that line and the API answers 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

from feedsvc.model import shorten

# A JSON number's characters: no count, width or duration of an article needs more than 20;
# 100 leaves room for any float as a program writes it, and keeps the parse of one linear.
MAX_NUMBER = 100
# Arrays and objects one in another: an article nests 3 deep (its images' objects), a batch
# of them 5; the rest is room for a publisher's own fields. Python's parser recurses once per
# level and raises RecursionError near 1,000, less the caller's stack: a bound of its own
# makes the limit one number, for the importer and the API alike.
MAX_DEPTH = 64
_CONTAINERS = (dict, list)  # what the parser makes of arrays and objects
_TOO_DEEP = f"arrays and objects nest deeper than the limit of {MAX_DEPTH} levels"


class NotJson(ValueError):
    """Text that `loads` refuses; its message is the reason, for `(line): reason` or a 400."""


def loads(data: bytes) -> Any:
    """The JSON value `data` (UTF-8, a leading byte order mark skipped) holds; NotJson if it is
    not UTF-8, not JSON, or beyond the bounds above."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotJson(f"not UTF-8: {exc.reason}") from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise NotJson(_syntax_error(exc)) from None
    except RecursionError:  # hundreds of levels deep (as many as the caller's stack leaves)
        raise NotJson(_TOO_DEEP) from None
    if _nests_over(value, MAX_DEPTH):
        raise NotJson(_TOO_DEEP)
    return value


def _nests_over(value: Any, limit: int) -> bool:
    """Whether `value` has arrays and objects over `limit` deep, looking at each item of each
    container once, level by level: a fraction of what parsing them cost."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    for _ in range(limit):
        level = [child for node in level
                 for child in (node.values() if type(node) is dict else node)
                 if isinstance(child, _CONTAINERS)]  # a tuple: twice as quick as `dict | list`
        if not level:
            return False
    return True


def _int(literal: str) -> int:
    _bounded(literal)
    return int(literal)


def _float(literal: str) -> float:
    """A float's value; one beyond a double's range (1e400) would be read as infinity."""
    _bounded(literal)
    value = float(literal)
    if math.isinf(value):
        raise NotJson(f"the number {literal} is out of the range of a double")
    return value


def _bounded(literal: str) -> None:
    if len(literal) > MAX_NUMBER:
        raise NotJson(f"a number is {len(literal)} characters long, the limit is {MAX_NUMBER}")


def _constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON value")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object, unless a key is given twice (RFC 7493 §2.3): which of the two was meant?"""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise NotJson(f"the key {shorten(key, 40)!r} is given twice in one object")
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_int=_int, parse_float=_float,
                            parse_constant=_constant)


def _syntax_error(exc: json.JSONDecodeError) -> str:
    """Where the text went wrong; one cut short says so, with the column it ends at."""
    if exc.pos >= len(exc.doc):
        return f"not JSON: the line ends at column {len(exc.doc)} before the JSON does ({exc.msg})"
    return f"not JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}"
