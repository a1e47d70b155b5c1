"""Reads and writes of the source store; the only module that speaks SQL.

Writes (imports) go to the primary. The refresh's reads (`newest`, `changed_since`,
`published_between`, `next_published_after`, `section_names`) go to a read replica when one is
configured: a replica that lags is a late commit to the refresh, which its overlap window
(`scheduler.change_overlap`) covers, so the lag must stay well under it.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Column,
    DateTime,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from feedsvc.config import Settings
from feedsvc.model import (
    Article,
    ArticleStatus,
    ancestor_paths,
    label_feed,
    person,
    section_slug,
)
from feedsvc.store.errors import store_errors
from feedsvc.store.schema import article_labels, articles, feed_items, labels, metadata, sections

log = logging.getLogger(__name__)
# The newest articles whose tags and authors the site documents rank (Store.labels_in_use).
LABEL_WINDOW = 10_000
# What a write did to an article: a new id, a different document, or the same document again.
Written = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class ChangedArticle:
    """What the refresh needs to know of a change: which feeds it touches, and when it landed."""

    id: str
    section: str
    previous_section: str | None
    status: ArticleStatus
    changed_at: datetime
    published: datetime
    previous_published: datetime | None = None
    # Its tag and author feeds before and after the change (one it left must drop it too).
    label_feeds: frozenset[str] = frozenset()

    @property
    def feeds(self) -> set[str]:
        """The feeds this change can alter: its section's and, if it moved, its old one's."""
        paths = set(ancestor_paths(self.section))
        if self.previous_section is not None:
            paths.update(ancestor_paths(self.previous_section))
        return paths


def label_names(article: Article) -> dict[str, str]:
    """The tag and author feeds of `article`, each with the name it gives it."""
    named = {label_feed("tag", tag): tag for tag in article.tags}
    named.update((label_feed("author", author), person(author)[0]) for author in article.authors)
    return named


def _naive_utc(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None)


def _published_in(after: datetime, upto: datetime) -> tuple[ColumnElement[bool], ...]:
    """The site feed's membership rows published in (after, upto]: a range scan of its index."""
    return (feed_items.c.feed == "", feed_items.c.published > _naive_utc(after),
            feed_items.c.published <= _naive_utc(upto))


def _has_items(feed: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether the feed `feed` names has an article in it (published, or embargoed): a lookup
    on the feed's membership index."""
    return select(feed_items.c.article_id).where(feed_items.c.feed == feed).exists()


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC)


_A_MOMENT = timedelta(microseconds=1)  # turns "up to and including" into "before"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Connection pool and time limits (`store.*` settings). The pool is per process: size it
    so that processes x (pool_size + max_overflow) stays under the server's max_connections."""

    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: int = 30  # seconds to wait for a pooled connection
    # Seconds: PostgreSQL cancels a statement that runs longer; SQLite waits this long for a
    # lock. None (a Store made without settings: benchmarks, maintenance) sets no limit on
    # PostgreSQL and waits 10 s on SQLite.
    statement_timeout: int | None = None


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, object], None]:
    def on_connect(dbapi_conn: Any, _record: object) -> None:
        # WAL lets the web process read while an import writes; the busy timeout waits out
        # locks.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return on_connect


def _with_statement_timeout(url: URL, seconds: int) -> URL:
    """`url` with `-c statement_timeout` added to the connection's startup options (kept
    beside any the URL has, such as a search_path): no extra round trip per connection."""
    given = url.query.get("options", ())  # a tuple when the URL repeats the parameter
    options = " ".join([*((given,) if isinstance(given, str) else given),
                        f"-c statement_timeout={seconds * 1000}"])
    return url.update_query_dict({"options": options})


def make_engine(database_url: str, options: EngineOptions | None = None) -> Engine:
    """An engine for `database_url`; a SQLite file's folder is created when missing."""
    options = options or EngineOptions()
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas((options.statement_timeout or 10) * 1000))
        return engine
    if options.statement_timeout:
        url = _with_statement_timeout(url, options.statement_timeout)
    return create_engine(url,
                         pool_pre_ping=True, pool_size=options.pool_size,
                         max_overflow=options.max_overflow, pool_timeout=options.pool_timeout)


