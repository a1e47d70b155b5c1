"""Which feeds the site has: the whole site, each configured section and each section that
articles were filed in, with every ancestor of those; and apart from them, since there are
thousands and they are rendered only when asked for, a feed per tag and per author."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from feedsvc.characters import showable
from feedsvc.config import Settings
from feedsvc.model import RESERVED_SEGMENTS, ancestor_paths, as_uri, split_section
from feedsvc.urls import feed_url

log = logging.getLogger(__name__)
_RENAMED = {f"{segment}_" for segment in RESERVED_SEGMENTS}
_renames_told: set[str] = set()  # said once per process, not on every refresh


@dataclass(frozen=True, slots=True)
class History:
    """A document's RFC 5005 §4 links, as feed paths: an archive names its `current` feed
    (None: the document is the current feed itself) and each links the months beside it."""

    current: str | None = None
    prev_archive: str | None = None
    next_archive: str | None = None

    @property
    def archive(self) -> bool:
        return self.current is not None

    def links(self) -> list[tuple[str, str]]:
        """(relation, feed path) of each link the document carries."""
        named = (("current", self.current), ("prev-archive", self.prev_archive),
                 ("next-archive", self.next_archive))
        return [(rel, path) for rel, path in named if path is not None]


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One feed of the site: `path` is the slugged section path, '' for the whole site (for
    an archive document, its own path, feedsvc.archives)."""

    path: str
    title: str
    description: str
    history: History = History()

    def page_url(self, origin: str) -> str:
        """The publisher's own page for this section (RSS channel link, Atom alternate), as a
        URI like `feed_url`."""
        section = self.history.current if self.history.current is not None else self.path
        return as_uri(f"{origin}/{section}") if section else f"{origin}/"

    def feed_url(self, origin: str, filename: str) -> str:
        return feed_url(origin, self.path, filename)


def build_catalog(settings: Settings, stored_sections: Mapping[str, str]) -> dict[str, FeedSpec]:
    """All feeds by path, site first; `stored_sections` maps slug path -> 'News/Turkey' names
    for the sections articles were filed in (shown with only `showable` characters: a store
    written before ingest removed the others may hold them)."""
    configured = settings.section_by_path()
    names = dict(stored_sections)
    for section in settings.sections:
        names.setdefault(section.path, "/".join(section.names))
    for path, name in list(names.items()):
        parts = split_section(name)
        for i, ancestor in enumerate(ancestor_paths(path)[1:-1]):
            names.setdefault(ancestor, "/".join(parts[: i + 1]))
    catalog = {"": FeedSpec("", settings.site_title, settings.site_description)}
    for path in sorted(names):
        if path not in _renames_told and _RENAMED & set(path.split("/")):
            _renames_told.add(path)
            log.info("section %r is at %r: a section path segment may not be one the feed "
                     "URLs use themselves (%s)", names[path], path,
                     ", ".join(sorted(RESERVED_SEGMENTS)))
        if path in configured:
            section = configured[path]
            catalog[path] = FeedSpec(
                path, f"{settings.site_title}: {section.title}",
                section.description or f"{section.title} from {settings.site_title}",
            )
        else:
            title = showable(split_section(names[path])[-1]).strip()
            catalog[path] = FeedSpec(
                path, f"{settings.site_title}: {title}", f"{title} from {settings.site_title}"
            )
    return catalog


def label_spec(settings: Settings, path: str, name: str) -> FeedSpec:
    """The feed of the tag or author (`path` `tag/<slug>` or `author/<slug>`) named `name`
    (shown with only `showable` characters, as `build_catalog` shows section names)."""
    site, name = settings.site_title, showable(name).strip()
    about = f"Articles tagged “{name}”" if path.startswith("tag/") else f"Articles by {name}"
    return FeedSpec(path, f"{site}: {name}", f"{about} from {site}")
