"""The source store's tables (SQLAlchemy Core; the same DDL on SQLite and PostgreSQL).

`articles` keeps the full document plus the columns feeds filter on. `feed_items` is the
membership of each published article in every feed it appears in (its section, each ancestor and
the site, path ''), so "newest N of a section and all its subsections" is one index range scan
on (feed, published) whatever the size of the store, instead of a prefix match and a sort.
Tag and author feeds (`tag/<slug>`, `author/<slug>`) are rows there too; `labels` names them,
and `article_labels` keeps the tag and author feeds of each article's last two writes, so a
refresh knows which of them a change left as well as which it joined.

The `reach_*` tables hold the daily rollups of who reads the feeds (feedsvc.store.reach): counts
and estimates only, never an address or a User-Agent. Every key starts with the day, so a day's
rows are replaced, and the days past the retention pruned, by a range of the primary key.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

articles = Table(
    "articles",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("section", String(1000), nullable=False),
    # The section before the last write moved the article: its old feeds must drop it.
    Column("previous_section", String(1000), nullable=True),
    Column("status", String(16), nullable=False),
    # Naive UTC everywhere: SQLite has no time zones, and one convention avoids mix-ups.
    Column("published", DateTime, nullable=False),
    # The publication time before the last write: a redated article leaves its old month's
    # archive (feedsvc.archives). Added to older stores by `Store` at start.
    Column("previous_published", DateTime, nullable=True),
    Column("updated", DateTime, nullable=False),
    Column("changed_at", DateTime, nullable=False),
    Column("document", Text, nullable=False),
    Index("ix_articles_changed_at", "changed_at"),
)

feed_items = Table(
    "feed_items",
    metadata,
    Column("article_id", String(200), ForeignKey("articles.id", ondelete="CASCADE"),
           primary_key=True),
    Column("feed", String(1000), primary_key=True),
    Column("published", DateTime, nullable=False),
    Index("ix_feed_items_feed_published", "feed", "published", "article_id"),
)

sections = Table(
    "sections",
    metadata,
    Column("path", String(1000), primary_key=True),
    Column("name", String(1000), nullable=False),
)

labels = Table(
    "labels",
    metadata,
    Column("feed", String(1000), primary_key=True),  # tag/<slug>, author/<slug>
    Column("name", String(1000), nullable=False),  # as written, for feed titles
)

# Beside `articles` (not columns of it) so that a store made before tag feeds gains it on start.
article_labels = Table(
    "article_labels",
    metadata,
    Column("article_id", String(200), ForeignKey("articles.id", ondelete="CASCADE"),
           primary_key=True),
    Column("feeds", Text, nullable=False),  # its tag and author feeds, one per line
    Column("previous_feeds", Text, nullable=True),  # the same before the last write
)

# Per (day, feed document, address, client family): what was served, and the distinct direct
# pollers (a HyperLogLog estimate; aggregators are not in it).
reach_traffic = Table(
    "reach_traffic",
    metadata,
    Column("day", Date, primary_key=True),
    Column("feed", String(1000), primary_key=True),
    Column("address", String(300), primary_key=True),
    Column("family", String(64), primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("not_modified", BigInteger, nullable=False),
    Column("bytes_sent", BigInteger, nullable=False),
    Column("bytes_saved", BigInteger, nullable=False),
    Column("pollers", BigInteger, nullable=False),
)

# Distinct direct pollers of a feed over all its addresses and families (the HyperLogLogs'
# union: a client on two addresses counts once, so it is not the sum of reach_traffic's).
reach_feed_pollers = Table(
    "reach_feed_pollers",
    metadata,
    Column("day", Date, primary_key=True),
    Column("feed", String(1000), primary_key=True),
    Column("pollers", BigInteger, nullable=False),
)

# The subscriber counts aggregators report in their User-Agent: the day's latest per
# (aggregator, the aggregator's own feed id, feed, address).
reach_aggregators = Table(
    "reach_aggregators",
    metadata,
    Column("day", Date, primary_key=True),
    Column("aggregator", String(64), primary_key=True),
    Column("feed_id", String(300), primary_key=True),
    Column("feed", String(1000), primary_key=True),
    Column("address", String(300), primary_key=True),
    Column("subscribers", BigInteger, nullable=False),
)
