"""The operator page `/admin/` and `/admin/reach.json` (docs/contracts.md, "Reach"): the report
the scheduler's rollup publishes in the cache (feedsvc.refresh.reach), served as it is.

Off unless configured (`admin.*`). Protected by a bearer token or a Basic-auth password, each
checked against its hash in the configuration (werkzeug's scrypt; `feedsvc admin hash` prints
one) with constant-time comparisons; or served only on a separate listen address
(`admin.listen`), by the scheduler process, and then absent from the public port. Responses
are never stored by a cache (`no-store`), carry no CORS header, and a Content-Security-Policy
that lets the page load nothing but its stylesheet and run nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass
from importlib.resources import files

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, NotFound, ServiceUnavailable
from werkzeug.security import check_password_hash
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from feedsvc.cache import CacheUnavailable, FeedCache
from feedsvc.config import Settings
from feedsvc.supervised import Supervised

log = logging.getLogger(__name__)
blueprint = Blueprint("admin", __name__)

# The cache state names the rollup publishes under (feedsvc.refresh.reach).
REPORT_STATE, PAGE_STATE = "reach.json", "reach.html"
STYLESHEET = files("feedsvc.web").joinpath("admin.css").read_bytes()
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Guard:
    """Who may see the admin: anyone who reaches it when no secret is configured (only with a
    separate listen address), else a request with the token or the user and password."""

    token_hash: str
    password_hash: str
    user: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        return cls(settings.admin_token_hash, settings.admin_password_hash, settings.admin_user)

    def allows(self, authorization: str | None) -> bool:
        if not (self.token_hash or self.password_hash):
            return True
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == "bearer" and self.token_hash:
            return check_password_hash(self.token_hash, credentials)
        if scheme == "basic" and self.password_hash:
            try:
                user, _, password = base64.b64decode(credentials, validate=True).decode(
                    ).partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            # Both checked whatever the first gives: the time taken tells nothing of which.
            user_ok = hmac.compare_digest(user.encode(), self.user.encode())
            password_ok = check_password_hash(self.password_hash, password)
            return user_ok and password_ok
        return False

    @property
    def challenge(self) -> str:
        return ('Basic realm="feedsvc admin", charset="UTF-8"' if self.password_hash
                else 'Bearer realm="feedsvc admin"')


@dataclass(frozen=True, slots=True)
class AdminServices:
    cache: FeedCache
    guard: Guard


def install(app: Flask, settings: Settings, cache: FeedCache) -> None:
    """Serve the admin routes on `app`."""
    app.extensions["feedsvc.admin"] = AdminServices(cache, Guard.from_settings(settings))
    app.register_blueprint(blueprint)


def _respond(body: bytes | str, content_type: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type=content_type)


@blueprint.after_app_request
def _private(response: Response) -> Response:
    """Every response under /admin, errors and unknown paths included: never stored, never
    framed, no CORS."""
    if request.path != "/admin" and not request.path.startswith("/admin/"):
        return response
    response.headers.update(HEADERS)
    response.headers.pop("Access-Control-Allow-Origin", None)
    return response


@blueprint.errorhandler(HTTPException)
def _short_error(exc: HTTPException) -> Response:
    response = _respond(f"{exc.code} {exc.name}\n", "text/plain; charset=utf-8", exc.code or 500)
    if "Retry-After" in exc.get_response().headers:
        response.headers["Retry-After"] = exc.get_response().headers["Retry-After"]
    return response


@blueprint.before_request
def _authorised() -> Response | None:
    guard: Guard = current_app.extensions["feedsvc.admin"].guard
    if guard.allows(request.headers.get("Authorization")):
        return None
    response = _respond("401 Unauthorized\n", "text/plain; charset=utf-8", 401)
    response.headers["WWW-Authenticate"] = guard.challenge
    return response


def _published(name: str) -> str:
    cache: FeedCache = current_app.extensions["feedsvc.admin"].cache
    try:
        value = cache.get_state(name)
    except CacheUnavailable as exc:
        log.warning("cache unavailable, no reach report: %s", exc)
        raise ServiceUnavailable(retry_after=30) from None
    if value is None:  # no rollup yet: the scheduler publishes one within reach.rollup_interval
        raise ServiceUnavailable(retry_after=60)
    return value


@blueprint.get("/admin/")
def page() -> Response:
    return _respond(_published(PAGE_STATE), "text/html; charset=utf-8")


@blueprint.get("/admin/reach.json")
def report() -> Response:
    return _respond(_published(REPORT_STATE), "application/json")


@blueprint.get("/admin/admin.css")
def stylesheet() -> Response:
    return _respond(STYLESHEET, "text/css; charset=utf-8")


@blueprint.get("/admin")
def without_slash() -> Response:
    raise NotFound()  # no redirect built from the request's Host (see feedsvc.web.app)


def admin_app(settings: Settings, cache: FeedCache) -> Flask:
    """The admin routes alone, for the separate listen address."""
    app = Flask(__name__)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    install(app, settings, cache)
    return app


class _Unlogged(WSGIRequestHandler):
    """No access line per request (werkzeug's names the client's address): the service
    logs none for the public port either unless asked (ACCESS_LOG)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def serve_admin(settings: Settings, cache: FeedCache) -> BaseWSGIServer:
    """Serve the admin on `admin.listen` in a daemon thread (the scheduler process does,
    as it serves its metrics); the caller may `shutdown()` it."""
    if settings.admin_listen is None:
        raise ValueError("admin.listen is not set")
    host, port = settings.admin_listen
    server = make_server(host, port, admin_app(settings, cache), threaded=True,
                         request_handler=_Unlogged)
    Supervised("admin", server.serve_forever, what="the admin server stopped").start()
    log.info("admin on http://%s:%d/admin/", host, port)
    return server
