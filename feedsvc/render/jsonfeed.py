"""JSON Feed 1.1 (design §4), built as plain dicts: readers that prefer JSON get the same items,
ids and mirror-placed links as the XML feeds, in bytes that only change when the data does.

The date, URL and video-kind helpers here are shared with the Roku renderer.
"""

from __future__ import annotations

import json
import mimetypes
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from feedsvc.model import Video, VideoType
from feedsvc.render.context import FeedContext
from feedsvc.render.items import Item

VERSION = "https://jsonfeed.org/version/1.1"
VIDEO_MIME: dict[VideoType, str] = {
    "mp4": "video/mp4",
    "hls": "application/vnd.apple.mpegurl",
    "dash": "application/dash+xml",
}
_EXTENSION_KIND: dict[str, VideoType] = {
    ".mp4": "mp4", ".m4v": "mp4", ".m3u8": "hls", ".mpd": "dash",
}
# Characters RFC 3986 allows in a URI (reserved, unreserved and '%' of existing escapes).
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


def rfc3339(when: datetime) -> str:
    """`when` in UTC with a `Z`: one spelling for every date, whatever zone it came in."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_uri(url: str) -> str:
    """`url` with non-ASCII and other characters outside RFC 3986 percent-encoded (UTF-8):
    section slugs and article paths may be IRIs, which the URL fields must not carry raw."""
    return quote(url, safe=_URI_SAFE)


def video_kind(video: Video) -> VideoType | None:
    """The stated type, else the one the URL's extension implies; None when neither tells."""
    if video.type:
        return video.type
    path = urlsplit(video.url).path.lower()
    return next((k for ext, k in _EXTENSION_KIND.items() if path.endswith(ext)), None)


def _attachment(video: Video) -> dict[str, Any]:
    kind = video_kind(video)
    mime = VIDEO_MIME[kind] if kind else mimetypes.guess_type(urlsplit(video.url).path)[0]
    attachment: dict[str, Any] = {
        "url": as_uri(video.url), "mime_type": mime or "application/octet-stream"
    }
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
        "authors": [{"name": a} for a in item.authors if a],
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
        "home_page_url": as_uri(ctx.spec.page_url(ctx.origin)),
        "feed_url": as_uri(ctx.feed_url("feed.json")),
        "description": ctx.spec.description,
        "language": s.language,
        "hubs": [{"type": "WebSub", "url": as_uri(hub)} for hub in s.websub_hubs],
        "authors": [{"name": s.site_title}],
    }
    feed = {k: v for k, v in feed.items() if v}
    feed["items"] = [_item(i) for i in ctx.items]
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode()