@contextmanager
def _connected(engine: Engine, *, transaction: bool = False) -> Iterator[Connection]:
    """A connection of `engine` (in one transaction when asked); whatever fails in the block
    comes out as StoreUnavailable."""
    with store_errors(), (engine.begin() if transaction else engine.connect()) as conn:
        yield conn


class Store:
    """Articles and sections in SQL. Tables are created on first use (on the primary)."""

    def __init__(self, database_url: str, replica_url: str | None = None,
                 options: EngineOptions | None = None):
        options = options or EngineOptions()
        self.engine = make_engine(database_url, options)
        self.reader = make_engine(replica_url, options) if replica_url else self.engine
        # Only the dialect in use is loaded: every module loaded delays a small import
        # (bench/import_startup.py).
        self._insert = importlib.import_module(
            f"sqlalchemy.dialects.{self.engine.dialect.name}").insert
        # Comparing names by code point, as Python does, whatever the database's collation.
        self._code_points = "BINARY" if self.engine.dialect.name == "sqlite" else "C"
        try:
            metadata.create_all(self.engine, checkfirst=True)
            self._add_missing_columns()
        except SQLAlchemyError as exc:
            # A web process starts and serves from the cache while the store is down; the
            # tables are created by the next process that starts with it up (any import).
            log.warning("store unreachable at start, tables not checked: %s",
                        getattr(exc, "orig", None) or exc)

    def _add_missing_columns(self) -> None:
        """Columns added since a store's tables were created (create_all adds tables only):
        `articles.previous_published`, empty until an article is written again."""
        present = {c["name"] for c in inspect(self.engine).get_columns("articles")}
        if "previous_published" not in present:
            column = Column("previous_published", DateTime, nullable=True)
            kind = column.type.compile(dialect=self.engine.dialect)
            with self.engine.begin() as conn:
                conn.exec_driver_sql(
                    f"ALTER TABLE articles ADD COLUMN previous_published {kind}")
            log.info("store: added the column articles.previous_published")

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store the settings describe: primary, replica, pool."""
        return cls(settings.database_url, settings.replica_url, EngineOptions(
            settings.pool_size, settings.pool_max_overflow, settings.pool_timeout,
            settings.statement_timeout))

    def close(self) -> None:
        self.engine.dispose()
        self.reader.dispose()

    # ---- writes -------------------------------------------------------------------------

    def upsert(self, batch: Sequence[Article]) -> None:
        """Insert or replace `batch` in one transaction: an id seen again is an update.

        Later duplicates within the batch win, as they would had they come in separate batches.
        """
        latest = {a.id: a for a in batch}
        if not latest:
            return
        named = {a.id: label_names(a) for a in latest.values()}
        changed_at = _naive_utc(datetime.now(UTC))
        rows = [
            {
                "id": a.id,
                "section": a.section_path,
                "status": a.status,
                "published": _naive_utc(a.published),
                "updated": _naive_utc(a.updated),
                "changed_at": changed_at,
                "document": json.dumps(a.to_document(), ensure_ascii=False),
            }
            for a in latest.values()
        ]
        memberships = [
            {"article_id": a.id, "feed": feed, "published": _naive_utc(a.published)}
            for a in latest.values()
            if a.status == "published"
            for feed in [*ancestor_paths(a.section_path), *named[a.id]]
        ]
        section_rows = {
            section_slug(a.section[: i + 1]): "/".join(a.section[: i + 1])
            for a in latest.values()
            for i in range(len(a.section))
        }
        if renamed := sorted(p for p in section_rows if p.endswith("_") and "/" not in p):
            log.info("sections %s are served at /feeds/%s/: the paths tag/ and author/ are the "
                     "tag and author feeds'", ", ".join(section_rows[p] for p in renamed),
                     "/, /feeds/".join(renamed))
        # One name per label whatever the order of imports: the least of the spellings seen.
        label_rows: dict[str, str] = {}
        for names in named.values():
            for feed, name in names.items():
                label_rows[feed] = min(name, label_rows.get(feed, name))
        upsert = self._insert(articles)
        upsert = upsert.on_conflict_do_update(
            index_elements=[articles.c.id],
            set_={
                **{c: upsert.excluded[c] for c in rows[0] if c != "id"},
                "previous_section": articles.c.section,  # the row's value before this write
                "previous_published": articles.c.published,
            },
        )
        new_sections = self._insert(sections).on_conflict_do_nothing(
            index_elements=[sections.c.path]
        )
        new_labels = self._insert(labels)
        new_labels = new_labels.on_conflict_do_update(
            index_elements=[labels.c.feed], set_={"name": new_labels.excluded.name},
            where=new_labels.excluded.name.collate(self._code_points)
            < labels.c.name.collate(self._code_points))
        labelled = self._insert(article_labels)
        labelled = labelled.on_conflict_do_update(
            index_elements=[article_labels.c.article_id],
            set_={"feeds": labelled.excluded.feeds, "previous_feeds": article_labels.c.feeds})
        with _connected(self.engine, transaction=True) as conn:
            conn.execute(upsert, rows)
            conn.execute(delete(feed_items).where(feed_items.c.article_id.in_(latest)))
            if memberships:
                conn.execute(insert(feed_items), memberships)
            conn.execute(new_sections, [{"path": p, "name": n} for p, n in section_rows.items()])
            conn.execute(labelled, [{"article_id": i, "feeds": "\n".join(sorted(names))}
                                    for i, names in named.items()])
            if label_rows:
                conn.execute(new_labels, [{"feed": f, "name": n}
                                          for f, n in sorted(label_rows.items())])

    def upsert_changed(self, batch: Sequence[Article]) -> dict[str, Written]:
        """`upsert` of the articles whose stored document differs (or that are new): an
        article sent again unchanged is not written, so its `changed_at` stays and no refresh
        renders anything for it. Later duplicates within the batch win, as in `upsert`.

        The comparison is a read before the write, not one transaction: a concurrent write of
        the same id in between orders as if it came after this one."""
        latest = {a.id: a for a in batch}
        if not latest:
            return {}
        documents = {i: json.dumps(a.to_document(), ensure_ascii=False)
                     for i, a in latest.items()}
        query = select(articles.c.id, articles.c.document).where(articles.c.id.in_(latest))
        with _connected(self.engine) as conn:
            stored: dict[str, str] = dict(conn.execute(query).all())
        self.upsert([a for i, a in latest.items() if stored.get(i) != documents[i]])
        return {i: "created" if i not in stored else
                "unchanged" if stored[i] == documents[i] else "updated" for i in latest}

    # ---- reads --------------------------------------------------------------------------

    def newest(self, feed: str, limit: int, now: datetime | None = None) -> list[Article]:
        """The newest `limit` published articles of section `feed` ('' = the site) and all its
        subsections, newest first; articles embargoed past `now` stay out."""
        cutoff = _naive_utc(now or datetime.now(UTC))
        query = (
            select(articles.c.document)
            .join(feed_items, feed_items.c.article_id == articles.c.id)
            .where(feed_items.c.feed == feed, feed_items.c.published <= cutoff)
            .order_by(feed_items.c.published.desc(), feed_items.c.article_id.desc())
            .limit(limit)
        )
        with _connected(self.reader) as conn:
            return [Article.from_document(json.loads(doc)) for (doc,) in conn.execute(query)]

    def published_in(self, feed: str, start: datetime, end: datetime,
                     now: datetime | None = None) -> list[Article]:
        """Every published article of `feed` published in [start, end) and not after `now`,
        newest first: a month's archive (no limit; one index range scan)."""
        upto = min(_naive_utc(end), _naive_utc(now or datetime.now(UTC)) + _A_MOMENT)
        query = (
            select(articles.c.document)
            .join(feed_items, feed_items.c.article_id == articles.c.id)
            .where(feed_items.c.feed == feed, feed_items.c.published >= _naive_utc(start),
                   feed_items.c.published < upto)
            .order_by(feed_items.c.published.desc(), feed_items.c.article_id.desc())
        )
        with _connected(self.reader) as conn:
            return [Article.from_document(json.loads(doc)) for (doc,) in conn.execute(query)]

    def ids_published_in(self, feed: str, start: datetime, end: datetime, limit: int,
                         now: datetime | None = None) -> list[str]:
        """The ids of at most `limit` published articles of `feed` published in [start, end)
        and not after `now`: whether a month holds more than some articles (index only)."""
        upto = min(_naive_utc(end), _naive_utc(now or datetime.now(UTC)) + _A_MOMENT)
        query = (
            select(feed_items.c.article_id)
            .where(feed_items.c.feed == feed, feed_items.c.published >= _naive_utc(start),
                   feed_items.c.published < upto)
            .limit(limit)
        )
        with _connected(self.reader) as conn:
            return list(conn.execute(query).scalars())

    def published_around(self, feed: str, start: datetime, end: datetime,
                         now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """The latest publication in `feed` before `start`, and the earliest from `end` up to
        `now`: the neighbouring months an archive links to. Two index lookups."""
        cutoff = _naive_utc(now or datetime.now(UTC))
        before = select(func.max(feed_items.c.published)).where(
            feed_items.c.feed == feed, feed_items.c.published < _naive_utc(start))
        after = select(func.min(feed_items.c.published)).where(
            feed_items.c.feed == feed, feed_items.c.published >= _naive_utc(end),
            feed_items.c.published <= cutoff)
        with _connected(self.reader) as conn:
            latest, earliest = conn.execute(before).scalar_one(), conn.execute(after).scalar_one()
        return (_aware(latest) if latest is not None else None,
                _aware(earliest) if earliest is not None else None)

    def changed_since(self, since: datetime, limit: int = 10_000) -> list[ChangedArticle]:
        """Articles written at or after `since`, oldest change first (an index range scan)."""
        query = (
            select(articles.c.id, articles.c.section, articles.c.previous_section,
                   articles.c.status, articles.c.changed_at, articles.c.published,
                   articles.c.previous_published, article_labels.c.feeds,
                   article_labels.c.previous_feeds)
            .outerjoin(article_labels, article_labels.c.article_id == articles.c.id)
            .where(articles.c.changed_at >= _naive_utc(since))
            .order_by(articles.c.changed_at, articles.c.id)
            .limit(limit)
        )
        with _connected(self.reader) as conn:
            return [
                ChangedArticle(id=i, section=s, previous_section=p, status=st,
                               changed_at=_aware(c), published=_aware(pub),
                               previous_published=_aware(prev) if prev is not None else None,
                               label_feeds=frozenset(filter(None, f"{now or ''}\n{before or ''}"
                                                                   .split("\n"))))
                for i, s, p, st, c, pub, prev, now, before in conn.execute(query)
            ]

    def published_between(self, after: datetime, upto: datetime) -> list[str]:
        """Sections of the articles whose publication time falls in (after, upto]: embargoed
        articles due in feeds now. A range scan of the site feed's membership index."""
        query = (
            select(articles.c.section)
            .join(feed_items, feed_items.c.article_id == articles.c.id)
            .where(*_published_in(after, upto))
            .distinct()
        )
        with _connected(self.reader) as conn:
            return list(conn.execute(query).scalars())

    def next_published_after(self, after: datetime) -> datetime | None:
        """The earliest publication time later than `after` (when the next embargo ends), or
        None when no article is embargoed past it. One lookup on the site feed's membership
        index."""
        query = select(func.min(feed_items.c.published)).where(
            feed_items.c.feed == "", feed_items.c.published > _naive_utc(after))
        with _connected(self.reader) as conn:
            found = conn.execute(query).scalar_one()
        return _aware(found) if found is not None else None

    def label_feeds_published_between(self, after: datetime, upto: datetime) -> set[str]:
        """The tag and author feeds of the articles whose publication time falls in
        (after, upto], as `published_between` finds them."""
        query = (
            select(article_labels.c.feeds)
            .join(feed_items, feed_items.c.article_id == article_labels.c.article_id)
            .where(*_published_in(after, upto))
        )
        with _connected(self.reader) as conn:
            return {feed for feeds in conn.execute(query).scalars()
                    for feed in feeds.split("\n") if feed}

    def label_names(self, feeds: Iterable[str]) -> dict[str, str]:
        """The name of each tag or author feed of `feeds` (`tag/<slug>`) that an article is in
        (published, or embargoed): a name stays in `labels` once seen, its feed only while an
        article is in it."""
        wanted = sorted(set(feeds))
        if not wanted:
            return {}
        with _connected(self.reader) as conn:
            return dict(conn.execute(select(labels.c.feed, labels.c.name)
                                     .where(labels.c.feed.in_(wanted), _has_items(labels.c.feed))
                                     ).all())

    def labels_in_use(self, kind: str, limit: int, window: int = LABEL_WINDOW,
                      now: datetime | None = None) -> dict[str, str]:
        """The `limit` tag or author feeds (`kind`) most used by the newest `window` published
        articles, most used first (then by slug), with their names: what the site is writing
        about now, read from the newest end of the site feed's index (counting every article's
        would read millions of rows)."""
        query = (
            select(article_labels.c.feeds)
            .join(feed_items, feed_items.c.article_id == article_labels.c.article_id)
            .where(feed_items.c.feed == "",
                   feed_items.c.published <= _naive_utc(now or datetime.now(UTC)))
            .order_by(feed_items.c.published.desc())
            .limit(window)
        )
        with _connected(self.reader) as conn:
            counts = Counter(feed for feeds in conn.execute(query).scalars()
                             for feed in feeds.split("\n") if feed.startswith(f"{kind}/"))
            top = sorted(counts, key=lambda feed: (-counts[feed], feed))[:limit]
            names = dict(conn.execute(select(labels.c.feed, labels.c.name)
                                      .where(labels.c.feed.in_(top))).all()) if top else {}
        return {feed: names[feed] for feed in top if feed in names}

    def newest_published(self, feeds: Iterable[str], now: datetime | None = None
                         ) -> dict[str, datetime]:
        """When each of `feeds` (section paths, '' = the site) last had an article published
        by `now`: its feed's age. One lookup on the membership index per feed; a feed without
        articles is left out."""
        cutoff = _naive_utc(now or datetime.now(UTC))
        newest = select(func.max(feed_items.c.published)).where(
            feed_items.c.feed == bindparam("feed"), feed_items.c.published <= cutoff)
        found = {}
        with _connected(self.reader) as conn:
            for feed in feeds:
                when = conn.execute(newest, {"feed": feed}).scalar_one()
                if when is not None:
                    found[feed] = _aware(when)
        return found

    def section_names(self) -> dict[str, str]:
        """Every section articles are filed in (published, or embargoed; or in a subsection of
        it): slug path -> display name ('News/Turkey'). A name stays in `sections` once seen, its
        section only while an article is in it. One index lookup per section."""
        with _connected(self.reader) as conn:
            return dict(conn.execute(select(sections.c.path, sections.c.name)
                                     .where(_has_items(sections.c.path))).all())

    def ping(self) -> bool:
        """Whether the store answers a trivial query (for /healthz; never scans)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def count(self) -> int:
        with _connected(self.engine) as conn:
            return conn.execute(select(func.count()).select_from(articles)).scalar_one()

    def get(self, article_id: str) -> Article | None:
        with _connected(self.engine) as conn:
            doc = conn.execute(
                select(articles.c.document).where(articles.c.id == article_id)
            ).scalar_one_or_none()
        return Article.from_document(json.loads(doc)) if doc else None
