"""Deterministic generator of realistic article documents (docs/contracts.md).

`feedsvc demo` loads 200 of them (the committed `feedsvc/demo/articles.jsonl`, which this
script's defaults rewrite byte for byte) and the benchmarks need 100,000
to 1,000,000, so articles are streamed and assembled from pools drawn once per run: stories
(headline, lead, paragraphs), photos and "shapes" (which optional fields and links an article
has). An article then costs a handful of draws and string joins; runs longer than the story pool
reuse its headlines on other dates. The data is deliberately messy the way real imports are: both
section forms, both offset styles, relative and absolute URLs, missing optional fields and, in
about 2 % of bodies, markup a sanitiser has to remove.

    python bench/article_generator.py [--count N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import argparse
import html
import json
import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from feedsvc.model import section_slug, slugify, split_section

DEMO_SECTIONS: tuple[str, ...] = ("News", "News/Turkey", "News/Middle East", "News/Iran", "World")
DEFAULT_START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULT_COUNT = 200
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "feedsvc" / "demo" / "articles.jsonl"

_TEHRAN_SECONDS = 12_600  # the publisher's +03:30 (Iran has had no DST since 2022)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SHAPE_BITS = 10  # 1024 shapes
# Distinct headlines; longer runs reuse them (on other dates, so other URLs). Each story is filed
# in a random section: with many sections, more stories are needed for all to have articles.
STORIES = 1024
_LOOKAHEAD = 24  # links point at the next (older) articles
_RELATED_OFFSETS = (0, 5, 11)  # which of them, from a random first one
_PARAGRAPHS_PER_COUNTRY = 40
_PHOTOS_PER_COUNTRY = 24
# Time of day as text by minute and second: formatting ints is the slowest step otherwise.
_MINUTES = tuple(f"T{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECONDS = tuple(f"{second:02d}" for second in range(60))

# country: (adjective, cities with the capital first)
_COUNTRIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Turkey": ("Turkish", ("Ankara", "Istanbul", "Izmir", "Gaziantep")),
    "Iran": ("Iranian", ("Tehran", "Isfahan", "Mashhad", "Tabriz", "Shiraz")),
    "Iraq": ("Iraqi", ("Baghdad", "Basra", "Erbil", "Mosul")),
    "Syria": ("Syrian", ("Damascus", "Aleppo", "Homs", "Latakia")),
    "Lebanon": ("Lebanese", ("Beirut", "Tripoli", "Sidon")),
    "Egypt": ("Egyptian", ("Cairo", "Alexandria")),
    "Jordan": ("Jordanian", ("Amman", "Aqaba")),
    "Qatar": ("Qatari", ("Doha",)),
    "Oman": ("Omani", ("Muscat",)),
    "Saudi Arabia": ("Saudi", ("Riyadh", "Jeddah")),
    "Azerbaijan": ("Azerbaijani", ("Baku",)),
    "Armenia": ("Armenian", ("Yerevan",)),
    "Pakistan": ("Pakistani", ("Islamabad", "Karachi")),
    "Russia": ("Russian", ("Moscow", "St Petersburg")),
    "China": ("Chinese", ("Beijing", "Shanghai")),
    "Germany": ("German", ("Berlin",)),
    "France": ("French", ("Paris",)),
    "Venezuela": ("Venezuelan", ("Caracas",)),
}
_ALL_COUNTRIES = tuple(_COUNTRIES)
# Which countries a section's stories are mostly about, by the section's last name.
_FOCUS: dict[str, tuple[str, ...]] = {
    "Turkey": ("Turkey",),
    "Iran": ("Iran",),
    "Middle East": ("Iraq", "Syria", "Lebanon", "Egypt", "Jordan", "Qatar", "Oman", "Saudi Arabia"),
    "World": ("Russia", "China", "Germany", "France", "Venezuela", "Pakistan", "Azerbaijan",
              "Armenia"),
}
# (phrase, tag)
_TOPICS = (
    ("regional tensions", "Diplomacy"), ("the nuclear talks", "Nuclear"),
    ("border security", "Security"), ("gas exports", "Energy"), ("new sanctions", "Sanctions"),
    ("refugee returns", "Refugees"), ("water rights", "Water"), ("the Gaza ceasefire", "Gaza"),
    ("drone strikes", "Military"), ("shipping in the Persian Gulf", "Shipping"),
    ("oil prices", "Oil"), ("detained journalists", "Press freedom"),
    ("airspace violations", "Aviation"), ("the pipeline project", "Pipelines"),
    ("grain shipments", "Food security"), ("the election results", "Elections"),
    ("currency controls", "Economy"), ("the earthquake recovery", "Disasters"),
    ("cross-border trade", "Trade"), ("human rights", "Human rights"),
)
_TAGS = _ALL_COUNTRIES + tuple(tag for _, tag in _TOPICS)
_ROLES = ("president", "foreign minister", "defense minister", "oil minister",
          "parliament speaker", "army chief", "interior minister", "trade minister")
_DEALS = ("gas", "defense", "trade", "railway", "wheat", "energy", "air defense", "port")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NTH = ("second", "third", "fourth", "fifth", "sixth")

# (title, lead paragraph): the lead doubles as the summary.
_HEADLINE_TEXTS = (
    ("{A} {role} warns {b} over {topic}",
     "The {A} {role} has warned {b} over {topic}, saying any further escalation would "
     "“destabilize the entire region.”"),
    ("{A}, {B} foreign ministers meet in {city} amid row over {topic}",
     "The foreign ministers of {a} and {b} met in {city} on {day} as a dispute over {topic} "
     "continued to strain relations between the two neighbors."),
    ("{a} signs {deal} deal with {b}",
     "{a} and {b} have signed a {deal} agreement worth an estimated ${amount} billion, officials "
     "in {city} said on {day}."),
    ("{a} summons {B} envoy over {topic}",
     "{a} has summoned the {B} ambassador to protest over {topic}, the foreign ministry in {city} "
     "said on {day}."),
    ("Protests in {city} over {topic} enter {nth} day",
     "Demonstrators took to the streets of {city} for the {nth} day on {day}, as anger over "
     "{topic} showed no sign of easing."),
    ("{A} parliament approves bill on {topic}",
     "Lawmakers in {a} have approved a bill on {topic}, sending it to the president for final "
     "approval."),
    ("{a}, {b} agree to expand {deal} cooperation",
     "{a} and {b} agreed on {day} to expand {deal} cooperation after two days of talks in {city}, "
     "state media reported."),
    ("{A} {role} to visit {bcity} next week",
     "The {A} {role} will travel to {bcity} next week for talks expected to focus on {topic}, "
     "officials said on {day}."),
    ("{a} rejects {B} claims on {topic}",
     "{a} has rejected what it called “baseless” claims by {b} on {topic}, urging officials in "
     "{bcity} to stop interfering in its internal affairs."),
    ("Talks between {a} and {b} on {topic} end without deal",
     "Two days of talks between {a} and {b} on {topic} ended in {city} on {day} without an "
     "agreement, diplomats said."),
    ("{A} inflation hits {pct} percent, central bank says",
     "Annual inflation in {a} rose to {pct} percent last month, the central bank in {city} said "
     "on {day}, as concerns over {topic} weighed on markets."),
    ("Earthquake of magnitude {mag} strikes near {city}",
     "An earthquake of magnitude {mag} struck near {city} on {day}, damaging buildings and "
     "sending residents into the streets, {A} officials said."),
    ("UN urges {a} and {b} to settle dispute over {topic}",
     "The United Nations has urged {a} and {b} to settle their dispute over {topic} through "
     "dialogue, after a week of mounting tension."),
    ("{A} army says it shot down drones near {city}",
     "The {A} army said on {day} that its air defenses had shot down several drones near {city}, "
     "the latest in a series of incidents linked to {topic}."),
)
# (title, lead, the title names a second country, the title names a topic)
_HEADLINES = tuple(
    (title, lead, "{b" in title or "{B" in title, "{topic}" in title)
    for title, lead in _HEADLINE_TEXTS
)
_SENTENCES = (
    "Speaking to reporters in {city} on {day}, the {A} {role} said {topic} would top the agenda "
    "of upcoming talks with {b}.",
    "Officials in {city} have repeatedly denied the allegations, calling them “baseless” and "
    "“politically motivated.”",
    "The {A} foreign ministry said in a statement that the country “will not tolerate any "
    "violation of its sovereignty.”",
    "Analysts say the agreement could reshape trade routes between {a} and {b}, which have long "
    "competed for influence in the region.",
    "Annual inflation in {a} stood at {pct} percent last month, according to official figures.",
    "Thousands of people gathered in central {city} on {day}, chanting slogans and carrying {A} "
    "flags.",
    "The United Nations has called on all sides to exercise restraint and return to dialogue.",
    "{B} officials have not yet commented on the report.",
    "The two sides also discussed <strong>{deal} cooperation</strong> and the question of "
    "{topic}.",
    "Diplomats familiar with the talks, who spoke on condition of anonymity, said a draft text "
    "had been circulated among delegations.",
    "The {A} {role} is expected to travel to {bcity} later this month for a summit with regional "
    "leaders.",
    "Earlier this year, {a} and {b} agreed to raise bilateral trade to ${amount} billion a year.",
    "Rescue teams were still searching for survivors on {day}, the {A} Red Crescent said.",
    "Oil prices rose after the announcement, with Brent crude trading near ${oil} a barrel.",
    "“We are ready for dialogue, but not under pressure,” the {role} told a news conference in "
    "{city}.",
    "The move drew sharp criticism from {b}, which described it as <em>a dangerous "
    "escalation</em>.",
    "{a} has been under mounting pressure at home over {topic}.",
    "State television showed footage of the {A} delegation arriving in {bcity} on {day}.",
    "The ministry added that <em>all necessary measures</em> would be taken to protect citizens "
    "abroad.",
    "Critics say the government has failed to address {topic}, a key issue for voters ahead of "
    "next year's elections.",
)
_CAPTIONS = (
    "The {A} {role} speaks during a news conference in {city} on {day}.",
    "People walk past damaged buildings in {city}.",
    "Demonstrators wave {A} flags during a rally in {city} on {day}.",
    "A general view of {city}.",
    "{A} and {B} officials meet in {city} on {day}.",
    "Rescue workers search the rubble of a collapsed building in {city}.",
    "An oil tanker is seen near {city}.",
    "Traders work at a currency exchange office in {city}.",
    "Soldiers stand guard at a checkpoint near {city}.",
    "A handout photo released by the {A} presidency shows the {role} in {city}.",
)
_FOREIGN_LINKS = (  # paragraphs, each with its line break
    '<p>The <a href="https://www.un.org/en/situations">United Nations</a> has repeatedly called '
    "for restraint and the protection of civilians.</p>\n",
    '<p>A recent report by the <a href="https://www.iaea.org/newscenter/pressreleases">'
    "International Atomic Energy Agency</a> said inspectors had been given access to the "
    "sites.</p>\n",
    '<p>According to the <a href="https://www.who.int/emergencies">World Health Organization</a>, '
    "hospitals in the area are running short of fuel and medicine.</p>\n",
    '<p>Figures published by <a href="https://www.opec.org/opec_web/en/">OPEC</a> show output '
    "in the region rose for a third consecutive month.</p>\n",
    '<p>The full text of the resolution is on the <a href="https://press.un.org/en/search?'
    'q=resolution&amp;lang=en">UN press site</a>.</p>\n',
    '<p>Aid agencies quoted by <a href="https://reliefweb.int/updates">ReliefWeb</a> said more '
    "than 40,000 people had been displaced.</p>\n",
)
_HOSTILE = (  # each hostile body gets the script plus one of these
    '<p onclick="alert(document.cookie)">Tap to read the full statement.</p>\n',
    '<p>Watch the <a href="javascript:alert(1)">full interview</a>.</p>\n',
    '<iframe src="https://ads.tracker.example/frame.html" width="1" height="1"></iframe>\n',
    "<style>body { display: none }</style><p>Subscribe to our newsletter.</p>\n",
)
_AUTHORS = (
    "Sara Ahmadi", "Murat Kaya", "Leila Haddad", "Reza Karimi", "Elif Demir", "Omar Khalil",
    "Nasrin Tavakoli", "Daniel Brooks", "Hassan Nasser", "Zeynep Arslan", "Ali Mousavi",
    "Maryam Hosseini",
)
_CREDITS = ("AFP", "AFP", "Reuters", "Reuters", "AP", "Press TV", "Press TV", "Anadolu", "IRNA",
            "EPA", "Getty Images")
_IMAGE_SIZES = ((1200, 800), (1920, 1080), (800, 533), (1024, 683))
_QUALITIES = ("HD", "HD", "SD", "FHD")

_PUNCTUATION = str.maketrans(dict.fromkeys(",.:;!?'\"$“”’", " "))  # for slugs of headlines

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Section:
    text: str  # "News/Middle East"
    names: tuple[str, ...]
    slug: str  # "news/middle-east"
    focus: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Story:
    """The costly text of an article, drawn once and reused by long runs."""

    section: _Section
    country: str  # the one the story is about: picks its photos
    title: str
    title_html: str
    slug: str
    leads: tuple[str, ...]  # by weekday of publication (Monday first): it says "on Friday"
    leads_html: tuple[str, ...]  # the same as <p>
    opening: str  # paragraphs after the lead, before any links
    closing: str  # paragraphs after the links
    tags: tuple[str, ...]
    more_tags: tuple[str, ...]  # the tags and one more


@dataclass(frozen=True, slots=True)
class _Photo:
    """An image's caption, credit and optional fields, ready to get a file name."""

    cdn: str  # URL prefix on the agency's CDN, or "" for the publisher's /images/
    fields: dict[str, Any]
    figure_end: str  # a <figure> of it is '<figure><img src="' + URL + figure_end


