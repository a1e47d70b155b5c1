"""Roku Direct Publisher JSON (docs/contracts.md): the articles that carry a playable video, in the
shape Roku's SceneGraph app template reads.

The template reads `genres[0]` unguarded and refuses documents of 500 KB or more, so every video
has a genre and the oldest videos are dropped until the document fits on every address. Articles
Roku could not play or show (no duration, unknown stream type, no thumbnail) are left out and
logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from feedsvc.model import Video, as_uri, section_slug, shorten
from feedsvc.render.context import FeedContext, rfc3339
from feedsvc.render.items import Item, video_kind

log = logging.getLogger(__name__)

MAX_BYTES = 500_000  # Roku refuses 500 KB or more
SHORT_DESCRIPTION = 200
LONG_DESCRIPTION = 500
MAX_TAG = 20
MAX_PLAYLIST_NAME = 20
VIDEO_TYPE = {"mp4": "MP4", "hls": "HLS", "dash": "DASH"}
_PRIMARY_LANGUAGE = re.compile("[a-z]{2,3}")

Entry = tuple[Item, dict[str, Any]]


def _language(tag: str | None, default: str) -> str:
    """The primary subtag of a BCP 47 `tag`, lowercased (`en-GB` -> `en`), else `default`."""
    primary = (tag or "").split("-")[0].lower()
    return primary if _PRIMARY_LANGUAGE.fullmatch(primary) else default


def _playable(item: Item) -> tuple[Video, str] | None:
    """The first video Roku can play and list (a known stream type and a duration), with its
    Roku videoType."""
    for video in item.videos:
        kind = video_kind(video)
        if kind and (video.duration or 0) >= 1:
            return video, VIDEO_TYPE[kind]
    return None


def _tags(item: Item) -> list[str]:
    """Article tags then section names; longer than Roku's 20 characters are dropped (a cut tag
    would be a different word), case-insensitive duplicates too."""
    tags: dict[str, str] = {}
    for tag in (*item.tags, *item.section):
        tag = " ".join(tag.split())
        if tag and len(tag) <= MAX_TAG:
            tags.setdefault(tag.casefold(), tag)
    return list(tags.values())


def _playlist_name(section_path: str) -> str:
    """A unique name of at most 20 characters: the path itself, or for a longer path its start
    and a hash after a `~` (which no slugged path contains)."""
    if len(section_path) <= MAX_PLAYLIST_NAME:
        return section_path
    digest = hashlib.sha1(section_path.encode()).hexdigest()[:8]
    return f"{section_path[: MAX_PLAYLIST_NAME - 9]}~{digest}"


def _video(item: Item, language: str) -> dict[str, Any] | None:
    """The shortFormVideo of `item`, or None (logged) when Roku could not use it."""
    playable = _playable(item)
    video = playable[0] if playable else None
    thumbnail = video and (video.thumbnail or (item.images[0].url if item.images else None))
    title = item.title.strip()
    if playable is None or not thumbnail or not title:
        problem = ("no video with a duration and a known type" if playable is None
                   else "no thumbnail" if not thumbnail else "no title")
        log.info("roku: article %s left out: %s", item.id, problem)
        return None
    video, video_type = playable
    summary = " ".join(item.summary.split())
    entry: dict[str, Any] = {
        "id": item.id.uuid.hex,
        "title": title,
        "shortDescription": shorten(summary or " ".join(title.split()), SHORT_DESCRIPTION),
        "thumbnail": as_uri(thumbnail),
        "releaseDate": rfc3339(item.published)[:10],
        "genres": ["news"],
        "tags": _tags(item),
        "content": {
            "dateAdded": rfc3339(item.published),
            "duration": video.duration,
            "language": _language(item.language, language),
            "videos": [{
                "url": as_uri(video.url),
                "quality": video.quality or "HD",
                "videoType": video_type,
            }],
        },
    }
    if len(summary) > SHORT_DESCRIPTION:
        entry["longDescription"] = shorten(summary, LONG_DESCRIPTION)
    return entry


def _document(ctx: FeedContext, language: str, entries: list[Entry]) -> bytes:
    configured = ctx.settings.section_by_path()
    sections: dict[str, tuple[str, list[str]]] = {}
    for item, video in entries:
        path = section_slug(item.section)
        title = configured[path].title if path in configured else item.section[-1]
        sections.setdefault(path, (title, []))[1].append(video["id"])
    paths = sorted(sections)
    doc = {
        "providerName": ctx.settings.site_title,
        "lastUpdated": rfc3339(ctx.updated),
        "language": language,
        "shortFormVideos": [video for _, video in entries],
        "categories": [
            {"name": sections[p][0], "playlistName": _playlist_name(p), "order": "most_recent"}
            for p in paths
        ],
        "playlists": [{"name": _playlist_name(p), "itemIds": sections[p][1]} for p in paths],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def render_roku(ctx: FeedContext) -> bytes:
    language = _language(ctx.settings.language, "en")
    entries = sorted(
        ((item, video) for item in ctx.items if item.videos
         and (video := _video(item, language)) is not None),
        key=lambda entry: entry[0].published, reverse=True,
    )
    body = _document(ctx, language, entries)
    if ctx.largest_copy(body) < MAX_BYTES:  # the limit holds for the copy on every address
        return body
    # The largest newest-first prefix that fits: entries[:low] fits, entries[:high + 1] does not.
    low, high = 0, len(entries) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if ctx.largest_copy(_document(ctx, language, entries[:middle])) < MAX_BYTES:
            low = middle
        else:
            high = middle - 1
    log.warning("roku: %s on %s: kept the newest %d of %d videos to stay under %d bytes",
                ctx.spec.path or "(site)", ctx.origin, low, len(entries), MAX_BYTES)
    return _document(ctx, language, entries[:low])
