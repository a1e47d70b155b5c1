"""The ingest API (docs/openapi.yaml): a CMS pushes an article the moment an editor publishes
it, instead of running `feedsvc import`.

`PUT /api/articles/<id>` takes the article document of the JSON Lines importer, validated by
the same code (feedsvc.ingest.document, through importer.parse_logged) with the same
`field: reason` messages; `DELETE /api/articles/<id>` takes the stored article out of every
feed (it is kept with status `deleted`, as an import of that status does);
`POST /api/articles:batch` takes up to MAX_BATCH documents and reports on each. Writes are
idempotent by id, and one that changes nothing is not written, so it announces and re-renders
nothing. A committed change is announced as `feedsvc import` announces one: the scheduler
leader refreshes at once.

A WSGI app of its own in the ingest layer, which the web process mounts at /api/ and loads on
the first request there (feedsvc.wsgi): the web package never imports it, and a web worker
that only serves feeds never loads it, nor the store's library.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from feedsvc.config import Settings
from feedsvc.ingest import jsontext
from feedsvc.ingest.document import DocumentError
from feedsvc.ingest.importer import parse_logged
from feedsvc.ingest.tokens import Tokens
from feedsvc.model import Article
from feedsvc.store import Store, StoreUnavailable, Written
from feedsvc.tokenbucket import TokenBuckets

log = logging.getLogger(__name__)
MAX_BATCH = 1000
_REALM = 'Bearer realm="feedsvc"'


class _Refused(HTTPException):
    """An HTTP error with a JSON body and headers of its own."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None,
                 errors: list[str] | None = None):
        super().__init__(message)
        self.code = code
        self.extra_headers = headers or {}
        self.errors = errors


def _refuse(code: int, message: str, **kwargs: Any) -> NoReturn:
    raise _Refused(code, message, **kwargs)


