"""`feedsvc import` into a SQLite store that cannot take the write: a read-only file system, a
full one. Real file systems (tmpfs mounts) stand in for the disk."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DEMO_ARTICLES
from feedsvc.ingest.importer import BATCH_SIZE
from processes import BIN, article_line, run


@pytest.fixture
def store_on_tmpfs(tmp_path: Path) -> Iterator:
    """`store_on_tmpfs(size)`: a SQLite store holding the demo articles, moved onto a tmpfs
    of `size` mounted for this test; yields the store's path."""
    mount = tmp_path / "fs"
    mount.mkdir()

    def make(size: str) -> Path:
        seed = tmp_path / "seed.sqlite3"
        done = run([str(BIN / "feedsvc"), "import", str(DEMO_ARTICLES)], _env(seed))
        assert done.returncode == 0, done.stderr
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(mount)], capture_output=True, text=True)
        assert done.returncode == 0, f"cannot mount a tmpfs (needs root): {done.stderr}"
        shutil.copy(seed, mount)
        return mount / seed.name

    yield make
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _env(store: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{store}", "REDIS_URL": ""}


def _ids(store: Path, scratch: Path) -> set[str]:
    """The article ids the store holds, read from a copy (with its write-ahead log)."""
    scratch.mkdir()
    for path in store.parent.glob(store.name + "*"):
        shutil.copy(path, scratch)
    with sqlite3.connect(scratch / store.name) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM articles")}


def _import(store: Path, tmp_path: Path, count: int) -> tuple[subprocess.CompletedProcess,
                                                                list[str]]:
    ids = [f"fault-{n:05d}" for n in range(count)]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(article_line(i, f"Article {i}") for i in ids))
    return run([str(BIN / "feedsvc"), "import", str(batch)], _env(store)), ids


def test_import_into_a_read_only_store_fails_clearly_and_changes_nothing(store_on_tmpfs,
                                                                         tmp_path):
    store = store_on_tmpfs("16m")
    before = _ids(store, tmp_path / "before")
    subprocess.run(["mount", "-o", "remount,ro", str(store.parent)], check=True)
    done, _ = _import(store, tmp_path, 2 * BATCH_SIZE)
    assert done.returncode == 1
    assert "Error: import stopped: the store refused a write (" in done.stderr, done.stderr
    assert "0 articles were imported" in done.stderr
    assert done.stderr.rstrip().endswith("were not imported"), done.stderr  # a whole sentence
    assert "Traceback" not in done.stderr
    assert _ids(store, tmp_path / "after") == before


def test_import_onto_a_full_disk_keeps_whole_batches_only(store_on_tmpfs, tmp_path):
    """The store ends with exactly the batches committed before the disk filled up — the
    first k of the file, whole — and none of the one that failed or those after it."""
    store = store_on_tmpfs("4m")
    before = _ids(store, tmp_path / "before")
    done, ids = _import(store, tmp_path, 20 * BATCH_SIZE)
    assert done.returncode == 1
    assert "the store refused a write (database or disk is full)" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    added = _ids(store, tmp_path / "after") - before
    batches = len(added) // BATCH_SIZE
    assert 1 <= batches < 20 and len(added) == batches * BATCH_SIZE
    assert added == set(ids[: len(added)])
    assert f"{len(added)} articles were imported before it" in done.stderr
