"""The client table (feedsvc/web/clients.toml) classifies real User-Agents into the families
reach is counted by, and reads the subscriber counts and feed ids aggregators report."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from feedsvc.web.clients import FAMILIES, KINDS, MAX_CACHED, classify

TABLE = tomllib.loads(resources.files("feedsvc.web").joinpath("clients.toml").read_text())
EXAMPLES = [(raw["id"], ua) for raw in TABLE["family"] for ua in raw["examples"]]


@pytest.mark.parametrize(("family", "user_agent"), EXAMPLES)
def test_every_example_in_the_table_is_classified_as_its_family(family, user_agent):
    assert classify(user_agent).family.id == family


def test_the_table_names_every_family_the_counts_and_the_page_rely_on():
    assert {"feedly", "inoreader", "feedbin", "newsblur", "theoldreader", "netvibes",
            "feedspot", "bloglovin", "netnewswire", "newsboat", "miniflux", "freshrss",
            "ttrss", "thunderbird", "roku", "browser", "bot", "other"} <= set(FAMILIES)
    assert all(f.kind in KINDS for f in FAMILIES.values())
    assert all(raw.get("source") and raw["examples"] for raw in TABLE["family"])


@pytest.mark.parametrize(("user_agent", "family", "subscribers", "feed_id"), [
    ("Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; like FeedFetcher-Google)",
     "feedly", 131, ""),
    ("Feedly/1.0 (+https://feedly.com/fetcher.html; 1 subscriber)", "feedly", 1, ""),
    ("Feedly/1.0 (+http://www.feedly.com/fetcher.html; like FeedFetcher-Google)",
     "feedly", None, ""),
    ("Inoreader/1.0 (+http://www.inoreader.com/feed-fetcher; 3 subscribers; )", "inoreader", 3, ""),
    ("Mozilla/5.0 (compatible; inoreader.com; 7 subscribers)", "inoreader", 7, ""),
    ("Feedbin feed-id:1373711 - 142 subscribers", "feedbin", 142, "1373711"),
    ("NewsBlur Feed Fetcher - 3 subscribers - https://www.newsblur.com/site/6126711/example-news "
     "(\"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0 Safari/537.36\")", "newsblur", 3, "6126711"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_1) AppleWebKit/534.48.3 (KHTML, like Gecko) "
     "Version/5.1 Safari/534.48.3 (NewsBlur Feed Fetcher - 1 subscriber - http://www.newsblur.com)",
     "newsblur", 1, ""),
    ("Mozilla/5.0 (compatible; theoldreader.com; 15 subscribers; feed-id=0719795c4d27c784217b0bc0)",
     "theoldreader", 15, "0719795c4d27c784217b0bc0"),
    ("Netvibes (http://www.netvibes.com/; 1 subscribers; feedID: 6639445)",
     "netvibes", 1, "6639445"),
    ("Mozilla/5.0 (compatible; BazQux/2.4; +https://bazqux.com/fetcher; 5 subscribers)",
     "bazqux", 5, ""),
    ("Bloglovin/1.0 (http://www.bloglovin.com; 12 subscribers)", "bloglovin", 12, ""),
    ("Feedspot/1.0 (+https://www.feedspot.com/fs/fetcher; like FeedFetcher-Google)",
     "feedspot", None, ""),
    ("Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 16 subscribers; "
     "feed-id=12310981209483785)", "feedfetcher-google", 16, "12310981209483785"),
])
def test_aggregators_counts_and_feed_ids_are_read_from_their_user_agents(
        user_agent, family, subscribers, feed_id):
    client = classify(user_agent)
    assert (client.family.id, client.family.kind) == (family, "aggregator")
    assert (client.subscribers, client.feed_id) == (subscribers, feed_id)


@pytest.mark.parametrize(("user_agent", "family", "kind"), [
    ("NetNewsWire (RSS Reader; https://netnewswire.com/)", "netnewswire", "reader"),
    ("Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; de-de) AppleWebKit/531.22.7 "
     "(KHTML, like Gecko) NetNewsWire/3.2.7", "netnewswire", "reader"),
    ("Mozilla/5.0 (compatible; Miniflux/2.1.0; +https://miniflux.app)", "miniflux", "reader"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0",
     "thunderbird", "reader"),
    ("Roku/DVP-9.10 (519.10E04111A)", "roku", "device"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "browser",
     "browser"),
    ("curl/8.5.0", "bot", "other"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "other"),
    ("SomeFeedApp/4.2 (iOS)", "other", "other"),
    ("", "other", "other"),
])
def test_direct_clients_are_told_apart_and_report_no_count(user_agent, family, kind):
    client = classify(user_agent)
    assert (client.family.id, client.family.kind, client.subscribers) == (family, kind, None)


def test_only_direct_readers_are_counted_as_distinct_clients():
    assert not classify("Feedbin feed-id:1 - 2 subscribers").family.distinct
    assert not classify("curl/8.5.0").family.distinct
    assert classify("Newsboat/2.36 (Linux x86_64)").family.distinct
    assert classify("Roku/DVP-9.10 (519.10E04111A)").family.distinct
    assert classify("SomeFeedApp/4.2 (iOS)").family.distinct


def test_counts_and_ids_are_read_in_ascii_digits_only():
    """One spelling: `int()` reads Arabic-Indic digits, so `feed-id:١٣٧٣٧١١` was a second
    aggregator beside `feed-id:1373711` with its own count. (Not seen over HTTP here: the
    servers pass a header's bytes as latin-1, or drop a non-ASCII value.)"""
    for user_agent in ("Feedbin feed-id:\u0661\u0663\u0667 - \u0661\u0664\u0662 subscribers",
                       "Feedbin feed-id:\uff11\uff13\uff17 - \uff11\uff14\uff12 subscribers"):
        client = classify(user_agent)
        assert (client.family.id, client.subscribers, client.feed_id) == ("feedbin", None, "")


def test_a_count_no_aggregator_could_have_is_not_believed():
    assert classify("Feedly/1.0 (+https://feedly.com/fetcher.html; 4000000000 subscribers)"
                    ).subscribers is None


def test_each_distinct_user_agent_is_classified_once_and_the_cache_is_bounded():
    classify.cache_clear()
    for _ in range(3):
        classify("Feedbin feed-id:77 - 9 subscribers")
    info = classify.cache_info()
    assert (info.misses, info.hits, info.maxsize) == (1, 2, MAX_CACHED)
    for n in range(MAX_CACHED + 10):
        classify(f"SomeFeedApp/{n}")
    assert classify.cache_info().currsize == MAX_CACHED
