"""What a user meets in the first hour with the `feedsvc` command, over the installed script."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT
from processes import BIN, article_line, run

# The variables that would point a command elsewhere than the test's own store.
OWN_STORE = {"REDIS_URL": "", "FEEDSVC_CONFIG": str(ROOT / "config" / "feedsvc.toml")}


def feedsvc(tmp_path: Path, *args: str):
    return run([str(BIN / "feedsvc"), *args],
               {**OWN_STORE, "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}"})


def test_demo_refuses_an_impossible_port_in_one_line_before_loading_data(tmp_path):
    done = feedsvc(tmp_path, "demo", "--port", "99999")
    assert done.returncode != 0
    assert done.stderr.splitlines() == ["Error: --port 99999 is not a TCP port (1-65535)"]


def test_serve_refuses_an_impossible_port_in_one_line(tmp_path):
    done = feedsvc(tmp_path, "serve", "--port", "0")
    assert done.returncode != 0
    assert done.stderr.splitlines() == ["Error: --port 0 is not a TCP port (1-65535)"]


def test_import_prints_its_summary_once(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(article_line("only-one", "The only article"))
    done = feedsvc(tmp_path, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).count("1 imported, 0 rejected") == 1, done.stderr


def test_a_truncated_json_line_is_reported_where_the_line_ends(tmp_path):
    whole = article_line("cut", "Cut short").rstrip("\n")
    cut_in_value, cut_after_value = whole[:whole.index('"section"') - 2], whole[:40]
    path = tmp_path / "cut.jsonl"
    path.write_text(f"{cut_in_value}\n{cut_after_value}\n{whole}\n")
    done = feedsvc(tmp_path, "import", str(path))
    assert done.returncode == 1
    reasons = dict(re.findall(rf"^{re.escape(str(path))}:(\d+): \(line\): (.*)$", done.stderr,
                              re.MULTILINE))
    assert reasons.keys() == {"1", "2"}, done.stderr
    assert reasons["1"].startswith(f"not JSON: the line ends at column {len(cut_in_value)} "
                                   "before the JSON does"), reasons
    assert re.match(r"not JSON: .* column (\d+)", reasons["2"]), reasons
    assert "column 1 " not in reasons["2"] + " " and "at at" not in reasons["2"], reasons
    assert "1 imported, 2 rejected" in done.stderr
