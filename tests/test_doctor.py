"""`feedsvc check-config --connect`: the configured store, Redis and WebSub hubs, each checked
for real by the installed command, one line per check, exit 1 on any failure."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import DEMO_ARTICLES, ROOT, free_port
from processes import BIN, run

pytestmark = pytest.mark.slow  # starts `feedsvc check-config --connect` as a process


class Hub(BaseHTTPRequestHandler):
    """A WebSub hub that answers anything but a publish with 405, as real ones do."""

    def do_HEAD(self) -> None:
        self.send_response(405)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def hub() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub"
    server.shutdown()
    server.server_close()


def config_with(tmp_path: Path, hubs: list[str]) -> Path:
    text = (ROOT / "config" / "feedsvc.toml").read_text()
    text, found = re.subn(r"(?m)^websub_hubs = .*$", f"websub_hubs = {hubs!r}".replace("'", '"'),
                          text)
    assert found == 1
    path = tmp_path / "feedsvc.toml"
    path.write_text(text)
    return path


def doctor(config: Path, database_url: str, redis_url: str):
    return run([str(BIN / "feedsvc"), "check-config", "--connect"],
               {"FEEDSVC_CONFIG": str(config), "DATABASE_URL": database_url,
                "REDIS_URL": redis_url})


def lines(done) -> dict[str, tuple[str, str]]:
    """{check: (ok/FAIL, detail)}, after asserting every line is one check."""
    assert "Traceback" not in done.stderr, done.stderr
    found = [re.fullmatch(r"(ok|FAIL) +(.+?): (.+)", line) for line in
             done.stdout.splitlines()]
    assert all(found), done.stdout
    return {m.group(2): (m.group(1), m.group(3)) for m in found}


def test_everything_answering_is_one_ok_line_each_with_versions(tmp_path, postgres_url,
                                                                redis_servers, hub):
    port = redis_servers.start("--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru")
    redis_url = f"redis://127.0.0.1:{port}/0"
    config = config_with(tmp_path, [hub])
    before = doctor(config, postgres_url, redis_url)
    checks = lines(before)
    assert before.returncode == 1
    assert checks["tables"][0] == "FAIL" and "feedsvc import" in checks["tables"][1]

    assert run([str(BIN / "feedsvc"), "import", str(DEMO_ARTICLES)],
               {"DATABASE_URL": postgres_url, "REDIS_URL": ""}).returncode == 0
    done = doctor(config, postgres_url, redis_url)
    checks = lines(done)
    assert done.returncode == 0, done.stdout
    assert {name for name, (verdict, _) in checks.items() if verdict == "ok"} == set(checks)
    assert re.match(r"postgresql \d+\.\d+", checks["store"][1]), checks
    assert re.match(r"redis \d+\.\d+\.\d+", checks["redis"][1]), checks
    assert checks["redis maxmemory-policy"][1].startswith("volatile-lru")
    assert checks[f"websub hub {hub}"][1] == "answers (HTTP 405)"


def test_unreachable_store_redis_and_hub_each_fail_and_exit_1(tmp_path):
    dead = free_port()
    config = config_with(tmp_path, [f"http://127.0.0.1:{dead}/hub"])
    done = doctor(config, f"postgresql://postgres@127.0.0.1:{dead}/test",
                  f"redis://127.0.0.1:{dead}/0")
    checks = lines(done)
    assert done.returncode == 1
    assert checks["store"][0] == checks["redis"][0] == "FAIL", checks
    assert checks[f"websub hub http://127.0.0.1:{dead}/hub"][0] == "FAIL"
    assert "refused" in checks["store"][1].lower(), checks


def test_a_redis_that_may_evict_the_refresh_state_fails_the_policy_check(tmp_path,
                                                                         redis_servers):
    port = redis_servers.start("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    done = doctor(config_with(tmp_path, []), f"sqlite:///{tmp_path / 'none.sqlite3'}",
                  f"redis://127.0.0.1:{port}/0")
    checks = lines(done)
    assert done.returncode == 1
    verdict, detail = checks["redis maxmemory-policy"]
    assert verdict == "FAIL" and "volatile-lru" in detail and "docs/deploy.md" in detail
    assert checks["store"][0] == "FAIL" and "feedsvc import" in checks["store"][1]
    assert not (tmp_path / "none.sqlite3").exists()  # checking made nothing