@dataclass(frozen=True, slots=True)
class _Shape:
    """The choices made for one article, drawn ahead into a pool: one draw per article then."""

    zulu: bool  # dates in UTC with "Z" rather than in +03:30
    absolute: bool  # the canonical absolute URL rather than a path
    section_list: bool  # ["News", "Turkey"] rather than "News/Turkey"
    edited_after: int  # seconds from published to updated; 0: no `updated`
    summary: bool
    related: tuple[int, ...]  # positions in the lookahead window
    photos: tuple[int, ...]  # positions in the country's photo pool, 0–2 of them
    figure: bool  # the lead photo also as a <figure> in the body
    read_more: bool  # a "Read More:" paragraph linking the first related article
    background: bool  # a paragraph with an absolute canonical link to the last one
    foreign: str  # a paragraph linking another site, or ""
    hostile: str  # markup a sanitiser must remove, or ""
    authors: tuple[str, ...]
    tags: int  # 0: none, 1: the story's, 2: the story's and one more
    language: str | None
    video: tuple[str, str, int] | None  # type, quality, duration
    deleted: bool


@dataclass(frozen=True, slots=True)
class _Day:
    iso: str  # "2026-11-20"
    path: str  # "2026/11/20"
    weekday: int  # Monday is 0
    id_prefix: str  # "ex-2026-"
    month: str  # "2026/11", for media paths
    images: str  # "/images/2026/11/"


