"""The operator page `/admin/`: the reach report (feedsvc.refresh.reach, its shape in
docs/contracts.md) as HTML with inline SVG charts. Pure: the report in, the page out; the web
serves it from the cache. It has no script and loads nothing but the stylesheet the web serves
beside it (`admin.css`), so a strict Content-Security-Policy holds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from feedsvc.render.charts import columns, horizontal_bars, lines

_TEMPLATES = Environment(loader=PackageLoader("feedsvc.render"), autoescape=True)
CHART_FEEDS = 8  # feeds drawn in the subscribers chart: the most read


def admin_page(report: Mapping[str, Any]) -> str:
    feeds = report["feeds"]
    traffic = report["traffic"]
    return _TEMPLATES.get_template("admin.html").render(
        report=report,
        total=sum(f["subscribers"] for f in feeds),
        charts=_charts(report),
        feeds=feeds,
        human_bytes=human_bytes,
        saved_today=traffic[-1]["bytes_saved"] if traffic else 0,
    )


def _charts(report: Mapping[str, Any]) -> dict[str, Markup]:
    feeds, traffic = report["feeds"], report["traffic"]
    days = [d[5:] for d in report["days"]]  # MM-DD
    return {
        "subscribers": lines("Estimated subscribers per feed, by day", days,
                             [(f["feed"], f["history"]) for f in feeds[:CHART_FEEDS]]),
        "addresses": horizontal_bars(
            "Readers by address today",
            [(a["name"], a["readers"], f"{a['readers']:,} ({a['share']:.0%})")
             for a in report["addresses"]]),
        "families": horizontal_bars(
            "Polls by client family today",
            [(f["name"], f["requests"], f"{f['requests']:,}") for f in report["families"]]),
        "not_modified": columns(
            "304 ratio by day",
            [(t["day"], t["not_modified_ratio"] * 100,
              f"{t['not_modified_ratio']:.1%} of {t['requests']:,}") for t in traffic], "%"),
        "bytes_saved": columns(
            "Bytes saved by 304s, by day",
            [(t["day"], t["bytes_saved"], human_bytes(t["bytes_saved"])) for t in traffic]),
        "freshness": columns(
            "Import to served, per refresh (seconds)",
            [(_time(r["at"]), r["seconds"], f"{r['seconds']:.3f} s, {r['feeds']} feeds")
             for r in report["freshness"]], " s"),
        "ages": horizontal_bars(
            "Age of each feed's newest item",
            [(f["feed"], f["age_seconds"], _duration(f["age_seconds"]))
             for f in feeds if f["age_seconds"] is not None]),
    }


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _time(stamp: str) -> str:
    return datetime.fromisoformat(stamp).strftime("%m-%d %H:%M:%S")
