"""The feed formats the service emits, by the file name they have in URLs (design §3, §4)."""

from __future__ import annotations

from feedsvc.render.context import Format
from feedsvc.render.feeds import render_atom, render_rss

FORMATS: dict[str, Format] = {
    f.filename: f
    for f in (
        Format("rss.xml", "application/rss+xml; charset=utf-8", render_rss),
        Format("atom.xml", "application/atom+xml; charset=utf-8", render_atom),
    )
}
