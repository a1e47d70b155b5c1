"""`feedsvc import`: files in, validated articles upserted in batches, bad lines named.

A bad line never stops the rest: it is reported as `file:line: field: reason` and skipped.
A store that refuses a write stops the import (ImportFailed) with whole batches in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from feedsvc.config import Settings
from feedsvc.ingest import jsontext
from feedsvc.ingest.document import DocumentError, FieldError, Normalised, parse_article
from feedsvc.ingest.pagetext import looks_like_page_text, page_key, parse_page
from feedsvc.model import Article
from feedsvc.store import Store, StoreUnavailable

log = logging.getLogger(__name__)
BATCH_SIZE = 1000
# The longest valid article (a 2,000,000-character body, \u-escaped at 6 bytes each, with its
# other fields) fits well within this; a longer line is refused unread, so one line of a
# hostile or corrupt file cannot take the importer's memory.
MAX_LINE_BYTES = 32 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(slots=True)
class ImportReport:
    accepted: int = 0
    rejected: int = 0
    # (file, id) of each page-text file imported: the id to update or delete it by later
    pages: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.accepted} imported, {self.rejected} rejected"


class ImportFailed(Exception):
    """The store refused a batch (disk full, read-only file, store down). Each batch is one
    transaction, so the store holds the batches before it, whole, and nothing of the rest."""

    def __init__(self, report: ImportReport, cause: StoreUnavailable):
        super().__init__(
            f"the store refused a write ({cause}); "
            f"{report.accepted} articles were imported before it, in whole batches of "
            f"{BATCH_SIZE}; the batch that failed and the lines after it were not imported")
        self.report = report


@dataclass(frozen=True, slots=True)
class Rejection:
    where: str  # "file:line" or "file"
    errors: list[FieldError]


@dataclass(frozen=True, slots=True)
class PageArticle:
    """An article read from a page-text file (its id is reported: pages carry none)."""

    article: Article


class Importer:
    def __init__(self, settings: Settings, store: Store, *, errors: TextIO | None = None,
                 progress: bool | None = None):
        self.settings = settings
        self.store = store
        self.errors = sys.stderr if errors is None else errors  # bound per call, not at import
        self.progress = progress  # None: a bar only when stderr is a terminal

    def import_paths(self, paths: list[Path], *, published: str | None = None,
                     page_id: str | None = None) -> ImportReport:
        """Import `paths`; page-text files get `published` as their date and, for one page
        file, `page_id` as its id."""
        report = ImportReport()
        batch: list[Article] = []
        pages: list[tuple[str, str]] = []  # the batch's pages, reported once it is stored
        for path in paths:
            for result in self._read(path, published, page_id):
                if isinstance(result, Rejection):
                    report.rejected += 1
                    for error in result.errors:
                        print(f"{result.where}: {error}", file=self.errors)
                    continue
                if isinstance(result, PageArticle):
                    pages.append((str(path), result.article.id))
                    result = result.article
                batch.append(result)
                if len(batch) >= BATCH_SIZE:
                    self._flush(batch, pages, report)
        self._flush(batch, pages, report)
        return report  # the caller says it: once, where its user looks

    def _flush(self, batch: list[Article], pages: list[tuple[str, str]],
               report: ImportReport) -> None:
        if batch:
            try:
                self.store.upsert(batch)  # one transaction: the whole batch or none of it
            except StoreUnavailable as exc:
                raise ImportFailed(report, exc) from exc
            report.accepted += len(batch)
            report.pages += pages
            batch.clear()
            pages.clear()

    def _parse(self, doc: object, where: str) -> Article:
        return parse_logged(doc, self.settings, where)

    def _read(self, path: Path, published: str | None,
              page_id: str | None) -> Iterator[Article | PageArticle | Rejection]:
        try:
            is_page = path.suffix.lower() == ".txt" or (
                path.suffix.lower() not in (".jsonl", ".json", ".ndjson")
                and looks_like_page_text(_head(path))
            )
            if is_page:
                yield self._read_page(path, published, page_id or page_key(path.stem))
            elif page_id is not None:
                yield Rejection(str(path), [FieldError(
                    "(file)", "--id names a page-text file's article; JSON Lines carry ids")])
            else:
                yield from self._read_jsonl(path)
        except OSError as exc:
            yield Rejection(str(path), [FieldError("(file)", exc.strerror or str(exc))])

    def _read_page(self, path: Path, published: str | None,
                   page_id: str | None) -> PageArticle | Rejection:
        try:
            text = path.read_text(encoding="utf-8-sig")
            doc = parse_page(text, published=published, source=str(path), article_id=page_id)
            return PageArticle(self._parse(doc, str(path)))
        except UnicodeDecodeError as exc:
            return Rejection(str(path), [FieldError("(file)", f"not UTF-8: {exc.reason}")])
        except DocumentError as exc:
            return Rejection(str(path), exc.errors)

    def _read_jsonl(self, path: Path) -> Iterator[Article | Rejection]:
        size = os.path.getsize(path)
        with open(path, "rb") as fh, self._progress(path, size) as advance:
            for number, raw in enumerate(_lines(fh), start=1):
                where = f"{path}:{number}"
                if isinstance(raw, int):
                    advance(raw)
                    yield Rejection(where, [FieldError("(line)", f"is {raw} bytes long, the "
                                                                 f"limit is {MAX_LINE_BYTES}")])
                    continue
                advance(len(raw))
                if not raw.strip():
                    continue
                try:
                    doc = jsontext.loads(raw.rstrip())  # a line break would be the error's place
                except jsontext.NotJson as exc:
                    yield Rejection(where, [FieldError("(line)", str(exc))])
                    continue
                try:
                    yield self._parse(doc, where)
                except DocumentError as exc:
                    yield Rejection(where, exc.errors)

    @contextlib.contextmanager
    def _progress(self, path: Path, size: int) -> Iterator[Callable[[int], object]]:
        """`advance(bytes read)`; tqdm is loaded only when its bar is shown (every module
        loaded delays each small import: bench/import_startup.py)."""
        if self._bar_disabled(size):
            yield lambda _bytes: None
            return
        from tqdm import tqdm

        with tqdm(total=size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr,
                  mininterval=0.5) as bar:
            yield bar.update

    def _bar_disabled(self, size: int) -> bool:
        if self.progress is None:
            return not sys.stderr.isatty() or size < 1_000_000
        return not self.progress


def parse_logged(doc: object, settings: Settings, where: str) -> Article:
    """`doc` validated (DocumentError if it breaks the contract); each normalisation is logged
    as `where: field: change`. The importer and the ingest API (feedsvc.ingest.api) both read
    articles through it."""
    notes: list[Normalised] = []
    article = parse_article(doc, origin=settings.origin, timezone=settings.timezone, notes=notes)
    for note in notes:
        log.warning("%s: %s", where, note)
    return article


def _lines(fh: BinaryIO) -> Iterator[bytes | int]:
    """The lines of `fh`; for a line over MAX_LINE_BYTES only its length, read in chunks."""
    while raw := fh.readline(MAX_LINE_BYTES + 1):
        if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
            yield raw
            continue
        length = len(raw)
        while (chunk := fh.readline(_CHUNK)) and not chunk.endswith(b"\n"):
            length += len(chunk)
        yield length + len(chunk)


def _head(path: Path) -> str:
    with open(path, "rb") as fh:
        return fh.read(4096).decode("utf-8", errors="replace")
