"""Which reader a request comes from, by its User-Agent: the client families of reach
(docs/contracts.md "Reach"), read from the table in clients.toml.

A UA is classified once per process: the answers to the last MAX_CACHED distinct UAs are kept
(an aggregator's UA changes with its subscriber count, so there are a few per feed), and a
request costs one dictionary lookup.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

MAX_CACHED = 8192
KINDS = frozenset(("aggregator", "reader", "device", "browser", "other"))
# A count beyond this is not believed (anyone can send any UA): the aggregator is counted as
# traffic, with no subscribers.
MAX_REPORTED = 10_000_000
OTHER = "other"  # the family of a UA that matches no other


@dataclass(frozen=True, slots=True)
class Family:
    id: str
    label: str
    kind: str
    patterns: tuple[re.Pattern[str], ...]
    subscribers: re.Pattern[str] | None
    feed_id: re.Pattern[str] | None
    distinct: bool  # count distinct clients (keyed hashes); never for aggregators


@dataclass(frozen=True, slots=True)
class Client:
    """What a UA says: its family and, for an aggregator, the subscribers it reports (None
    when it reports none) and its id for the feed ("" when it gives none)."""

    family: Family
    subscribers: int | None = None
    feed_id: str = ""


# ASCII: `\d` is 0-9 and `\b` and `\w` ASCII's, so a count or an id is read in one spelling
# (`١٣٧` would be `int()`'s 137 and another feed id than `137`).
_FLAGS = re.IGNORECASE | re.ASCII


def _pattern(text: str | None) -> re.Pattern[str] | None:
    return re.compile(text, _FLAGS) if text else None


def _family(raw: dict[str, Any]) -> Family:
    kind = raw["kind"]
    if kind not in KINDS:
        raise ValueError(f"clients.toml: {raw['id']}: kind {kind!r} is not one of {sorted(KINDS)}")
    return Family(raw["id"], raw["label"], kind,
                  tuple(re.compile(p, _FLAGS) for p in raw["patterns"]),
                  _pattern(raw.get("subscribers")), _pattern(raw.get("feed_id")),
                  kind != "aggregator" and raw.get("distinct", True))


def _load() -> dict[str, Family]:
    text = resources.files("feedsvc.web").joinpath("clients.toml").read_text("utf-8")
    families = [_family(raw) for raw in tomllib.loads(text)["family"]]
    if families[-1].id != OTHER or families[-1].patterns:
        raise ValueError(f"clients.toml: the last family must be {OTHER!r}, with no pattern")
    return {f.id: f for f in families}


FAMILIES: dict[str, Family] = _load()  # in the table's order, which is the order tried


def _count(family: Family, user_agent: str) -> int | None:
    found = family.subscribers.search(user_agent) if family.subscribers else None
    if found is None:
        return None
    digits = found.group(1)
    # read no more digits than a count can have: int() refuses past 4,300 and costs
    # quadratic time before that, and a User-Agent is whatever a client sends
    if len(digits) > len(str(MAX_REPORTED)):
        return None
    count = int(digits)
    return count if count <= MAX_REPORTED else None


@lru_cache(maxsize=MAX_CACHED)
def classify(user_agent: str) -> Client:
    """The client a UA names: the first family whose pattern is found in it, else `other`."""
    for family in FAMILIES.values():
        if any(p.search(user_agent) for p in family.patterns):
            if family.kind != "aggregator":
                return Client(family)
            feed_id = family.feed_id.search(user_agent) if family.feed_id else None
            return Client(family, _count(family, user_agent),
                          feed_id.group(1) if feed_id else "")
    return Client(FAMILIES[OTHER])
