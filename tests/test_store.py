"""The SQL source store, each test on a SQLite file and on a PostgreSQL schema of its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import free_port
from feedsvc.ingest.document import parse_article
from feedsvc.model import Article
from feedsvc.store import ChangedArticle, Store, StoreUnavailable

ORIGIN = "https://news.example"
TEHRAN = ZoneInfo("Asia/Tehran")
BASE = datetime(2017, 12, 11, 10, 0, tzinfo=UTC)
NOW = datetime(2020, 1, 1, tzinfo=UTC)  # after every BASE-relative date used below


def art(article_id: str, section: Any = "News / Turkey", *, hours: float = 0,
        **fields: Any) -> Article:
    """A validated article published `hours` after BASE."""
    doc = {
        "id": article_id,
        "url": f"/{article_id}",
        "section": section,
        "title": f"Title of {article_id}",
        "published": (BASE + timedelta(hours=hours)).isoformat(),
        **fields,
    }
    return parse_article(doc, origin=ORIGIN, timezone=TEHRAN)


def ids(articles: list[Article]) -> list[str]:
    return [a.id for a in articles]


@pytest.fixture
def db(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def test_upsert_then_newest_returns_the_same_articles(db):
    a = art("a", tags=["x"], images=[{"url": "/i.jpg", "width": 10}], language="en")
    db.upsert([a])
    assert db.newest("news/turkey", 10, now=NOW) == [a]
    assert db.get("a") == a
    assert db.get("missing") is None
    assert db.count() == 1


def test_empty_batch_is_a_no_op(db):
    db.upsert([])
    assert db.count() == 0
    assert db.newest("", 10, now=NOW) == []


def test_same_id_again_updates_instead_of_duplicating(db):
    db.upsert([art("a", hours=1), art("b")])
    db.upsert([art("a", hours=1, title="Corrected headline", updated="2017-12-12T00:00:00Z")])
    assert db.count() == 2
    newest = db.newest("", 10, now=NOW)
    assert ids(newest) == ["a", "b"]
    assert newest[0].title == "Corrected headline"
    assert newest[0].updated == datetime(2017, 12, 12, tzinfo=UTC)
    assert db.get("a").title == "Corrected headline"


def test_moving_an_article_leaves_the_old_sections_feeds(db):
    db.upsert([art("a", "News/Turkey"), art("b", "News/Turkey", hours=-1)])
    db.upsert([art("a", "World")])
    assert ids(db.newest("news/turkey", 10, now=NOW)) == ["b"]
    assert ids(db.newest("news", 10, now=NOW)) == ["b"]
    assert ids(db.newest("world", 10, now=NOW)) == ["a"]
    assert ids(db.newest("", 10, now=NOW)) == ["a", "b"]


def test_deleted_status_removes_the_article_from_every_feed(db):
    db.upsert([art("a"), art("b", "World")])
    db.upsert([art("a", status="deleted")])
    for feed in ("", "news", "news/turkey"):
        assert ids(db.newest(feed, 10, now=NOW)) == ([] if feed else ["b"]), feed
    assert db.get("a").status == "deleted"  # kept, so its removal reaches the feeds
    # Publishing it again brings it back.
    db.upsert([art("a")])
    assert ids(db.newest("news", 10, now=NOW)) == ["a"]


def test_a_section_feed_includes_subsections_but_not_siblings(db):
    db.upsert([
        art("turkey", "News / Turkey", hours=3),
        art("iran", ["News", "Iran"], hours=2),
        art("news", "News", hours=1),
        art("world", "World"),
        art("deep", "News/Turkey/Ankara", hours=-1),
    ])
    assert ids(db.newest("", 10, now=NOW)) == ["turkey", "iran", "news", "world", "deep"]
    assert ids(db.newest("news", 10, now=NOW)) == ["turkey", "iran", "news", "deep"]
    assert ids(db.newest("news/turkey", 10, now=NOW)) == ["turkey", "deep"]
    assert ids(db.newest("news/turkey/ankara", 10, now=NOW)) == ["deep"]
    assert ids(db.newest("news/iran", 10, now=NOW)) == ["iran"]
    assert ids(db.newest("world", 10, now=NOW)) == ["world"]
    assert db.newest("news/middle-east", 10, now=NOW) == []
    assert db.newest("new", 10, now=NOW) == []  # a prefix of a slug is not a section


def test_newest_first_and_limited(db):
    # Inserted out of order, with a publication tie broken by id (descending) for stability.
    db.upsert([art("c", hours=2), art("a", hours=5), art("e", hours=-3), art("b", hours=2),
               art("d", hours=4)])
    assert ids(db.newest("news/turkey", 10, now=NOW)) == ["a", "d", "c", "b", "e"]
    assert ids(db.newest("news/turkey", 3, now=NOW)) == ["a", "d", "c"]
    assert ids(db.newest("", 1, now=NOW)) == ["a"]


def test_ordering_uses_the_instant_not_the_written_offset(db):
    # 10:00+03:30 is 06:30Z, earlier than 08:00Z though it reads later.
    db.upsert([art("tehran", published="2017-12-11T10:00:00+03:30"),
               art("utc", published="2017-12-11T08:00:00Z")])
    assert ids(db.newest("", 10, now=NOW)) == ["utc", "tehran"]


def test_embargoed_articles_appear_once_now_passes_published(db):
    future = datetime.now(UTC) + timedelta(days=365)
    db.upsert([art("now"), art("later", published=future.isoformat())])
    assert ids(db.newest("news/turkey", 10)) == ["now"]  # the real clock
    assert ids(db.newest("", 10, now=future - timedelta(seconds=1))) == ["now"]
    assert ids(db.newest("", 10, now=future)) == ["later", "now"]
    assert ids(db.newest("news", 10, now=future + timedelta(days=1))) == ["later", "now"]


def test_embargo_compares_instants_across_offsets(db):
    db.upsert([art("a", published="2017-12-11T10:00:00+03:30")])  # 06:30Z
    just_before = datetime(2017, 12, 11, 6, 29, 59, tzinfo=UTC).astimezone(TEHRAN)
    assert db.newest("", 10, now=just_before) == []
    assert ids(db.newest("", 10, now=just_before + timedelta(seconds=1))) == ["a"]


def test_changed_since_lists_later_changes_oldest_first(db):
    db.upsert([art("old")])
    since = datetime.now(UTC)
    db.upsert([art("b", "World")])
    db.upsert([art("a", status="deleted")])
    db.upsert([art("c")])
    db.upsert([art("b", "World", title="again")])  # a second change moves it to the end
    after = datetime.now(UTC)

    changes = db.changed_since(since)
    assert [c.id for c in changes] == ["a", "c", "b"]
    assert changes[0] == ChangedArticle(id="a", section="news/turkey", previous_section=None,
                                        status="deleted", changed_at=changes[0].changed_at,
                                        published=BASE, previous_published=None)
    assert changes[0].feeds == {"", "news", "news/turkey"}
    assert changes[2].section == "world"
    stamps = [c.changed_at for c in changes]
    assert stamps == sorted(stamps)
    assert all(c.changed_at.tzinfo is not None and since <= c.changed_at <= after
               for c in changes)
    assert db.changed_since(after) == []
    assert [c.id for c in db.changed_since(since, limit=2)] == ["a", "c"]
    assert "old" in [c.id for c in db.changed_since(since - timedelta(hours=1))]


def test_duplicates_in_one_batch_last_wins(db):
    db.upsert([
        art("a", "World", title="first"),
        art("b"),
        art("a", "News/Iran", title="second"),
    ])
    assert db.count() == 2
    assert db.get("a").title == "second"
    assert db.newest("world", 10, now=NOW) == []
    assert [a.title for a in db.newest("news/iran", 10, now=NOW)] == ["second"]
    assert ids(db.newest("", 10, now=NOW)) == ["b", "a"]


def test_section_names_are_the_display_names_of_every_level(db):
    assert db.section_names() == {}
    db.upsert([art("a", "News / Turkey"), art("b", ["News", "Middle East"]), art("c", "World")])
    assert db.section_names() == {
        "news": "News",
        "news/turkey": "News/Turkey",
        "news/middle-east": "News/Middle East",
        "world": "World",
    }
    # A section no article is in any more is not listed (tests/test_refresh_containment.py),
    # but a known path keeps its first name: the next article filed there brings it back.
    db.upsert([art("a", "news / turkey", status="deleted")])
    assert "news/turkey" not in db.section_names()
    db.upsert([art("d", "news / turkey")])
    assert db.section_names()["news/turkey"] == "News/Turkey"


def test_tables_are_created_on_first_use_and_shared(database_url):
    first = Store(database_url)
    try:
        assert first.count() == 0
        first.upsert([art("a")])
    finally:
        first.close()
    second = Store(database_url)  # create_all again must keep the data
    try:
        assert second.count() == 1
        assert ids(second.newest("news", 10, now=NOW)) == ["a"]
        assert second.section_names() == {"news": "News", "news/turkey": "News/Turkey"}
    finally:
        second.close()


def test_a_move_remembers_the_previous_section(db):
    db.upsert([art("m", "News/Iran")])
    db.upsert([art("m", "World")])
    (change,) = db.changed_since(datetime(2000, 1, 1, tzinfo=UTC))
    assert (change.section, change.previous_section) == ("world", "news/iran")
    assert change.feeds == {"", "world", "news", "news/iran"}


def test_published_between_finds_embargoed_articles_coming_due(db):
    db.upsert([art("due", "News/Iran", published="2030-01-01T10:00:00Z"),
               art("later", "World", published="2030-01-02T10:00:00Z"),
               art("past", "World", published="2020-01-01T10:00:00Z")])
    start = datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert db.published_between(start, start + timedelta(hours=1)) == ["news/iran"]
    assert db.published_between(start + timedelta(hours=1), start + timedelta(hours=2)) == []


def test_next_published_after_is_when_the_next_embargo_ends(db):
    db.upsert([art("due", "News/Iran", published="2030-01-01T10:00:00.250000Z"),
               art("later", "World", published="2030-01-02T10:00:00Z"),
               art("deleted", "World", published="2030-01-01T09:30:00Z", status="deleted"),
               art("past", "World", published="2020-01-01T10:00:00Z")])
    start = datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert db.next_published_after(start) == datetime(2030, 1, 1, 10, 0, 0, 250000, tzinfo=UTC)
    assert db.next_published_after(datetime(2030, 1, 1, 10, 0, 0, 250000, tzinfo=UTC)) == \
        datetime(2030, 1, 2, 10, tzinfo=UTC)
    assert db.next_published_after(datetime(2030, 1, 2, 10, tzinfo=UTC)) is None


def test_a_store_that_does_not_answer_raises_its_own_store_unavailable(tmp_path):
    """Callers catch the store's `StoreUnavailable` (the driver's words), never SQLAlchemy's
    exceptions: only store/ knows SQLAlchemy. A PostgreSQL port nobody listens on."""
    store = Store(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    since = datetime(2026, 11, 20, tzinfo=UTC)
    calls = {
        "upsert": lambda: store.upsert([art("a")]),
        "newest": lambda: store.newest("", 10),
        "changed_since": lambda: store.changed_since(since),
        "published_between": lambda: store.published_between(since, since),
        "next_published_after": lambda: store.next_published_after(since),
        "section_names": store.section_names,
        "count": store.count,
        "get": lambda: store.get("a"),
    }
    for name, call in calls.items():
        with pytest.raises(StoreUnavailable) as raised:
            call()
        assert type(raised.value) is StoreUnavailable, name
        assert "refused" in str(raised.value).lower(), (name, str(raised.value))
        assert not str(raised.value).startswith("("), (name, str(raised.value))  # no class tag
    assert store.ping() is False
    store.close()
