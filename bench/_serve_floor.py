"""Floors for bench/serve.py: what a serving stack does with no feed logic at all. Both serve
the benchmark feed's bytes from memory with its headers (gzip when asked, 304 on its exact
ETag): `flask_app()` makes a one-route Flask app, `wsgi_app()` a bare WSGI callable (factories,
as the servers are told to call one)."""

import os

from flask import Flask, Response, request

from feedsvc.cache import FeedKey, RedisCache

_ENTRY = RedisCache.from_url(os.environ["REDIS_URL"], os.environ["BENCH_PREFIX"]).get(
    FeedKey("", "rss.xml", "https://news.example"))
_HEADERS = [("ETag", _ENTRY.etag), ("Cache-Control", "public, max-age=60"),
            ("Vary", "Accept-Encoding"), ("Content-Type", _ENTRY.content_type)]


def _answer(environ) -> tuple[str, list[tuple[str, str]], bytes]:
    if environ.get("HTTP_IF_NONE_MATCH") == _ENTRY.etag:
        return "304 Not Modified", _HEADERS[:3], b""
    if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        return "200 OK", [*_HEADERS, ("Content-Encoding", "gzip")], _ENTRY.gzip
    return "200 OK", _HEADERS, _ENTRY.body


def _bare(environ, start_response):
    status, headers, body = _answer(environ)
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def wsgi_app():
    return _bare


def flask_app() -> Flask:
    app = Flask(__name__)

    @app.get("/feeds/<filename>")
    def feed(filename: str) -> Response:
        status, headers, body = _answer(request.environ)
        return Response(body, status=int(status[:3]), headers=headers)

    return app