class _Days(dict[int, _Day]):
    """Day count since 1970-01-01 -> its strings, filled on demand."""

    def __missing__(self, day: int) -> _Day:
        when = date.fromordinal(_EPOCH_ORDINAL + day)
        found = self[day] = _Day(when.isoformat(), f"{when:%Y/%m/%d}", when.weekday(),
                                 f"ex-{when.year}-", f"{when:%Y/%m}", f"/images/{when:%Y/%m}/")
        return found


@dataclass(slots=True)  # not frozen: made per article, and frozen ones build slower
class _Headline:
    """What other articles need to link to one, so it is drawn ahead of its body."""

    index: int
    id: str
    story: _Story
    published: int  # POSIX seconds
    day: _Day  # of publication in the publisher's time zone
    path: str


class _Generator:
    """One run: the random stream, the text pools built from it and the sections."""

    def __init__(self, seed: int, start: datetime, origin: str, sections: Iterable[str],
                 spacing: float, stories: int):
        self.rng = random.Random(seed)
        self.rnd = self.rng.random
        self.origin = origin.rstrip("/")
        self.start = int(start.timestamp())
        self.spacing = spacing
        self.sections = tuple(self._section(text) for text in sections)
        if not self.sections:
            raise ValueError("at least one section is needed")
        self.paragraphs = {
            country: [self._paragraph(country) for _ in range(_PARAGRAPHS_PER_COUNTRY)]
            for country in _ALL_COUNTRIES
        }
        self.photos = {
            country: [self._photo(country) for _ in range(_PHOTOS_PER_COUNTRY)]
            for country in _ALL_COUNTRIES
        }
        self.shapes = [self._shape() for _ in range(1 << _SHAPE_BITS)]
        self.story_count = stories
        self.stories: list[_Story] = []
        self.slugs: set[str] = set()
        self.days = _Days()

    @staticmethod
    def _section(text: str) -> _Section:
        names = split_section(text)
        return _Section("/".join(names), names, section_slug(names),
                        _FOCUS.get(names[-1], _ALL_COUNTRIES))

    def pick(self, items: Sequence[T]) -> T:
        return items[int(self.rnd() * len(items))]

    def _slots(self, focus: Sequence[str]) -> tuple[dict[str, str], str]:
        """Values for the text templates, and the tag of the chosen topic."""
        pick, rnd = self.pick, self.rnd
        a = pick(focus)
        b = pick(_ALL_COUNTRIES)
        while b == a:
            b = pick(_ALL_COUNTRIES)
        a_adjective, a_cities = _COUNTRIES[a]
        b_adjective, b_cities = _COUNTRIES[b]
        topic, tag = pick(_TOPICS)
        slots = {
            "a": a, "A": a_adjective, "city": pick(a_cities),
            "b": b, "B": b_adjective, "bcity": pick(b_cities),
            "role": pick(_ROLES), "topic": topic, "deal": pick(_DEALS), "day": pick(_DAYS),
            "nth": pick(_NTH), "amount": f"{1 + rnd() * 29:.1f}", "pct": f"{5 + rnd() * 40:.1f}",
            "mag": f"{4 + rnd() * 3:.1f}", "oil": str(60 + int(rnd() * 35)),
        }
        return slots, tag

    def _paragraph(self, country: str) -> str:
        slots = self._slots((country,))[0]
        sentences = self.rng.sample(_SENTENCES, 2 + int(self.rnd() * 2))
        return "<p>" + " ".join(s.format_map(slots) for s in sentences) + "</p>"

    def _photo(self, country: str) -> _Photo:
        caption = self.pick(_CAPTIONS).format_map(self._slots((country,))[0])
        credit = self.pick(_CREDITS)
        fields: dict[str, Any] = {"caption": caption, "credit": credit}
        if self.rnd() < 0.5:
            fields["width"], fields["height"] = self.pick(_IMAGE_SIZES)
        if self.rnd() < 0.9:
            fields["type"] = "image/jpeg"
        on_cdn = self.rnd() < 0.25
        cdn = f"https://cdn.photos-agency.example/{slugify(credit)}/" if on_cdn else ""
        caption = html.escape(caption)
        figure_end = (f'" alt="{caption}"><figcaption>{caption} (Photo by {credit})'
                      "</figcaption></figure>\n")
        return _Photo(cdn, fields, figure_end)

    def _shape(self) -> _Shape:
        """The per-article probabilities, all in one place."""
        rnd, pick, sample = self.rnd, self.pick, self.rng.sample
        first = int(rnd() * (_LOOKAHEAD - _RELATED_OFFSETS[-1]))
        related = pick((0,) * 35 + (1,) * 30 + (2,) * 20 + (3,) * 15)
        photos = pick((0,) * 15 + (1,) * 64 + (2,) * 21)
        authors = pick((0,) * 15 + (1,) * 65 + (2,) * 20)
        language = rnd()
        return _Shape(
            zulu=rnd() < 0.4,
            absolute=rnd() < 0.1,
            section_list=rnd() < 0.4,
            edited_after=600 + int(rnd() * 6 * 3600) if rnd() < 0.2 else 0,
            summary=rnd() < 0.7,
            related=tuple(first + offset for offset in _RELATED_OFFSETS[:related]),
            photos=tuple(sample(range(_PHOTOS_PER_COUNTRY), photos)),
            figure=rnd() < 0.5,
            read_more=rnd() < 0.7,
            background=rnd() < 0.5,
            foreign=pick(_FOREIGN_LINKS) if rnd() < 0.2 else "",
            hostile=pick(_HOSTILE) if rnd() < 0.02 else "",
            authors=tuple(sample(_AUTHORS, authors)),
            tags=pick((0,) * 10 + (1,) * 50 + (2,) * 40),
            language="en" if language < 0.95 else "en-GB" if language < 0.97 else None,
            video=(pick(("mp4", "mp4", "hls")), pick(_QUALITIES), 30 + int(rnd() * 871))
            if rnd() < 0.15 else None,
            deleted=rnd() < 0.01,
        )

    def _story(self) -> _Story:
        """A headline not used before in this run (so URLs stay unique)."""
        while True:
            section = self.pick(self.sections)
            title_template, lead_template, names_b, names_topic = self.pick(_HEADLINES)
            slots, topic_tag = self._slots(section.focus)
            title = title_template.format_map(slots)
            slug = "-".join(title.lower().translate(_PUNCTUATION).split())
            if slug not in self.slugs:
                break
        self.slugs.add(slug)
        lead = lead_template.format_map({**slots, "day": "\0"})  # \0 marks the weekday
        lead_html = f"<p>{html.escape(lead, quote=False)}</p>"
        # 2–4 paragraphs: with the lead and 0–3 link paragraphs, bodies have 3–8
        size = 2 + int(self.rnd() * 3)
        first = int(self.rnd() * (_PARAGRAPHS_PER_COUNTRY - size))
        paragraphs = self.paragraphs[slots["a"]][first:first + size]
        middle = (size + 1) // 2
        tags = (slots["a"],) + (slots["b"],) * names_b + (topic_tag,) * names_topic
        extra = self.pick(_TAGS)
        return _Story(
            section=section,
            country=slots["a"],
            title=title,
            title_html=html.escape(title, quote=False),
            slug=slug,
            leads=tuple(lead.replace("\0", day) for day in _DAYS),
            leads_html=tuple(lead_html.replace("\0", day) for day in _DAYS),
            opening="\n".join(paragraphs[:middle]),
            closing="\n".join(paragraphs[middle:]),
            tags=tags,
            more_tags=tags if extra in tags else (*tags, extra),
        )

    def stamp(self, seconds: int, zulu: bool) -> str:
        """RFC 3339 in UTC with "Z", or in the publisher's +03:30 (datetime is too slow here)."""
        day, rest = divmod(seconds if zulu else seconds + _TEHRAN_SECONDS, 86400)
        offset = "Z" if zulu else "+03:30"
        return f"{self.days[day].iso}{_MINUTES[rest // 60]}{_SECONDS[rest % 60]}{offset}"

    def headline(self, index: int) -> _Headline:
        """Called for index 0, 1, 2, …: the first stories are new, later ones cycle."""
        if index < self.story_count:
            self.stories.append(self._story())
        story = self.stories[index % self.story_count]
        published = int(self.start - self.spacing * (index + 0.9 * self.rnd()))
        day = self.days[(published + _TEHRAN_SECONDS) // 86400]
        path = f"/{story.section.slug}/{day.path}/{story.slug}"
        return _Headline(index, day.id_prefix + str(index + 1).zfill(6), story, published, day,
                         path)

    def article(self, head: _Headline, ahead: deque[_Headline], count: int) -> dict[str, Any]:
        """The document of `head`; `ahead` are the next (older) headlines, for links."""
        shape = self.shapes[self.rng.getrandbits(_SHAPE_BITS)]
        story = head.story
        doc: dict[str, Any] = {
            "id": head.id,
            "url": self.origin + head.path if shape.absolute else head.path,
            "section": list(story.section.names) if shape.section_list else story.section.text,
            "title": story.title,
            "published": self.stamp(head.published, shape.zulu),
        }
        if shape.edited_after:  # but not after `start`, the generator's "now"
            edited = min(head.published + shape.edited_after, max(self.start, head.published))
            doc["updated"] = self.stamp(edited, shape.zulu)
        if shape.summary:
            doc["summary"] = story.leads[head.day.weekday]
        related = [ahead[position] for position in shape.related] if shape.related else []
        if related and ahead[-1].index >= count:  # near the end of the run
            related = [other for other in related if other.index < count]
        images, figure = self._images(head, shape) if shape.photos else ([], "")
        doc["body"] = self._body(head, shape, figure, related)
        if shape.authors:
            doc["authors"] = list(shape.authors)
        if shape.tags:
            doc["tags"] = list(story.tags if shape.tags == 1 else story.more_tags)
        if shape.language:
            doc["language"] = shape.language
        if images:
            doc["images"] = images
        if shape.video:
            doc["videos"] = [self._video(head, *shape.video)]
        if related:
            doc["related"] = [{"title": other.story.title, "url": other.path} for other in related]
        if shape.deleted:
            doc["status"] = "deleted"
        return doc

    def _images(self, head: _Headline, shape: _Shape) -> tuple[list[dict[str, Any]], str]:
        """The shape's photos with new file names, and the lead one as a <figure> maybe."""
        photos = self.photos[head.story.country]
        ours = head.day.images
        images = []
        for position in shape.photos:
            photo = photos[position]
            url = f"{photo.cdn or ours}{self.rng.getrandbits(32).to_bytes(4).hex()}.jpg"
            images.append({"url": url, **photo.fields})
        lead = photos[shape.photos[0]]
        if shape.figure and not lead.cdn:
            return images, f'<figure><img src="{images[0]["url"]}{lead.figure_end}'
        return images, ""

    def _video(self, head: _Headline, kind: str, quality: str, duration: int) -> dict[str, Any]:
        name = self.rng.getrandbits(40).to_bytes(5).hex()
        if kind == "mp4":
            url = f"https://video.news.example/{head.day.month}/{name}.mp4"
        else:
            url = f"https://stream.news.example/hls/{name}/master.m3u8"
        return {
            "url": url,
            "type": kind,
            "quality": quality,
            "duration": duration,
            "thumbnail": f"{head.day.images}{name}-thumb.jpg",
        }

    def _body(self, head: _Headline, shape: _Shape, figure: str, related: list[_Headline]
              ) -> str:
        """The lead, maybe a figure, the story's paragraphs with up to 3 link paragraphs."""
        story = head.story
        links = ""
        if related and shape.read_more:
            links = (f'<p>Read More: <a href="{related[0].path}">'
                     f"{related[0].story.title_html}</a></p>\n")
        if len(related) > 1 and shape.background:
            earlier = related[-1]
            links += (f'<p>For background, see our earlier report: <a href="{self.origin}'
                      f'{earlier.path}">{earlier.story.title_html}</a>.</p>\n')
        links += shape.foreign
        if shape.hostile:
            figure = "<script>alert(1)</script>\n" + figure
            links += shape.hostile
        lead = story.leads_html[head.day.weekday]
        return f"{lead}\n{figure}{story.opening}\n{links}{story.closing}"


def generate_articles(
    count: int,
    *,
    seed: int = 1,
    start: datetime = DEFAULT_START,
    origin: str = "https://news.example",
    sections: Iterable[str] = DEMO_SECTIONS,
    spacing_seconds: float = 900,
    stories: int = STORIES,
) -> Iterator[dict[str, Any]]:
    """Yield `count` article documents, newest first going back in time from `start` by
    ~spacing_seconds each (with jitter).

    The same arguments give the same articles; a longer run starts with the articles of a
    shorter one, except for links the shorter one drops because they would point past its end.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    generator = _Generator(seed, start, origin, sections, spacing_seconds, stories)
    return _stream(generator, count)


def _stream(generator: _Generator, count: int) -> Iterator[dict[str, Any]]:
    """Headlines are drawn _LOOKAHEAD articles ahead, so bodies can link to older articles."""
    article, headline = generator.article, generator.headline
    head = headline(0)
    ahead = deque(headline(index) for index in range(1, _LOOKAHEAD + 1))
    for upcoming in range(_LOOKAHEAD + 1, count + _LOOKAHEAD + 1):
        yield article(head, ahead, count)
        head = ahead.popleft()
        ahead.append(headline(upcoming))


def write_jsonl(path: str | Path, articles: Iterable[dict[str, Any]]) -> int:
    """Write one compact JSON object per line (UTF-8); return how many were written."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for article in articles:
            out.write(json.dumps(article, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            written += 1
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write generated articles as JSON Lines."""
    parser = argparse.ArgumentParser(prog="python bench/article_generator.py",
                                     description="Generate demo article documents (JSON Lines).")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"number of articles (default {DEFAULT_COUNT})")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output file (default: the demo's feedsvc/demo/articles.jsonl)")
    args = parser.parse_args(argv)
    written = write_jsonl(args.out, generate_articles(args.count, seed=args.seed))
    print(f"wrote {written} articles to {args.out}")


if __name__ == "__main__":
    main()
