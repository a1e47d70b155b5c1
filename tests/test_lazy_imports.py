"""`feedsvc import` loads only what it needs: a scheduled import of one article pays for every
module loaded at start (bench/import_startup.py measures it). The command module and what the
import command runs must not pull in the web, rendering, cache or other dialects' modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # starts a Python process per command

# Loaded by other commands only: the web (flask, granian), rendering (feedgen, lxml, nh3),
# the cache (redis), the scheduler (apscheduler), PostgreSQL (psycopg and SQLAlchemy's dialect),
# the progress bar (tqdm, shown only for big files on a terminal).
NOT_FOR_IMPORT = ["flask", "werkzeug", "granian", "gunicorn", "feedgen", "lxml", "nh3", "redis",
                  "apscheduler", "psycopg", "sqlalchemy.dialects.postgresql", "tqdm",
                  "prometheus_client", "feedsvc.render", "feedsvc.web", "feedsvc.cache",
                  "feedsvc.refresh"]


def loaded_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:///:memory:"},
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_command_module_loads_no_heavy_module():
    loaded = loaded_after("import feedsvc.cli")
    assert not {name for name in [*NOT_FOR_IMPORT, "sqlalchemy"] if name in loaded}


def test_an_import_of_one_line_loads_only_what_it_needs(tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text('{"id": "a", "url": "/a", "section": "News", "title": "A", '
                   '"published": "2026-11-20T10:00:00Z"}\n')
    loaded = loaded_after(
        "from feedsvc.cli import main\n"
        f"try:\n    main(['import', {str(one)!r}])\nexcept SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code"
    )
    assert "sqlalchemy" in loaded  # it did import, into the store
    assert not {name for name in NOT_FOR_IMPORT if name in loaded}


def test_config_and_the_cache_load_neither_each_other_nor_redis_for_the_grammar():
    """The Redis URL grammar lives below both (feedsvc.redis_client): checking a configuration
    loads no cache and no redis client library, and the cache loads no configuration."""
    with_config = loaded_after("import feedsvc.config; feedsvc.config._redis_url("
                               "'redis+sentinel://h:26379/main')")
    assert not {name for name in with_config if name.startswith(("feedsvc.cache", "redis"))}
    with_cache = loaded_after("import feedsvc.cache")
    assert "feedsvc.cache" in with_cache
    assert "feedsvc.config" not in with_cache