def create_api(settings: Settings, store: Store, announce: Callable[[], None]) -> Flask:
    """The API over `store`, calling `announce` after each committed change."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.api_max_body_bytes  # 413 beyond, unread
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False
    api = _Api(settings, store, announce)
    app.before_request(api.authorise)
    app.before_request(_utf8_path)
    app.add_url_rule("/api/articles:batch", "batch", api.batch, methods=["POST"])
    app.add_url_rule("/api/articles/<path:article_id>", "put", api.put, methods=["PUT"])
    app.add_url_rule("/api/articles/<path:article_id>", "delete", api.delete,
                     methods=["DELETE"])
    app.register_error_handler(HTTPException, _error)
    return app


def _utf8_path() -> None:
    """400 unless the request's path is UTF-8 once percent-decoded. Werkzeug reads a path that
    is not with U+FFFD in place of each bad byte (`%ff%fe` and `%fe%ff` alike), which would name
    an article no client sent. Servers differ in where the bytes survive: PATH_INFO holds them
    as Latin-1 (PEP 3333) in granian and gunicorn, while Werkzeug's own server has replaced
    them there already and keeps the raw target in REQUEST_URI (gunicorn in RAW_URI too)."""
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    try:
        for path in (unquote_to_bytes(target.partition("?")[0].encode("latin-1")),
                     environ.get("PATH_INFO", "").encode("latin-1")):
            path.decode("utf-8")
    except UnicodeError:
        _refuse(400, "the path is not UTF-8 once percent-decoded")


def _error(exc: HTTPException) -> Response:
    """Every error as a short JSON body ({"error": ...}), with its Allow, Retry-After or
    WWW-Authenticate header."""
    code = exc.code or 500
    body: dict[str, Any] = {"error": f"{code} {exc.name}: {exc.description}"
                            if isinstance(exc, _Refused) else f"{code} {exc.name}"}
    headers = dict(exc.extra_headers) if isinstance(exc, _Refused) else {}
    if isinstance(exc, _Refused) and exc.errors is not None:
        body["errors"] = exc.errors
    if "Allow" in exc.get_response().headers:
        headers["Allow"] = exc.get_response().headers["Allow"]
    return _json(body, code, headers)


def _json(body: object, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False) + "\n", status=status,
                    mimetype="application/json", headers=headers)


class _Api:
    def __init__(self, settings: Settings, store: Store, announce: Callable[[], None]):
        self.settings = settings
        self.store = store
        self.announce = announce
        self.tokens = Tokens(settings.api_tokens)
        self.buckets = TokenBuckets(settings.api_rate_limit, settings.api_rate_limit_burst)

    def authorise(self) -> None:
        """401 unless the request carries a configured token; 429 when that token is over its
        rate. Before routing's 404 and 405: nothing is told to a caller without a token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        name = (self.tokens.name_of(token.strip())
                if scheme.lower() == "bearer" and token.strip() else None)
        if name is None:
            log.info("refused %s %s from %s: %s", request.method, request.path,
                     request.remote_addr, "a token that is not configured" if token.strip()
                     else "no bearer token")
            challenge = _REALM + (', error="invalid_token"' if token.strip() else "")
            _refuse(401, "a configured bearer token is required",
                    headers={"WWW-Authenticate": challenge})
        wait = self.buckets.take(name)
        if wait:
            log.info("token %s over its rate (%s requests/s): %s %s refused", name,
                     self.settings.api_rate_limit, request.method, request.path)
            _refuse(429, f"token {name!r} is over its rate of {self.settings.api_rate_limit:g} "
                         "requests per second", headers={"Retry-After": str(math.ceil(wait))})
        g.token = name

    def put(self, article_id: str) -> Response:
        doc = self._document()
        if not isinstance(doc, dict):
            _refuse(422, "invalid article", errors=["(document): must be a JSON object"])
        given = doc.get("id", article_id)  # the URL names it; the document may omit it
        if given != article_id:
            _refuse(422, "invalid article", errors=[
                f"id: {given!r} is not the id in the URL, {article_id!r}"])
        try:
            article = parse_logged({**doc, "id": article_id}, self.settings, self._where())
        except DocumentError as exc:
            _refuse(422, "invalid article", errors=[str(e) for e in exc.errors])
        result = self._write([article])[article_id]
        log.info("token %s: PUT %s: %s", g.token, article_id, result)
        return _json({"id": article_id, "result": result}, 201 if result == "created" else 200)

    def delete(self, article_id: str) -> Response:
        stored = self._stored(article_id)
        if stored is None:
            _refuse(404, f"no article has the id {article_id!r}")
        result = self._write([dataclasses.replace(stored, status="deleted")])[article_id]
        log.info("token %s: DELETE %s: %s", g.token, article_id,
                 "deleted" if result == "updated" else "already deleted")
        return Response(status=204)

    def batch(self) -> Response:
        doc = self._document()
        items = doc.get("articles") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            _refuse(422, "invalid batch", errors=["articles: is required, a list of articles"])
        if len(items) > MAX_BATCH:
            _refuse(422, "invalid batch", errors=[
                f"articles: has {len(items)} entries, the limit is {MAX_BATCH}"])
        reports: list[dict[str, Any]] = []
        accepted: dict[str, tuple[int, Article]] = {}
        for index, item in enumerate(items):
            report: dict[str, Any] = {"index": index}
            reports.append(report)
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                report["id"] = item["id"]
            errors = self._batch_errors(item, index, accepted)
            if isinstance(errors, Article):
                accepted[errors.id] = (index, errors)
            else:
                report.update(result="rejected", errors=errors)
        written = self._write([article for _, article in accepted.values()])
        for article_id, (index, _) in accepted.items():
            reports[index]["result"] = written[article_id]
        counts = {kind: sum(r["result"] == kind for r in reports)
                  for kind in ("created", "updated", "unchanged", "rejected")}
        log.info("token %s: batch of %d: %s", g.token, len(items),
                 ", ".join(f"{n} {kind}" for kind, n in counts.items()))
        return _json({**counts, "results": reports}, 200)

    def _batch_errors(self, item: object, index: int,
                      accepted: dict[str, tuple[int, Article]]) -> Article | list[str]:
        """Item `index` as an article, or why not."""
        if not isinstance(item, dict):
            return ["(document): must be a JSON object"]
        try:
            article = parse_logged(item, self.settings, f"{self._where()}[{index}]")
        except DocumentError as exc:
            return [str(e) for e in exc.errors]
        if article.id in accepted:
            return [f"id: {article.id!r} is also item {accepted[article.id][0]} of the batch"]
        return article

    def _document(self) -> object:
        """The request's JSON body: 415 unless it says it is JSON (UTF-8), 400 unless it is,
        within the bounds the importer reads a line to (feedsvc.ingest.jsontext)."""
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if request.mimetype != "application/json" or charset not in ("utf-8", "utf8"):
            _refuse(415, "the body must be application/json (UTF-8)")
        try:
            return jsontext.loads(request.get_data(cache=False))
        except jsontext.NotJson as exc:
            _refuse(400, str(exc))

    def _stored(self, article_id: str) -> Article | None:
        try:
            return self.store.get(article_id)
        except StoreUnavailable as exc:
            self._unavailable(exc)

    def _write(self, articles: list[Article]) -> dict[str, Written]:
        """Write what changed, announce it when anything did."""
        try:
            written = self.store.upsert_changed(articles)
        except StoreUnavailable as exc:
            self._unavailable(exc)
        if any(result != "unchanged" for result in written.values()):
            self.announce()
        return written

    def _unavailable(self, exc: StoreUnavailable) -> NoReturn:
        log.error("token %s: %s %s: the store refused: %s", g.token, request.method,
                  request.path, exc)
        _refuse(503, "the store is unavailable; nothing was written, send it again",
                headers={"Retry-After": "5"})

    @staticmethod
    def _where() -> str:
        return f"api {g.token} {request.method} {request.path}"
