"""Request header parsing for conditional requests and content coding (RFC 9110 §8.8.3,
§12.5.3, §13.1). Pure functions, memoised on the raw header value: clients send few distinct
values, so the steady state parses nothing. A value longer than MAX_VALUE is neither parsed
nor kept (as if malformed): real ones are a few dozen characters, and 256 kept values of the
64 KB a server lets a header have, with what they parse to, held 100 MB and more per process.
Malformed parts are ignored, never an error."""

from __future__ import annotations

import re
from functools import lru_cache

from werkzeug.http import parse_date

# The codings we hold for every entry, best (smallest) first: the tie-break at equal q.
CODINGS = ("br", "gzip", "identity")
ANY_TAG = "*"
MAX_VALUE = 1024  # characters of a header value parsed: a few dozen entity tags, say
_QVALUE = re.compile(r"\s*q\s*=\s*(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\s*", re.IGNORECASE)
_ENTITY_TAG = re.compile(r'(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


def _qvalue(params: list[str]) -> float | None:
    """The q parameter (1 when absent); None when it is malformed."""
    for param in params:
        if param.strip().lower().startswith("q"):
            match = _QVALUE.fullmatch(param)
            return float(match.group(1)) if match else None
    return 1.0


def acceptable_codings(accept_encoding: str | None) -> tuple[str, ...]:
    """Our codings the client accepts, most preferred first; empty: none (answer 406).

    No header, or one longer than MAX_VALUE: identity only (§12.5.3: any coding is
    acceptable, but a client that says nothing gets the plain bytes). Identity not named is
    acceptable yet least preferred, so `gzip;q=0.5` alone still gets gzip; `*` covers the
    codings not named; q=0 refuses."""
    if accept_encoding is None or len(accept_encoding) > MAX_VALUE:
        return ("identity",)
    return _acceptable_codings(accept_encoding)


@lru_cache(maxsize=256)
def _acceptable_codings(accept_encoding: str) -> tuple[str, ...]:
    weights: dict[str, float] = {}
    for member in accept_encoding.split(","):
        name, *params = member.split(";")
        name = name.strip().lower()
        weight = _qvalue(params)
        if name and weight is not None:
            weights["gzip" if name == "x-gzip" else name] = weight
    default = weights.get("*")

    def weight_of(coding: str) -> float:
        if coding in weights:
            return weights[coding]
        if default is not None:
            return default
        return 0.001 if coding == "identity" else 0.0

    ranked = sorted(CODINGS, key=lambda c: -weight_of(c))  # stable: CODINGS order breaks ties
    return tuple(c for c in ranked if weight_of(c) > 0)


def entity_tags(if_none_match: str) -> frozenset[str]:
    """The opaque tags listed (weak or strong alike: If-None-Match compares weakly), or
    {ANY_TAG} for `*`; what is not a quoted tag is skipped, and a value longer than MAX_VALUE
    lists none."""
    return _entity_tags(if_none_match) if len(if_none_match) <= MAX_VALUE else frozenset()


@lru_cache(maxsize=256)
def _entity_tags(if_none_match: str) -> frozenset[str]:
    if if_none_match.strip() == "*":
        return frozenset((ANY_TAG,))
    return frozenset(_ENTITY_TAG.findall(if_none_match))


def http_date(value: str) -> int | None:
    """An HTTP-date as epoch seconds; None if it is not one (§13.1.3: then it is ignored)."""
    return _http_date(value) if len(value) <= MAX_VALUE else None


@lru_cache(maxsize=256)
def _http_date(value: str) -> int | None:
    parsed = parse_date(value)
    return int(parsed.timestamp()) if parsed is not None else None
