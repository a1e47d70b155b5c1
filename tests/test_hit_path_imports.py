"""Serving a cache hit loads none of the renderers' or the store's libraries: a web worker
that only answers hits does not carry feedgen, lxml, nh3 or SQLAlchemy (the way
lemon24/reader's tests/test_lazy_imports.py checks its own lazy imports). The hit is served in a
fresh interpreter by the production fast path, from a real Redis entry this test wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from conftest import REDIS_URL, ROOT
from feedsvc.cache import FeedKey, RedisCache, RenderedFeed

pytestmark = pytest.mark.slow  # starts a Python process per check

# jinja2 is not listed: Flask itself imports it, and every web worker runs Flask.
NOT_FOR_HITS = ["feedgen", "lxml", "nh3", "sqlalchemy", "feedsvc.render", "feedsvc.store"]
BODY = b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel/></rss>'

SERVE_ONE_HIT = """
import json, sys
from types import SimpleNamespace
from feedsvc.cache import RedisCache
from feedsvc.config import load_settings
from feedsvc.web.addresses import Addresses
from feedsvc.web.fastpath import FeedFastPath
from feedsvc.web.polls import PollMarks
from feedsvc.web.reach import ReachCounter
from feedsvc.web.responses import CachePolicy

settings = load_settings({config!r}, environ={{}})
cache = RedisCache.from_url({url!r}, prefix={prefix!r})
services = SimpleNamespace(cache=cache, addresses=Addresses(settings),
                           policy=CachePolicy.from_settings(settings),
                           reach=ReachCounter(cache.reach(), settings.trusted_proxies),
                           polls=PollMarks(cache))

def not_a_hit(environ, start_response):
    raise SystemExit("the request went past the fast path")

answered = []
body = b"".join(FeedFastPath(not_a_hit, services)(
    {{"REQUEST_METHOD": "GET", "PATH_INFO": {path!r}, "HTTP_HOST": "news.example",
      "HTTP_ACCEPT_ENCODING": "identity", "SERVER_PROTOCOL": "HTTP/1.1"}},
    lambda status, headers: answered.append(status)))
print(json.dumps({{"status": answered, "body": body.decode(), "modules": sorted(sys.modules)}}))
"""


@pytest.mark.parametrize("feed", ["world", "tag/turkey"])  # a tag feed's hit marks it polled
def test_serving_a_cache_hit_loads_no_renderer_or_store(redis_cache: RedisCache, feed: str):
    key = FeedKey(feed, "rss.xml", "https://news.example")
    updated = datetime(2026, 11, 20, 10, tzinfo=UTC)
    redis_cache.put_many({key: RenderedFeed.of(BODY, "application/rss+xml", updated).compress()})
    code = SERVE_ONE_HIT.format(config=str(ROOT / "config" / "feedsvc.toml"), url=REDIS_URL,
                                prefix=redis_cache.prefix, path=f"/feeds/{feed}/rss.xml")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout.splitlines()[-1])
    assert served["status"] == ["200 OK"] and served["body"] == BODY.decode()
    loaded = set(served["modules"])
    assert "feedsvc.web.fastpath" in loaded and "redis" in loaded  # it did serve, from Redis
    assert [name for name in NOT_FOR_HITS if name in loaded] == []
    assert redis_cache.polled_since([feed], 0) == ({feed} if feed.startswith("tag/") else set())


FIRST_MISS = """
import dataclasses, json, sys
from feedsvc.config import load_settings
from feedsvc.web import create_app

settings = dataclasses.replace(load_settings({config!r}, environ={{}}), database_url={url!r})
client = create_app(settings).test_client()
before = sorted(sys.modules)
response = client.get("/feeds/rss.xml", headers={{"Host": "news.example"}})
print(json.dumps({{"status": response.status_code, "body": response.get_data(as_text=True),
                  "before": before, "after": sorted(sys.modules)}}))
"""


def test_the_app_loads_the_renderers_and_the_store_on_its_first_miss(sqlite_url: str):
    """A web worker pays for the renderers only once a reader asks for a document the cache
    does not hold (the scheduler normally renders everything first)."""
    code = FIRST_MISS.format(config=str(ROOT / "config" / "feedsvc.toml"), url=sqlite_url)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout.splitlines()[-1])
    assert served["status"] == 200 and "<rss" in served["body"]  # rendered on the miss
    # Built, the app holds neither the renderers nor the store's library (the store is opened
    # on first use); the miss loads both.
    renderers = ["feedgen", "lxml", "nh3", "feedsvc.render", "sqlalchemy", "feedsvc.store"]
    assert [name for name in renderers if name in served["before"]] == []
    assert [name for name in renderers if name in served["after"]] == renderers


COMPOSED = """
import dataclasses, json, sys
from feedsvc.config import ApiToken, load_settings
from feedsvc.wsgi import create_app
from werkzeug.test import Client

settings = dataclasses.replace(load_settings({config!r}, environ={{}}), redis_url={url!r},
                               cache_prefix={prefix!r}, database_url={store!r},
                               api_tokens=(ApiToken("cms", "sha256:" + "0" * 64),))
client = Client(create_app(settings))
hit = client.get("/feeds/world/rss.xml", headers={{"Host": "news.example"}})
after_hit = sorted(sys.modules)
api = client.put("/api/articles/x", headers={{"Authorization": "Bearer wrong"}})
print(json.dumps({{"hit": hit.status_code, "api": api.status_code, "after_hit": after_hit,
                  "after_api": sorted(sys.modules)}}))
"""


def test_the_composed_app_loads_the_ingest_api_on_its_first_request_only(
        redis_cache: RedisCache, sqlite_url: str):
    """With API tokens configured, the web process's app (feedsvc.wsgi) serves a cache hit
    without loading the API or the store; the first /api/ request loads both."""
    key = FeedKey("world", "rss.xml", "https://news.example")
    updated = datetime(2026, 11, 20, 10, tzinfo=UTC)
    redis_cache.put_many({key: RenderedFeed.of(BODY, "application/rss+xml", updated).compress()})
    code = COMPOSED.format(config=str(ROOT / "config" / "feedsvc.toml"), url=REDIS_URL,
                           prefix=redis_cache.prefix, store=sqlite_url)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout.splitlines()[-1])
    assert served["hit"] == 200 and served["api"] == 401
    api = ["feedsvc.ingest", "feedsvc.ingest.api", "sqlalchemy", "feedsvc.store"]
    assert [name for name in [*NOT_FOR_HITS, *api] if name in served["after_hit"]] == []
    assert [name for name in api if name in served["after_api"]] == api
