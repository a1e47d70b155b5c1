"""Tag and author slugs, and the store's tag and author feeds (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from test_store import BASE, NOW, art, ids

from feedsvc.model import label_feed, label_slug
from feedsvc.store import Store


@pytest.fixture
def db(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


@pytest.mark.parametrize(("name", "slug"), [
    ("Turkey", "turkey"),
    ("  Middle   East ", "middle-east"),
    ("middle-east", "middle-east"),
    ("خاورمیانه", "خاورمیانه"),  # Persian, as written
    ("انتخابات ریاست‌جمهوری", "انتخابات-ریاست\u200cجمهوری"),  # the ZWNJ is kept
    ("الشرق الأوسط", "الشرق-الأوسط"),
    ("हिन्दी", "हिन्दी"),  # vowel signs and virama (marks) kept
    ("東京", "東京"),
    ("Şırnak", "şırnak"),
    ("ﬁnance", "finance"),  # NFKC
])
def test_a_plain_name_is_its_own_readable_slug(name: str, slug: str) -> None:
    assert label_slug(name) == slug


def test_names_that_lose_characters_get_a_suffix_from_their_own_hash() -> None:
    slugs = {name: label_slug(name) for name in ("C", "C++", "C#", "c-+", "U.S.", "++", "!!")}
    assert slugs["C"] == "c"
    assert len(set(slugs.values())) == len(slugs)
    for name in ("C++", "C#", "c-+"):
        assert slugs[name].startswith("c-") and len(slugs[name]) == 2 + 8
    assert slugs["U.S."].startswith("u-s-")
    # a plain name shaped like a suffixed one is suffixed itself: the two never meet
    assert label_slug(slugs["C++"]) not in slugs.values()


def test_slugs_do_not_depend_on_which_names_exist_or_their_order() -> None:
    names = ["C", "C++", "c", "Turkey", "turkey", "TURKEY", "C#"]
    first = {n: label_slug(n) for n in names}
    for order in itertools.permutations(names):
        assert {n: label_slug(n) for n in order} == first
    assert label_feed("tag", "C++") == f"tag/{first['C++']}"


def test_tag_and_author_feeds_list_their_published_articles(db: Store) -> None:
    db.upsert([
        art("a", tags=["Turkey", "C++"], authors=["Sara Ahmadi"], hours=1),
        art("b", "World", tags=["turkey", "C"], hours=2),
        art("c", tags=["C"], status="deleted", hours=3),
    ])
    assert ids(db.newest("tag/turkey", 10, NOW)) == ["b", "a"]
    assert ids(db.newest(label_feed("tag", "C++"), 10, NOW)) == ["a"]
    assert ids(db.newest("tag/c", 10, NOW)) == ["b"]
    assert ids(db.newest("author/sara-ahmadi", 10, NOW)) == ["a"]
    assert db.label_names(["author/sara-ahmadi", "tag/nothing"]) == {
        "author/sara-ahmadi": "Sara Ahmadi"}


@pytest.mark.parametrize("order", [0, 1])
def test_the_name_of_a_label_is_the_same_whatever_the_import_order(database_url: str,
                                                                    order: int) -> None:
    spellings = ["turkey", "Turkey"][::1 if order else -1]
    store = Store(database_url)
    try:
        for i, tag in enumerate(spellings):
            store.upsert([art(f"a{i}", tags=[tag], hours=i)])
        assert store.label_names(["tag/turkey"]) == {"tag/turkey": "Turkey"}
    finally:
        store.close()


def test_a_change_names_the_label_feeds_it_joined_and_left(db: Store) -> None:
    db.upsert([art("a", tags=["Oil", "Gas"], authors=["Murat Kaya"])])
    db.upsert([art("a", tags=["Gas", "Water"])])
    (change,) = db.changed_since(BASE - timedelta(days=10_000))
    assert change.label_feeds == {"tag/oil", "tag/gas", "tag/water", "author/murat-kaya"}
    assert ids(db.newest("tag/oil", 10, NOW)) == []
    db.upsert([art("a", tags=["Gas", "Water"], status="deleted")])
    (change,) = db.changed_since(BASE - timedelta(days=10_000))
    assert change.label_feeds == {"tag/gas", "tag/water"}
    assert ids(db.newest("tag/gas", 10, NOW)) == []


def test_labels_in_use_ranks_those_of_the_newest_published_articles(db: Store) -> None:
    db.upsert([art(f"a{i}", tags=["Oil"] + (["Gas"] if i < 2 else []), hours=i)
               for i in range(3)])
    db.upsert([art("d", tags=["Water"], status="deleted"), art("e", tags=["Water"], hours=4),
               art("future", tags=["Embargo"], hours=10 ** 6)])
    assert db.labels_in_use("tag", 10, now=NOW) == {
        "tag/oil": "Oil", "tag/gas": "Gas", "tag/water": "Water"}
    assert db.labels_in_use("tag", 1, now=NOW) == {"tag/oil": "Oil"}
    assert db.labels_in_use("tag", 10, window=2, now=NOW) == {
        "tag/oil": "Oil", "tag/water": "Water"}  # a2 and e, the newest two
    assert db.labels_in_use("author", 10, now=NOW) == {}


def test_label_feeds_of_articles_coming_due(db: Store) -> None:
    db.upsert([art("a", tags=["Oil"], hours=5), art("b", tags=["Gas"], hours=50)])
    assert db.label_feeds_published_between(BASE, BASE + timedelta(hours=10)) == {"tag/oil"}


def test_an_author_with_an_address_is_one_feed_by_name(db: Store) -> None:
    db.upsert([art("a", authors=["Jane Doe <jane@news.example>"], hours=1),
               art("b", authors=["Jane Doe"], hours=2)])
    assert ids(db.newest("author/jane-doe", 10, NOW)) == ["b", "a"]
    assert db.label_names(["author/jane-doe"]) == {"author/jane-doe": "Jane Doe"}


def test_a_top_level_section_named_tag_or_author_is_renamed(
        db: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", "feedsvc.store")
    db.upsert([art("a", "Tag / Turkey", tags=["Turkey"]), art("b", "News / Author")])
    assert db.section_names() == {"tag_": "Tag", "tag_/turkey": "Tag/Turkey", "news": "News",
                                  "news/author": "News/Author"}
    assert ids(db.newest("tag_/turkey", 10, NOW)) == ["a"]
    assert ids(db.newest("tag/turkey", 10, NOW)) == ["a"]  # the tag's feed, apart
    assert "/feeds/tag_/" in caplog.text


@pytest.mark.parametrize("reverse", [False, True])
def test_colliding_tags_get_the_same_feeds_whatever_the_import_order(db: Store,
                                                                     reverse: bool) -> None:
    batches = [[art("plus", tags=["C++"], hours=1)], [art("c", tags=["C"], hours=2)],
               [art("sharp", tags=["C#"], hours=3)]]
    for batch in batches[::-1] if reverse else batches:
        db.upsert(batch)
    feeds = {name: label_feed("tag", name) for name in ("C", "C++", "C#")}
    assert feeds == {"C": "tag/c", "C++": "tag/c-cedb1bac", "C#": "tag/c-951a4d36"}
    assert {name: ids(db.newest(feed, 10, NOW)) for name, feed in feeds.items()} == {
        "C": ["c"], "C++": ["plus"], "C#": ["sharp"]}
    assert db.label_names(feeds.values()) == {feed: name for name, feed in feeds.items()}


def test_a_labels_name_is_chosen_by_code_point_whatever_the_collation(
        postgres_url: str) -> None:
    """In an English collation 'turkey' sorts before 'Turkey'; by code point, after."""
    store = Store(postgres_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql('DROP TABLE labels')
            conn.exec_driver_sql('CREATE TABLE labels (feed VARCHAR(1000) PRIMARY KEY, '
                                 'name VARCHAR(1000) COLLATE "en-x-icu" NOT NULL)')
        store.upsert([art("a", tags=["Turkey"])])
        store.upsert([art("b", tags=["turkey"])])
        assert store.label_names(["tag/turkey"]) == {"tag/turkey": "Turkey"}
    finally:
        store.close()
