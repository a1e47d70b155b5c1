"""docs/openapi.yaml and the API agree: the file is valid OpenAPI 3.1 (openapi-spec-validator),
and every (path, method, status) it documents is answered, as documented (apispec.check: the
schema of the body, the headers), by the running service."""

from __future__ import annotations

import dataclasses

from openapi_spec_validator import OpenAPIV31SpecValidator

from apispec import API, documented, spec
from conftest import REDIS_URL, LiveServer
from feedsvc.cache import RedisCache
from feedsvc.config import ApiToken
from feedsvc.ingest.tokens import hash_token
from feedsvc.wsgi import create_app

TOKEN = "openapi-test-token-0123456789abcdefghijklmnop"


def test_the_file_is_valid_openapi_3_1():
    assert spec()["openapi"] == "3.1.0"
    errors = [str(error) for error in OpenAPIV31SpecValidator(spec()).iter_errors()]
    assert errors == []


def test_every_documented_status_is_answered_as_documented(settings, sqlite_url, redis_client,
                                                           redis_prefix):
    tokens = (ApiToken("cms", hash_token(TOKEN)),)
    cache = RedisCache(redis_client, redis_prefix)
    up = dataclasses.replace(settings, database_url=sqlite_url, redis_url=REDIS_URL,
                             cache_prefix=redis_prefix, api_tokens=tokens,
                             api_max_body_bytes=4000, api_rate_limit=0.01,
                             api_rate_limit_burst=1000)
    down = dataclasses.replace(up, database_url="postgresql://postgres@127.0.0.1:1/none")
    servers = [LiveServer(create_app(chosen, None, cache)) for chosen in (up, down)]
    try:
        api, broken = (API(server.url, TOKEN) for server in servers)
        doc = {"url": "/a", "section": "News", "title": "A", "published": "2026-11-24T10:00:00Z"}
        bad = {**doc, "title": None}
        for target in (api, broken):
            target.call("PUT", "/api/articles/x", doc, headers={"Authorization": None})
            target.call("POST", "/api/articles:batch", {"articles": []},
                        headers={"Authorization": None})
            target.call("DELETE", "/api/articles/x", headers={"Authorization": None})
        api.put("a", doc)  # 201
        api.put("a", doc)  # 200
        api.put("a", bad)  # 422
        api.call("PUT", "/api/articles/a", b"{")  # 400
        api.call("PUT", "/api/articles/a", b"{}", headers={"Content-Type": "text/plain"})  # 415
        api.put("a", {**doc, "body": "x" * 5000})  # 413
        api.batch([doc | {"id": "b"}, bad])  # 200
        api.batch([0] * 1001)  # 422: too many (checked before the items)
        api.call("POST", "/api/articles:batch", b"[")  # 400
        api.call("POST", "/api/articles:batch", b"{}", headers={"Content-Type": "text/csv"})
        api.call("POST", "/api/articles:batch", {"articles": [{**doc, "body": "x" * 5000}]})
        api.delete("a")  # 204
        api.delete("nobody")  # 404
        api.call("DELETE", "/api/articles/%ff%fe")  # 400: not UTF-8
        broken.put("a", doc)  # 503
        broken.batch([doc | {"id": "b"}])
        broken.delete("a")
        limited = dataclasses.replace(up, api_rate_limit_burst=1)
        servers.append(LiveServer(create_app(limited, None, cache)))
        few = API(servers[-1].url, TOKEN)
        for method, path, body in (("PUT", "/api/articles/a", doc),
                                   ("DELETE", "/api/articles/a", None),
                                   ("POST", "/api/articles:batch", {"articles": []})):
            few.call(method, path, body)
            assert few.call(method, path, body).status == 429
        seen = api.seen | broken.seen | few.seen
        assert documented() - seen == set(), "documented but never answered"
        assert seen - documented() == set()  # (check() fails first on an undocumented one)
    finally:
        for server in servers:
            server.stop()
