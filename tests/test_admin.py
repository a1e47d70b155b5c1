"""The operator page's protections over real HTTP: off unless configured; a bearer token or a
Basic-auth password checked against their hashes (right, wrong, missing; constant-time); or
only on a separate listen address, where the public port does not have it."""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json

import pytest
import requests
from werkzeug.security import generate_password_hash

from conftest import LiveServer, free_port
from feedsvc.cache import MemoryCache
from feedsvc.config import ConfigError, settings_from_mapping
from feedsvc.web import create_app
from feedsvc.web.admin import serve_admin

TOKEN, PASSWORD = "s3cret-token-for-tests", "correct horse battery staple"
REPORT = {"feeds": [{"feed": "rss.xml", "subscribers": 144}]}


def _cache() -> MemoryCache:
    """A cache holding a report as the rollup publishes it."""
    cache = MemoryCache()
    cache.set_state("reach.json", json.dumps(REPORT))
    cache.set_state("reach.html", "<!DOCTYPE html><title>Reach</title><p>144</p>")
    return cache


@pytest.fixture
def serve(settings, store, live_server_factory):
    """The public app with `admin` options, on a cache holding a report."""
    def start(cache: MemoryCache | None = None, **admin: object) -> str:
        configured = dataclasses.replace(settings, **{f"admin_{k}": v for k, v in admin.items()})
        return live_server_factory(configured, store, cache or _cache()).url
    return start


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_the_admin_is_off_unless_configured(serve):
    url = serve()
    for path in ("/admin/", "/admin/reach.json", "/admin/admin.css"):
        assert requests.get(url + path, headers=BEARER, timeout=10).status_code == 404


def test_a_bearer_token_opens_it_and_nothing_else_does(serve):
    url = serve(token_hash=generate_password_hash(TOKEN))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": TOKEN}, basic("admin", TOKEN)):
        refused = requests.get(url + "/admin/", headers=headers, timeout=10)
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.headers["Cache-Control"] == "no-store"
        assert "144" not in refused.text
    page = requests.get(url + "/admin/", headers=BEARER, timeout=10)
    assert page.status_code == 200 and "144" in page.text
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    report = requests.get(url + "/admin/reach.json", headers=BEARER, timeout=10)
    assert report.json() == REPORT
    assert requests.get(url + "/admin/admin.css", headers=BEARER,
                        timeout=10).headers["Content-Type"].startswith("text/css")


def test_a_password_opens_it_for_its_user_only(serve):
    url = serve(password_hash=generate_password_hash(PASSWORD), user="editor")
    for headers in ({}, basic("editor", "wrong"), basic("admin", PASSWORD), basic("", PASSWORD),
                    {"Authorization": "Basic !!!not-base64"}, {"Authorization": "Bearer " +
                                                               PASSWORD}):
        refused = requests.get(url + "/admin/reach.json", headers=headers, timeout=10)
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith('Basic realm="feedsvc admin"')
    assert requests.get(url + "/admin/reach.json", headers=basic("editor", PASSWORD),
                        timeout=10).json() == REPORT


def test_admin_responses_are_private_and_strict(serve):
    url = serve(token_hash=generate_password_hash(TOKEN))
    for path in ("/admin/", "/admin/reach.json", "/admin/nothing"):
        response = requests.get(url + path, headers=BEARER, timeout=10)
        assert response.headers["Cache-Control"] == "no-store", path
        assert "Access-Control-Allow-Origin" not in response.headers, path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp, path
        assert "frame-ancestors 'none'" in csp
    # the feeds keep their CORS header: the admin's headers are the admin's alone
    assert requests.get(url + "/feeds.opml", timeout=10).headers.get(
        "Access-Control-Allow-Origin") == "*"


def test_no_report_yet_is_a_503_not_an_empty_page(serve):
    url = serve(MemoryCache(), token_hash=generate_password_hash(TOKEN))
    response = requests.get(url + "/admin/", headers=BEARER, timeout=10)
    assert response.status_code == 503 and response.headers["Retry-After"]


def test_credentials_are_compared_in_constant_time(monkeypatch, serve):
    """Every comparison of a presented secret goes through hmac.compare_digest (werkzeug's
    check_password_hash uses it too), and a wrong user name does not skip the password check:
    the time taken tells nothing of which part was wrong."""
    url = serve(password_hash=generate_password_hash(PASSWORD), user="editor")
    compared: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert requests.get(url + "/admin/", headers=basic("intruder", PASSWORD),
                        timeout=10).status_code == 401
    assert (b"intruder", b"editor") in compared
    assert len(compared) == 2  # the user name, then the password's hash all the same


