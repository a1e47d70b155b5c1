"""JSON Feed 1.1 (docs/contracts.md), built as plain dicts: readers that prefer JSON get the same
items, ids and mirror-placed links as the XML feeds, in bytes that only change when the data
does."""

from __future__ import annotations

import json
from typing import Any

from feedsvc.model import Video, as_uri
from feedsvc.render.context import FeedContext, rfc3339
from feedsvc.render.items import Item, video_type

VERSION = "https://jsonfeed.org/version/1.1"


def _attachment(video: Video) -> dict[str, Any]:
    attachment: dict[str, Any] = {"url": as_uri(video.url), "mime_type": video_type(video)}
    if video.duration:
        attachment["duration_in_seconds"] = video.duration
    return attachment


def _item(item: Item) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": item.id,
        "url": as_uri(item.url),
        "title": item.title,
        # Required (content_html or content_text), so kept even when the article has no body.
        "content_html": item.content_html,
        "summary": item.summary,
        "image": as_uri(item.images[0].url) if item.images else None,
        "date_published": rfc3339(item.published),
        "date_modified": rfc3339(item.updated),
        "authors": [{"name": a.name} for a in item.authors],
        "tags": list(dict.fromkeys(t for t in item.tags if t.strip())),  # schema: unique
        "language": item.language,
        "attachments": [_attachment(v) for v in item.videos],
    }
    return {k: v for k, v in entry.items() if v or k == "content_html"}


def render_json_feed(ctx: FeedContext) -> bytes:
    s = ctx.settings
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": ctx.spec.title,
        "home_page_url": ctx.spec.page_url(ctx.origin),
        "feed_url": ctx.feed_url("feed.json"),
        "description": ctx.spec.description,
        "language": s.language,
        "hubs": [{"type": "WebSub", "url": as_uri(hub)} for hub in s.websub_hubs],
        "authors": [{"name": s.site_title}],
    }
    feed = {k: v for k, v in feed.items() if v}
    feed["items"] = [_item(i) for i in ctx.items]
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode()
