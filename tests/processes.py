"""Running the service's real processes in tests, as an operator runs them: the `feedsvc`
commands, the Procfile's `web` and `scheduler`, each with its output in a file (not a pipe that
could fill up) and stopped after the test."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from conftest import ROOT, free_port
from feedsvc.cache import RedisCache

BIN = Path(sys.executable).parent
PROCFILE = {name: shlex.split(command) for name, command in (
    line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines())}


def wait_until_serving(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def run(args: list[str], env: dict[str, str], **options) -> subprocess.CompletedProcess:
    """A one-shot command (`feedsvc import`, `feedsvc refresh`), its output captured."""
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120, **options)


def run_to_exit(args: list[str], env: dict[str, str],
                seconds: float = 20) -> subprocess.CompletedProcess:
    """A command that must end by itself (a start that fails): its output captured; fails,
    after killing it and whatever it started, if it is still running after `seconds`."""
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"still running after {seconds}s; stderr ends: "
                             f"{stderr[-2000:]}") from None
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def write_config(tmp_path: Path, redis_prefix: str, *, reach: bool = False,
                 **keys: int) -> Path:
    """The repository's config with a key prefix of the test's own and integer keys replaced
    (`refresh_interval=1`, `leader_lease=2`, ...). Reach counting off unless `reach`: a web
    process writes its last counts as it exits, which may be after the test's keys were
    deleted."""
    text = (ROOT / "config" / "feedsvc.toml").read_text().replace(
        'key_prefix = "feedsvc:"', f'key_prefix = "{redis_prefix}"')
    text, found = re.subn(r"^enabled = true$", f"enabled = {str(reach).lower()}", text,
                          flags=re.MULTILINE)
    assert found == 1, "[reach] enabled"
    for key, value in keys.items():
        text, found = re.subn(rf"^{key} = \d+$", f"{key} = {value}", text, flags=re.MULTILINE)
        assert found == 1, key
    config = tmp_path / "feedsvc.toml"
    config.write_text(text)
    return config


def enable_api(config: Path, token: str, name: str = "cms") -> None:
    """Turn the ingest API on in `config` (written by write_config) with one token."""
    from feedsvc.ingest.tokens import hash_token

    text = config.read_text()
    assert "tokens = []" in text
    config.write_text(text.replace("tokens = []",
                                   f'tokens = [{{name = "{name}", hash = "{hash_token(token)}"}}]'))


class Spawner:
    """Starts long-running processes; `stop_all()` terminates them (kills after 10 s)."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.processes: list[subprocess.Popen] = []

    def __call__(self, args: list[str], env: dict[str, str],
                 cwd: Path = ROOT) -> subprocess.Popen:
        with open(self.log_path(len(self.processes)), "wb") as log:
            process = subprocess.Popen(args, cwd=cwd, env={**os.environ, **env},
                                       stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def log_path(self, index: int) -> Path:
        return self.logs / f"process-{index}.log"

    def log(self, process: subprocess.Popen) -> str:
        return self.log_path(self.processes.index(process)).read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def article_line(article_id: str, title: str, section: str = "News/Turkey",
                 published: str = "2026-11-24T10:00:00Z") -> str:
    """One article as a JSON Lines line, newer than every demo article."""
    slug = section.lower().replace(" ", "-")
    return json.dumps({"id": article_id, "url": f"/{slug}/{article_id}", "section": section,
                       "title": title, "published": published}) + "\n"


@pytest.fixture
def spawn(tmp_path: Path, redis_prefix: str) -> Iterator[Spawner]:
    """A Spawner whose processes are stopped after the test. It asks for the test's
    `redis_prefix` so that its processes stop before the prefix's keys are deleted, whatever
    order the test names the two in (the other order let a scheduler publish after cleanup)."""
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.stop_all()


@dataclass
class Service:
    """The service deployed against one Redis (any topology `REDIS_URL` names) and one store:
    `feedsvc` commands, web processes (the Procfile's, granian) and schedulers."""

    spawn: Spawner
    env: dict[str, str]
    cache: RedisCache  # the same Redis, as the test reads it
    webs: dict[int, subprocess.Popen] = field(default_factory=dict)  # by port
    schedulers: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def deploy(cls, spawn: Spawner, tmp_path: Path, *, redis_url: str, database_url: str,
               prefix: str, **keys: int) -> Service:
        config = write_config(tmp_path, prefix, **keys)
        env = {"FEEDSVC_CONFIG": str(config), "REDIS_URL": redis_url, "HOST": "127.0.0.1",
               "DATABASE_URL": database_url, "PATH": f"{BIN}:{os.environ['PATH']}"}
        return cls(spawn, env, RedisCache.from_url(redis_url, prefix))

    def feedsvc(self, *args: str) -> subprocess.CompletedProcess:
        return run([str(BIN / "feedsvc"), *args], self.env)

    def import_(self, path: Path) -> None:
        done = self.feedsvc("import", str(path))
        assert done.returncode == 0, done.stderr

    def web(self, workers: int = 1) -> int:
        """Start a web process on a port of its own; its port once it serves."""
        port = free_port()
        self.webs[port] = self.spawn(PROCFILE["web"], {**self.env, "PORT": str(port),
                                                       "WEB_CONCURRENCY": str(workers)})
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", self.webs[port])
        return port

    def scheduler(self) -> subprocess.Popen:
        self.schedulers.append(self.spawn(PROCFILE["scheduler"], self.env))
        return self.schedulers[-1]

    def wait_for_refresh(self, seconds: float = 30) -> dict:
        """The record of the first refresh (a scheduler's start-up rebuild)."""
        deadline = time.monotonic() + seconds
        while (state := self.cache.get_state("refresh")) is None:
            assert time.monotonic() < deadline, f"no refresh recorded within {seconds}s"
            time.sleep(0.1)
        return json.loads(state)
