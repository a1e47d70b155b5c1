"""bench/article_generator.py, the benchmarks' deterministic article source, still writes the
demo's committed sample (feedsvc/demo/articles.jsonl) byte for byte with its defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from article_generator import DEFAULT_OUT, main
from conftest import DEMO_ARTICLES


def test_the_generator_rewrites_the_committed_demo_articles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert DEFAULT_OUT.resolve() == DEMO_ARTICLES.resolve()
    written = tmp_path / "articles.jsonl"
    main(["--out", str(written)])
    assert capsys.readouterr().out == f"wrote 200 articles to {written}\n"
    assert written.read_bytes() == DEMO_ARTICLES.read_bytes()
