"""The repository stands alone: what the tests validate against (schemas, the sample page, the
demo data) is inside it, and nothing in it names a path outside it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # starts pytest in a copy of the repository

# The tests that read files of the repository: the schemas (feedcheck, through the rendered
# feeds), the sample page and the demo articles.
READERS = ["tests/test_pagetext.py", "tests/test_jsonfeed_roku.py", "tests/test_render.py"]

# Names of places outside the repository, spelled in pieces so this file does not match itself.
OUTSIDE = re.compile("|".join([
    r"\.\./" + "shared",
    "FEEDSVC_" + "SHARED",
    "design" + r"\.md",
    "design" + " §",
    "/work" + "/",
]))


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def test_no_tracked_file_names_a_path_outside_the_repository():
    found = []
    for name in tracked_files():
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        found += [f"{name}:{text.count(chr(10), 0, hit.start()) + 1}: {hit.group()}"
                  for hit in OUTSIDE.finditer(text)]
    assert not found, "\n".join(found)


def test_the_tests_that_read_repository_files_pass_from_a_lone_copy(tmp_path):
    """A copy of the tracked files in a directory with no siblings: nothing there to lean on."""
    lone = tmp_path / "clone"
    for name in tracked_files():
        (lone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, lone / name)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clone"]
    env = {**os.environ, "PYTHONPATH": str(lone)}
    env.pop("FEEDSVC_CONFIG", None)
    where = subprocess.run([sys.executable, "-c", "import feedsvc; print(feedsvc.__file__)"],
                           cwd=lone, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(lone), where.stdout  # the copy's code
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", *READERS],
        cwd=lone, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