def test_a_separate_listen_address_takes_the_admin_off_the_public_port(settings, store):
    port = free_port()
    configured = dataclasses.replace(settings, admin_listen=("127.0.0.1", port),
                                     admin_token_hash=generate_password_hash(TOKEN))
    cache = _cache()
    public = LiveServer(create_app(configured, store, cache))
    admin = serve_admin(configured, cache)
    try:
        for headers in ({}, BEARER):
            assert requests.get(public.url + "/admin/", headers=headers,
                                timeout=10).status_code == 404
        there = f"http://127.0.0.1:{port}"
        assert requests.get(there + "/admin/", timeout=10).status_code == 401  # token too
        assert requests.get(there + "/admin/reach.json", headers=BEARER,
                            timeout=10).json() == REPORT
        assert requests.get(there + "/feeds/rss.xml", timeout=10).status_code == 404
    finally:
        public.stop()
        admin.shutdown()


def test_a_separate_listen_address_alone_needs_no_secret(settings):
    port = free_port()
    configured = dataclasses.replace(settings, admin_listen=("127.0.0.1", port))
    server = serve_admin(configured, _cache())
    try:
        assert requests.get(f"http://127.0.0.1:{port}/admin/reach.json",
                            timeout=10).json() == REPORT
    finally:
        server.shutdown()


@pytest.mark.parametrize(("raw", "message"), [
    ({"admin": {"token_hash": TOKEN}}, "admin.token_hash: must be a hash printed by"),
    ({"admin": {"password_hash": "scrypt:32768:8:1"}}, "admin.password_hash: must be a hash"),
    ({"admin": {"listen": "8001"}}, "admin.listen: '8001' is not host:port"),
    ({"admin": {"listen": "127.0.0.1:99999"}}, "admin.listen: 99999 is not a TCP port"),
    ({"reach": {"rollup_interval": 0}}, "reach.rollup_interval: must be positive"),
])
def test_admin_options_are_checked(raw, message):
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping(raw)


def test_admin_options_read(settings):
    s = settings_from_mapping({"admin": {"listen": "[::1]:8001", "user": "ed"}})
    assert s.admin_listen == ("::1", 8001) and s.admin_user == "ed" and s.admin_enabled
    assert not settings_from_mapping({}).admin_enabled


def test_feedsvc_admin_hash_prints_a_hash_the_config_accepts_and_the_page_checks(tmp_path):
    from werkzeug.security import check_password_hash

    from processes import BIN, run

    done = run([str(BIN / "feedsvc"), "admin", "hash", "--stdin"], {}, input=TOKEN + "\n")
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert TOKEN not in printed and check_password_hash(printed, TOKEN)
    assert settings_from_mapping({"admin": {"token_hash": printed}}).admin_token_hash == printed
    short = run([str(BIN / "feedsvc"), "admin", "hash", "--stdin"], {}, input="short\n")
    assert short.returncode == 1
    assert short.stderr.splitlines() == ["Error: the secret must be at least 12 characters long"]


def test_subscribers_are_on_metrics_as_a_gauge_per_feed(serve):
    url = serve()  # with the admin off too: the gauge comes from the published report
    lines = requests.get(url + "/metrics", timeout=10).text.splitlines()
    assert 'feedsvc_reach_subscribers{feed="rss.xml"} 144.0' in lines


def test_feedsvc_demo_serves_the_admin_only_on_its_listen_address(spawn, tmp_path):
    """`feedsvc serve` (here its demo) starts the admin on `admin.listen` beside the public
    port, with a report from its first rollup, and the public port has no admin at all."""
    from conftest import ROOT
    from processes import BIN, wait_until_serving

    port, admin_port = free_port(), free_port()
    config = tmp_path / "feedsvc.toml"
    config.write_text((ROOT / "config" / "feedsvc.toml").read_text().replace(
        'listen = ""', f'listen = "127.0.0.1:{admin_port}"'))
    demo = spawn([str(BIN / "feedsvc"), "demo", "--port", str(port)],
                 env={"XDG_RUNTIME_DIR": str(tmp_path), "FEEDSVC_CONFIG": str(config)})
    wait_until_serving(f"http://127.0.0.1:{port}/feeds/rss.xml", demo)
    requests.get(f"http://127.0.0.1:{port}/feeds/rss.xml", timeout=5,
                 headers={"User-Agent": "Newsboat/2.36 (Linux x86_64)"})
    wait_until_serving(f"http://127.0.0.1:{admin_port}/admin/reach.json", demo)
    report = requests.get(f"http://127.0.0.1:{admin_port}/admin/reach.json", timeout=5).json()
    assert report["version"] == 1
    assert requests.get(f"http://127.0.0.1:{admin_port}/admin/", timeout=5).status_code == 200
    assert requests.get(f"http://127.0.0.1:{port}/admin/", timeout=5).status_code == 404
    assert requests.get(f"http://127.0.0.1:{port}/admin/reach.json",
                        timeout=5).status_code == 404


def test_the_admin_listen_address_logs_no_client_address(settings, caplog):
    port = free_port()
    configured = dataclasses.replace(settings, admin_listen=("127.0.0.1", port))
    server = serve_admin(configured, _cache())
    try:
        with caplog.at_level("DEBUG"):
            assert requests.get(f"http://127.0.0.1:{port}/admin/", timeout=10).ok
    finally:
        server.shutdown()
    assert "127.0.0.1 - -" not in caplog.text
