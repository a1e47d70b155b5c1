"""A client of the ingest API for tests that checks every answer against docs/openapi.yaml:
the (path, method, status) is documented, the JSON body matches its schema (jsonschema, the
spec's own JSON Schema 2020-12) and the documented headers are there."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conftest import ROOT

SPEC_PATH = ROOT / "docs" / "openapi.yaml"
_SPEC_URI = "urn:feedsvc:openapi"


@functools.cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(
        _SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012))


def documented() -> set[tuple[str, str, int]]:
    """Every (path, METHOD, status) the spec documents."""
    return {(path, method.upper(), int(status))
            for path, item in spec()["paths"].items()
            for method, operation in item.items() if method != "parameters"
            for status in operation["responses"]}


def resolved(node: dict[str, Any]) -> dict[str, Any]:
    """`node`, or what its local `$ref` ("#/components/...") points at."""
    while "$ref" in node:
        node = functools.reduce(lambda found, key: found[key],
                                node["$ref"].removeprefix("#/").split("/"), spec())
    return node


def template_of(path: str) -> str | None:
    """The spec's path template `path` (percent-encoded, as sent) matches."""
    for template in spec()["paths"]:
        pattern = re.escape(template).replace(r"\{id\}", "[^?]+")
        if re.fullmatch(pattern, path):
            return template
    return None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    json: Any


def check(path: str, method: str, response: requests.Response) -> Answer:
    """`response` against the spec (AssertionError when it differs); None for paths outside
    it (a request the spec does not describe, e.g. /api/nothing, must be refused)."""
    template = template_of(path)
    body = response.json() if response.content else None
    if template is None or method.lower() not in spec()["paths"][template]:
        assert response.status_code in (401, 404, 405), (method, path, response.status_code)
        return Answer(response.status_code, response.headers, body)
    responses = spec()["paths"][template][method.lower()]["responses"]
    assert str(response.status_code) in responses, \
        f"{method} {template} answered {response.status_code}, which the spec does not document"
    documented = resolved(responses[str(response.status_code)])
    for header in documented.get("headers", {}):
        assert header in response.headers, f"{method} {template} {response.status_code}: " \
                                           f"no {header}"
    content = documented.get("content", {})
    if not content:
        assert not response.content, f"{method} {template} {response.status_code} has a body"
    else:
        assert response.headers["Content-Type"] in content, response.headers["Content-Type"]
        ref = content[response.headers["Content-Type"]]["schema"]["$ref"]
        Draft202012Validator({"$ref": _SPEC_URI + ref}, registry=_registry()).validate(body)
    return Answer(response.status_code, response.headers, body)


class API:
    """Requests to the API at `url` with `token`; each answer checked against the spec and its
    (path template, method, status) recorded in `seen`."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.token = token
        self.seen: set[tuple[str, str, int]] = set()

    def call(self, method: str, path: str, body: object = None,
             headers: dict[str, str | None] | None = None) -> Answer:
        sent: dict[str, str | None] = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        response = requests.request(method, self.url + path, data=data, headers=sent,
                                    timeout=30)
        answer = check(path, method, response)
        if (template := template_of(path)) is not None:
            self.seen.add((template, method.upper(), answer.status))
        return answer

    def put(self, article_id: str, doc: object) -> Answer:
        return self.call("PUT", "/api/articles/" + quote(article_id, safe=""), doc)

    def delete(self, article_id: str) -> Answer:
        return self.call("DELETE", "/api/articles/" + quote(article_id, safe=""))

    def batch(self, docs: list[object]) -> Answer:
        return self.call("POST", "/api/articles:batch", {"articles": docs})
