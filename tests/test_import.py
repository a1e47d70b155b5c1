"""`feedsvc import` end to end: the click command, the installed console script, the real store."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import requests
from click.testing import CliRunner, Result

from conftest import DEMO_ARTICLES, ROOT, SAMPLE_PAGE
from feedcheck import valid_json, valid_xml
from feedsvc.cache import MemoryCache
from feedsvc.cli import main
from feedsvc.store import Store

LATER = datetime(2100, 1, 1, tzinfo=UTC)  # `now` for reads: nothing imported here is embargoed
SUMMARY = re.compile(r"^(\d+) imported, (\d+) rejected$", re.MULTILINE)
# Variables that would override the config file given with --config.
CLEAN_ENV: dict[str, str | None] = {"DATABASE_URL": None, "REDIS_URL": None,
                                    "FEEDSVC_CONFIG": None}


def line(article_id: str, **fields: Any) -> str:
    doc = {
        "id": article_id,
        "url": f"/news/turkey/{article_id}",
        "section": "News/Turkey",
        "title": f"Title of {article_id}",
        "published": "2017-12-11T10:00:00Z",
        **fields,
    }
    return json.dumps({k: v for k, v in doc.items() if v is not None})


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{text}\n" for text in lines), encoding="utf-8")
    return path


@pytest.fixture
def config_file(tmp_path: Path, sqlite_url: str) -> Path:
    """The repository's config with its store moved to this test's SQLite file."""
    text, replaced = re.subn(r"(?m)^database_url\s*=.*$", f'database_url = "{sqlite_url}"',
                             (ROOT / "config" / "feedsvc.toml").read_text(encoding="utf-8"))
    assert replaced == 1, "config/feedsvc.toml has no [store] database_url line to replace"
    path = tmp_path / "feedsvc.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def stored(sqlite_url: str) -> Iterator[Store]:
    """The store the imports of `config_file` write to, read back independently."""
    store = Store(sqlite_url)
    yield store
    store.close()


def invoke(args: list[str], env: dict[str, str | None]) -> Result:
    # catch_exceptions=False: a crash surfaces as its traceback, not as a plain exit code 1.
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def run_import(config_file: Path, *paths: Path | str, published: str | None = None) -> Result:
    args = ["--config", str(config_file), "import"]
    if published:
        args += ["--published", published]
    return invoke([*args, *map(str, paths)], CLEAN_ENV)


def summary(stderr: str) -> tuple[int, int]:
    found = SUMMARY.findall(stderr)
    assert len(found) == 1, f"expected one summary line in:\n{stderr}"
    accepted, rejected = found[0]
    return int(accepted), int(rejected)


def rejections(stderr: str, source: Path | str) -> list[tuple[str, str, str]]:
    """(where, field, reason) of every `<file>:<line>: <field>: <reason>` line about `source`."""
    out = []
    for text in stderr.splitlines():
        if text.startswith(f"{source}:"):
            where, field, reason = text[len(str(source)):].split(": ", 2)
            out.append((f"{source}{where}", field, reason))
    return out


def mixed_file(tmp_path: Path) -> Path:
    """Good lines around every kind of bad one; blank lines count in the numbering."""
    return write_jsonl(tmp_path / "mixed.jsonl", [
        line("good-1"),                                     # 1
        '{"id": "broken", "title": ',                       # 2  malformed JSON
        line("untitled", title=None),                       # 3  no title
        "",                                                 # 4  blank
        line("ftp", url="ftp://news.example/ftp"),          # 5  bad url scheme
        line("good-2", section=["World"]),                  # 6
        "   \t",                                            # 7  blank (whitespace)
        line("twice", title=None, published="tomorrow"),    # 8  two bad fields
        '["not", "an", "object"]',                          # 9
        line("good-3", published="2017-12-11T10:00:00"),    # 10
    ])


def check_mixed_report(stderr: str, path: Path) -> None:
    found = rejections(stderr, path)
    assert [(where, field) for where, field, _ in found] == [
        (f"{path}:2", "(line)"),
        (f"{path}:3", "title"),
        (f"{path}:5", "url"),
        (f"{path}:8", "title"),
        (f"{path}:8", "published"),
        (f"{path}:9", "(line)"),
    ], stderr
    reasons = [reason for _, _, reason in found]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "is required"
    assert "http(s)" in reasons[2]
    assert "'tomorrow' is not an RFC 3339 date-time" in reasons[4]
    assert reasons[5] == "must be a JSON object"
    assert summary(stderr) == (3, 5)


def test_bad_lines_are_named_and_good_lines_imported(tmp_path, config_file, stored):
    path = mixed_file(tmp_path)
    result = run_import(config_file, path)
    assert result.exit_code == 1
    assert result.stdout == ""
    check_mixed_report(result.stderr, path)
    assert stored.count() == 3
    # Newest first; good-1 and good-2 share a date (ties go by id, descending).
    assert [a.id for a in stored.newest("", 10, now=LATER)] == ["good-2", "good-1", "good-3"]
    # good-3 has no offset: read in the configured Asia/Tehran.
    assert stored.get("good-3").published == datetime(2017, 12, 11, 6, 30, tzinfo=UTC)
    assert stored.get("good-2").section == ("World",)


def test_all_good_file_exits_zero(tmp_path, config_file, stored):
    path = write_jsonl(tmp_path / "good.jsonl", [line("a"), line("b", section="World")])
    result = run_import(config_file, path)
    assert result.exit_code == 0, result.stderr
    assert summary(result.stderr) == (2, 0)
    assert rejections(result.stderr, path) == []
    assert stored.count() == 2


TOO_DEEP = "arrays and objects nest deeper than the limit of 64 levels"


@pytest.mark.parametrize(("bad", "reason"), [
    (line("big")[:-1] + ', "videos": [{"url": "/v", "duration": 1' + "0" * 4999 + "}]}",
     "a number is 5000 characters long, the limit is 100"),
    ("[" * 100_000 + "]" * 100_000, TOO_DEEP),
    (line("deep")[:-1] + ', "extra": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}",
     TOO_DEEP),
    (line("twice")[:-1] + ', "title": "A second title"}',
     "the key 'title' is given twice in one object"),
    (line("nan")[:-1] + ', "videos": [{"url": "/v", "duration": NaN}]}',
     "NaN is not a JSON value"),
], ids=["5,000-digit number", "100,000 nested arrays", "100,000 nested objects",
        "a key twice", "NaN"])
def test_a_line_beyond_what_json_is_read_to_is_one_rejection_and_the_rest_imported(
        tmp_path, config_file, stored, bad, reason):
    """Python's json module raised on these (ValueError, RecursionError) and the import
    stopped with a traceback, or took the line (the last of two keys)."""
    path = write_jsonl(tmp_path / "bounds.jsonl", [line("before"), bad, line("after")])
    result = run_import(config_file, path)
    assert result.exit_code == 1
    assert rejections(result.stderr, path) == [(f"{path}:2", "(line)", reason)]
    assert summary(result.stderr) == (2, 1)
    assert sorted(a.id for a in stored.newest("", 10, now=LATER)) == ["after", "before"]


@pytest.mark.parametrize(("duration", "reason"), [
    ('"12"', "is a string, give a number of seconds"),
    ("1e300", "1e+300 is over the limit of 9,007,199,254,740,991 seconds"),
    ("-5", "-5 is negative, give 0 or more seconds"),
    ("true", "is true, give a number of seconds"),
    ("[90]", "is a list, give a number of seconds"),
])
def test_a_video_duration_that_is_no_number_of_seconds_says_what_is_wrong(
        tmp_path, config_file, stored, duration, reason):
    path = write_jsonl(tmp_path / "video.jsonl", [
        line("video")[:-1] + f', "videos": [{{"url": "/v.mp4", "duration": {duration}}}]}}',
        line("after", videos=[{"url": "/v.mp4", "duration": 90.4}])])
    result = run_import(config_file, path)
    assert rejections(result.stderr, path) == [(f"{path}:1", "videos[0].duration", reason)]
    assert summary(result.stderr) == (1, 1)
    assert stored.get("after").videos[0].duration == 90


def test_reimporting_an_updated_line_updates(tmp_path, config_file, stored):
    path = write_jsonl(tmp_path / "a.jsonl", [line("a"), line("b")])
    assert run_import(config_file, path).exit_code == 0
    write_jsonl(path, [line("a", title="Corrected", section="World")])
    result = run_import(config_file, path)
    assert result.exit_code == 0, result.stderr
    assert summary(result.stderr) == (1, 0)
    assert stored.count() == 2
    assert stored.get("a").title == "Corrected"
    assert [a.id for a in stored.newest("news/turkey", 10, now=LATER)] == ["b"]
    assert [a.title for a in stored.newest("world", 10, now=LATER)] == ["Corrected"]


def test_sample_page_without_published_is_rejected(config_file, stored):
    result = run_import(config_file, SAMPLE_PAGE)
    assert result.exit_code == 1
    [(where, field, reason)] = rejections(result.stderr, SAMPLE_PAGE)
    assert (where, field) == (str(SAMPLE_PAGE), "published")
    assert "--published" in reason
    assert summary(result.stderr) == (0, 1)
    assert stored.count() == 0


def test_sample_page_with_published_is_imported_once(config_file, stored):
    for _ in range(2):
        result = run_import(config_file, SAMPLE_PAGE, published="2017-12-11T10:00:00+03:00")
        assert result.exit_code == 0, result.stderr
        assert summary(result.stderr) == (1, 0)
    assert stored.count() == 1
    [article] = stored.newest("news/turkey", 10, now=LATER)
    assert article.section == ("News", "Turkey")
    assert article.title == "Putin, Erdogan warn over escalating al-Quds tensions"
    assert article.published == datetime(2017, 12, 11, 7, 0, tzinfo=UTC)
    assert article.url.startswith("https://news.example/news/turkey/")
    assert [a.id for a in stored.newest("news", 10, now=LATER)] == [article.id]
    assert stored.section_names() == {"news": "News", "news/turkey": "News/Turkey"}


def test_nonexistent_path_is_named_and_the_rest_imported(tmp_path, config_file, stored):
    missing = tmp_path / "missing.jsonl"
    good = write_jsonl(tmp_path / "good.jsonl", [line("a")])
    result = run_import(config_file, missing, good)
    assert result.exit_code == 1
    [(where, field, reason)] = rejections(result.stderr, missing)
    assert (where, field) == (str(missing), "(file)")
    assert "No such file" in reason
    assert summary(result.stderr) == (1, 1)
    assert stored.count() == 1


@pytest.mark.parametrize("name", ["missing.txt", "missing"])
def test_nonexistent_page_or_unknown_suffix_is_named(tmp_path, config_file, name):
    missing = tmp_path / name
    result = run_import(config_file, missing)
    assert result.exit_code == 1
    assert [field for _, field, _ in rejections(result.stderr, missing)] == ["(file)"]
    assert summary(result.stderr) == (0, 1)


def test_demo_articles_are_all_accepted(config_file, stored):
    docs = [json.loads(text) for text in DEMO_ARTICLES.read_text(encoding="utf-8").splitlines()
            if text.strip()]
    expected = len(docs)
    live = sum(1 for doc in docs if doc.get("status", "published") == "published")
    assert expected > live > 0  # the demo data includes deleted articles
    result = run_import(config_file, DEMO_ARTICLES)
    assert result.exit_code == 0, result.stderr
    assert rejections(result.stderr, DEMO_ARTICLES) == []
    assert summary(result.stderr) == (expected, 0)
    assert stored.count() == expected
    assert len(stored.newest("", expected, now=LATER)) == live


def test_import_into_postgres_via_database_url(tmp_path, postgres_url):
    path = mixed_file(tmp_path)
    env = {**CLEAN_ENV, "DATABASE_URL": postgres_url}
    result = invoke(["--config", str(ROOT / "config" / "feedsvc.toml"), "import", str(path)],
                    env)
    assert result.exit_code == 1
    check_mixed_report(result.stderr, path)
    write_jsonl(path, [line("good-1", title="Updated on PostgreSQL")])
    assert invoke(["--config", str(ROOT / "config" / "feedsvc.toml"), "import", str(path)],
                  env).exit_code == 0
    store = Store(postgres_url)
    try:
        assert store.count() == 3
        assert store.get("good-1").title == "Updated on PostgreSQL"
        assert [a.id for a in store.newest("news", 10, now=LATER)] == ["good-1", "good-3"]
    finally:
        store.close()


def feedsvc_script() -> str:
    beside = Path(sys.executable).parent / "feedsvc"
    found = str(beside) if beside.is_file() else shutil.which("feedsvc")
    assert found, "the feedsvc console script is not installed (pip install -e .)"
    return found


@pytest.mark.slow  # runs the console script
def test_console_script_reports_bad_lines_and_exit_code(tmp_path, config_file, stored):
    path = mixed_file(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    proc = subprocess.run(
        [feedsvc_script(), "--config", str(config_file), "import", str(path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    check_mixed_report(proc.stderr, path)
    assert "Traceback" not in proc.stderr
    assert stored.count() == 3


PAGE_KEY = "780554462f59e82e"
PAGE_PUBLISHED = "2017-12-11T10:00:00+03:00"


def page_ids(stdout: str) -> dict[str, str]:
    """path -> id of every `<id> <path>` line `feedsvc import` prints for the pages it imported."""
    return {path: page_id for page_id, path in (text.split(" ", 1) for text in
                                                 stdout.splitlines())}


def served_turkey_items(settings, live_server_factory) -> dict[str, list[tuple[str, str]]]:
    """(id, text) of every item of the News/Turkey feed in RSS, Atom and JSON Feed, fetched
    over HTTP from a server on the store just written (a fresh one: no cached copies)."""
    store = Store(settings.database_url)
    try:
        server = live_server_factory(settings, store, MemoryCache())
        out = {}
        for filename in ("rss.xml", "atom.xml"):
            body = requests.get(f"{server.url}/feeds/news/turkey/{filename}", timeout=30).content
            valid_xml(filename, body)
            out[filename] = [(e.id, e.content[0].value) for e in feedparser.parse(body).entries]
        body = requests.get(f"{server.url}/feeds/news/turkey/feed.json", timeout=30).content
        out["feed.json"] = [(i["id"], i["content_html"])
                            for i in valid_json("feed.json", body)["items"]]
        return out
    finally:
        store.close()


def test_page_file_named_with_a_key_keeps_it_as_id_and_an_edited_page_updates_the_item(
    tmp_path, config_file, stored, settings, live_server_factory
):
    page = tmp_path / f"000_{PAGE_KEY}.txt"
    page.write_text(SAMPLE_PAGE.read_text(encoding="utf-8"), encoding="utf-8")
    first = run_import(config_file, page, published=PAGE_PUBLISHED)
    assert first.exit_code == 0, first.stderr
    assert page_ids(first.stdout) == {str(page): PAGE_KEY}
    assert stored.get(PAGE_KEY) is not None
    before = served_turkey_items(settings, live_server_factory)

    page.write_text(page.read_text(encoding="utf-8").replace(
        "will be finalized by the end of the week", "was finalized on Friday"), encoding="utf-8")
    second = run_import(config_file, page, published=PAGE_PUBLISHED)
    assert second.exit_code == 0, second.stderr
    assert page_ids(second.stdout) == {str(page): PAGE_KEY}
    assert stored.count() == 1
    after = served_turkey_items(settings, live_server_factory)
    for filename, items in after.items():
        [(item_id, text)] = items
        assert [item_id] == [i for i, _ in before[filename]], filename
        assert "was finalized on Friday" in text and "end of the week" not in text, filename


def test_import_id_names_a_page_and_an_edited_page_updates_the_item(
    tmp_path, config_file, stored, settings, live_server_factory
):
    page = tmp_path / "turkey.txt"
    page.write_text(SAMPLE_PAGE.read_text(encoding="utf-8"), encoding="utf-8")
    args = ["--config", str(config_file), "import", "--id", "s400-deal",
            "--published", PAGE_PUBLISHED, str(page)]
    first = invoke(args, CLEAN_ENV)
    assert first.exit_code == 0, first.stderr
    assert page_ids(first.stdout) == {str(page): "s400-deal"}
    page.write_text(page.read_text(encoding="utf-8").replace("Putin noted", "Putin said"),
                    encoding="utf-8")
    second = invoke(args, CLEAN_ENV)
    assert second.exit_code == 0, second.stderr
    assert page_ids(second.stdout) == {str(page): "s400-deal"}
    assert stored.count() == 1
    for filename, items in served_turkey_items(settings, live_server_factory).items():
        [(_, text)] = items
        assert "Putin said" in text and "Putin noted" not in text, filename


def test_import_id_takes_one_page_file(tmp_path, config_file, stored):
    page = tmp_path / "turkey.txt"
    page.write_text(SAMPLE_PAGE.read_text(encoding="utf-8"), encoding="utf-8")
    lines = write_jsonl(tmp_path / "a.jsonl", [line("a")])
    two = invoke(["--config", str(config_file), "import", "--id", "x", "--published",
                  PAGE_PUBLISHED, str(page), str(page)], CLEAN_ENV)
    assert two.exit_code == 2 and "--id" in two.stderr and "one page file" in two.stderr
    jsonl = invoke(["--config", str(config_file), "import", "--id", "x", str(lines)], CLEAN_ENV)
    assert jsonl.exit_code == 1
    [(where, field, reason)] = rejections(jsonl.stderr, lines)
    assert (where, field) == (str(lines), "(file)") and "--id" in reason
    assert stored.count() == 0


def test_pages_without_a_key_keep_the_content_id_and_it_is_printed(config_file, stored):
    result = run_import(config_file, SAMPLE_PAGE, published=PAGE_PUBLISHED)
    assert result.exit_code == 0, result.stderr
    [(path, page_id)] = page_ids(result.stdout).items()
    assert path == str(SAMPLE_PAGE) and page_id.startswith("page-")
    assert stored.get(page_id) is not None
