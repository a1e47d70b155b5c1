"""The operator page as render draws it from a report: the table's figures, one mark per value
in each chart, nothing that runs or loads from elsewhere, and the report's text escaped."""

from __future__ import annotations

import lxml.html

from feedsvc.render.admin import admin_page

DAYS = [f"2026-{m:02d}-{d:02d}" for m in (9, 10, 11) for d in range(1, 31)]


def report() -> dict:
    return {
        "version": 1, "generated_at": "2026-11-30T12:00:00+00:00", "today": DAYS[-1],
        "days": DAYS,
        "feeds": [
            {"feed": "rss.xml", "subscribers": 1234, "week_ago": 1200, "change": 34,
             "history": list(range(90)), "top_readers": [
                 {"name": "feedly", "readers": 1000, "share": 0.81},
                 {"name": "newsboat", "readers": 234, "share": 0.19}],
             "newest_item": "2026-11-30T11:00:00+00:00", "age_seconds": 3600},
            {"feed": "news/<script>alert(1)</script>/atom.xml", "subscribers": 7,
             "week_ago": None, "change": None, "history": [0] * 89 + [7],
             "top_readers": [{"name": "browser", "readers": 7, "share": 1.0}],
             "newest_item": None, "age_seconds": None},
        ],
        "addresses": [{"name": "https://news.example", "readers": 900, "share": 0.7288},
                      {"name": "https://news-mirror.example", "readers": 341, "share": 0.2762}],
        "families": [{"name": "newsboat", "requests": 500, "readers": 234},
                     {"name": "feedly", "requests": 40, "readers": 1000},
                     {"name": "browser", "requests": 9, "readers": 7}],
        "traffic": [{"day": d, "requests": 100, "not_modified": 25, "bytes_sent": 10**6,
                     "bytes_saved": 3 * 10**6, "not_modified_ratio": 0.25} for d in DAYS[-5:]],
        "freshness": [{"at": f"2026-11-30T11:0{n}:00+00:00", "seconds": 0.1 * (n + 1),
                       "feeds": 3} for n in range(4)],
    }


def test_the_page_shows_the_report():
    page = lxml.html.fromstring(admin_page(report()))
    assert page.get_element_by_id("total").text == "1,241"
    rows = page.xpath("//table[@id='feeds']/tbody/tr")
    assert [r.get("data-feed") for r in rows] == ["rss.xml",
                                                  "news/<script>alert(1)</script>/atom.xml"]
    first, second = ([c.text_content() for c in r.xpath("td")] for r in rows)
    assert first == ["rss.xml", "1,234", "+34", "feedly 1,000, newsboat 234"]
    assert second[1:3] == ["7", "new"]
    assert page.xpath("//meta[@name='viewport']")


def _marks(page, chart: str, cls: str) -> list:
    return page.xpath(f"//section[@id='chart-{chart}']//*[@class='{cls}']")


def test_each_chart_draws_one_mark_per_value():
    page = lxml.html.fromstring(admin_page(report()))
    lines = _marks(page, "subscribers", "series")
    assert [len(line.get("points").split()) for line in lines] == [90, 90]
    assert len(_marks(page, "addresses", "bar")) == 2
    assert len(_marks(page, "families", "bar")) == 3
    assert len(_marks(page, "not-modified", "bar")) == 5
    assert len(_marks(page, "bytes-saved", "bar")) == 5
    assert len(_marks(page, "freshness", "bar")) == 4
    assert len(_marks(page, "ages", "bar")) == 1  # the feed without items has no age
    widths = [float(bar.get("width")) for bar in _marks(page, "families", "bar")]
    assert widths[0] > widths[1] > widths[2] > 0  # 500, 40, 9 polls


def test_the_page_runs_nothing_and_loads_only_its_stylesheet():
    html = admin_page(report())
    page = lxml.html.fromstring(html)
    assert not page.xpath("//script | //iframe | //img | //object")
    assert [e.get("href") for e in page.xpath("//link")] == ["admin.css"]
    assert {e.get("href") for e in page.xpath("//a")} == {"reach.json"}
    assert "<script>alert(1)" not in html
    attributes = {name for element in page.iter() if isinstance(element.tag, str)
                  for name in element.attrib}
    assert not {a for a in attributes if a.startswith("on") or a == "style"}  # CSP: no inline


def test_an_empty_report_renders():
    empty = {**report(), "feeds": [], "addresses": [], "families": [], "traffic": [],
             "freshness": []}
    page = lxml.html.fromstring(admin_page(empty))
    assert page.get_element_by_id("total").text == "0"
    assert "Nothing counted yet" in page.text_content()
