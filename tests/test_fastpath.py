"""The WSGI fast path for cache hits answers exactly what the Flask route answers."""

from __future__ import annotations

import itertools

import pytest
from werkzeug.test import Client

from conftest import DEMO_ARTICLES
from feedsvc.build import FeedBuilder
from feedsvc.ingest.importer import Importer
from feedsvc.refresh import Refresher
from feedsvc.web import create_app
from feedsvc.web.fastpath import FeedFastPath


@pytest.fixture
def app(settings, store, redis_cache):
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    Refresher(FeedBuilder(settings, store, redis_cache)).full()
    return create_app(settings, store, redis_cache, near_cache=False)


PATHS = ["/feeds/rss.xml", "/feeds/news/turkey/atom.xml", "/feeds/world/feed.json",
         "/feeds/roku.json", "/feeds/nowhere/rss.xml", "/feeds//rss.xml", "/feeds/news/x.txt",
         "/feeds/news%2Fturkey/rss.xml", "/feeds/خبر/rss.xml"]
HEADERS = [
    {},
    {"Accept-Encoding": "gzip"},
    {"Accept-Encoding": "br;q=1, gzip;q=0.5"},
    {"Accept-Encoding": "identity;q=0"},
    {"If-None-Match": "*"},
    {"If-Modified-Since": "Sat, 01 Jan 2100 00:00:00 GMT"},
    {"Host": "news-mirror.example"},
    {"Host": "bad host!"},
]


def test_the_fast_path_is_in_front_of_flask(app):
    assert isinstance(app.wsgi_app, FeedFastPath)


def test_fast_path_and_flask_route_answer_the_same(app):
    fast = Client(app.wsgi_app)
    flask_only = Client(app.wsgi_app.app)  # the Flask app beneath the middleware
    for path, headers, method in itertools.product(PATHS, HEADERS, ("GET", "HEAD")):
        kwargs = {"method": method, "headers": {"Host": "news.example", **headers}}
        a, b = fast.open(path, **kwargs), flask_only.open(path, **kwargs)
        assert a.status_code == b.status_code, (method, path, headers)
        assert a.get_data() == b.get_data(), (method, path, headers)
        assert sorted(a.headers.items()) == sorted(b.headers.items()), (method, path, headers)


def test_cache_hits_never_reach_flask(app):
    def flask_must_not_run(environ, start_response):
        raise AssertionError(f"{environ['PATH_INFO']} went to Flask")

    alone = Client(FeedFastPath(flask_must_not_run, app.extensions["feedsvc"]))
    for path in ("/feeds/rss.xml", "/feeds/news/turkey/atom.xml", "/feeds/world/roku.json"):
        for headers in ({}, {"Accept-Encoding": "gzip"}, {"If-None-Match": "*"}):
            response = alone.get(path, headers={"Host": "example-news.tv", **headers})
            assert response.status_code in (200, 304)
