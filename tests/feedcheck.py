"""Every format we emit, checked by real parsers and the schemas in tests/schemas/: XML feeds
by lxml and feedparser (no bozo) and Atom by the RFC 4287 RELAX NG grammar; JSON Feed and Roku
by their JSON Schemas with format checking."""

from __future__ import annotations

import functools
import json
import re

import feedparser
from jsonschema import Draft4Validator, Draft7Validator
from jsonschema.exceptions import best_match
from lxml import etree
from referencing import Registry, Resource
from rfc3986_validator import validate_rfc3986

from conftest import SCHEMAS

# Every address an XML document gives: RSS <link> and the href, url, xmlUrl and htmlUrl
# attributes of RSS, Atom, Media RSS and OPML.
_ADDRESSES = etree.XPath("//*[local-name()='link' and namespace-uri()='']/text()"
                         " | //@href | //@url | //@xmlUrl | //@htmlUrl")

# The footer that links an article on the other addresses on purpose (docs/contracts.md, "Links").
MIRROR_FOOTER = re.compile(r'<p class="mirrors">.*?</p>')


def schema_path(name: str):
    path = SCHEMAS / name
    assert path.is_file(), f"the schema is missing at {path}"
    return path


@functools.cache
def atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(schema_path("atom.rng"))))


def _json_schema(name: str) -> dict:
    return json.loads(schema_path(name).read_text(encoding="utf-8"))


@functools.cache
def json_validators() -> dict[str, Draft4Validator | Draft7Validator]:
    feed, feed_1 = _json_schema("jsonfeed-1.1.schema.json"), _json_schema("jsonfeed-1.schema.json")
    # The 1.1 schema's "$ref": "feed-1#..." resolves against its id to feed-1's id.
    registry = Registry().with_resources(
        (schema["id"], Resource.from_contents(schema)) for schema in (feed, feed_1)
    )
    for checker in (Draft4Validator.FORMAT_CHECKER, Draft7Validator.FORMAT_CHECKER):
        assert {"uri", "date-time"} <= set(checker.checkers), "formats would go unchecked"
    return {
        "feed.json": Draft4Validator(
            feed, registry=registry, format_checker=Draft4Validator.FORMAT_CHECKER
        ),
        "roku.json": Draft7Validator(
            _json_schema("roku-directpublisher.schema.json"),
            format_checker=Draft7Validator.FORMAT_CHECKER,
        ),
    }


def valid_json(filename: str, body: bytes, where: object = "") -> dict:
    """`body` parsed, after checking it is JSON that its schema accepts."""
    doc = json.loads(body)
    error = best_match(json_validators()[filename].iter_errors(doc))
    assert error is None, (where, error and f"{error.json_path}: {error.message}")
    return doc


def valid_xml(filename: str, body: bytes, where: object = "") -> etree._Element:
    """`body` parsed by lxml, after checking feedparser reads it without bozo and, for Atom,
    that it is valid against RFC 4287's grammar."""
    assert body.startswith(b"<?xml"), where
    parsed = feedparser.parse(body)
    assert not parsed.bozo, (where, parsed.get("bozo_exception"))
    root = etree.fromstring(body)
    if filename == "atom.xml":
        assert atom_schema().validate(root), (where, atom_schema().error_log.last_error)
    assert_uris(root, where)
    return root


def assert_uris(root: etree._Element, where: object = "") -> None:
    """Every address in `root` is an RFC 3986 URI: RSS and OPML take URLs, and the W3C
    validator refuses a raw non-ASCII path in an Atom IRI too (InvalidFullLink, InvalidIRI),
    so a Persian slug is percent-encoded as RFC 3987 §3.1 maps it."""
    for address in _ADDRESSES(root):
        assert validate_rfc3986(address, rule="URI"), (where, address)


def assert_valid(filename: str, body: bytes, where: object = "") -> None:
    if filename.endswith(".json"):
        valid_json(filename, body, where)
    else:
        valid_xml(filename, body, where)
