"""Configuration (docs/contracts.md): one TOML file, validated in one typed place, overridden by
env vars.

The options are a table (`_OPTIONS`) of key, type, default and check, in the manner of
Miniflux: adding an option is one row, and every error names the dotted key and the reason.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedsvc.model import ContentMode, Section, ancestor_paths, section_slug, split_section
from feedsvc.redis_client import parse

DEFAULT_CONFIG_PATH = Path("config/feedsvc.toml")
DEFAULT_DATABASE_URL = "sqlite:///var/feedsvc.sqlite3"
# `feedsvc api hash-token` writes this: "sha256:" and 64 hex digits (docs/security.md).
TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the key and the reason."""


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A bearer token of the ingest API: its name (in the logs) and the hash of its value."""

    name: str
    hash: str


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings after the file, the defaults and the environment are combined."""

    site_title: str
    site_description: str
    language: str
    timezone: ZoneInfo
    origin: str
    mirrors: tuple[str, ...]
    mirror_footer: bool
    items_per_feed: int
    refresh_interval: int
    full_rebuild_interval: int
    websub_hubs: tuple[str, ...]
    author_emails: bool  # authors' addresses in RSS <author> too, not only in Atom
    content: ContentMode  # feeds carry each article's body, or an excerpt and a link to it
    excerpt_length: int
    tag_feed_idle_days: int  # a tag or author feed not polled for this long is not refreshed
    listed_labels: int  # the most used tags, and authors, listed in the OPML and index page
    leader_lease: int
    change_overlap: int
    scheduler_metrics_port: int  # 0: the scheduler serves no /metrics
    database_url: str
    replica_url: str | None
    pool_size: int
    pool_max_overflow: int
    pool_timeout: int
    statement_timeout: int
    redis_url: str | None
    cache_prefix: str
    host: str
    port: int
    trusted_proxies: tuple[str, ...]
    rate_limit: float
    rate_limit_burst: int
    reach_enabled: bool
    reach_rollup_interval: int
    admin_token_hash: str        # "": no bearer token accepted
    admin_password_hash: str     # "": no Basic-auth password accepted
    admin_user: str
    admin_listen: tuple[str, int] | None  # None: the admin is served on the public port
    api_tokens: tuple[ApiToken, ...] = ()  # none: the ingest API is off
    api_max_body_bytes: int = 32 * 1024 * 1024
    api_rate_limit: float = 10.0
    api_rate_limit_burst: int = 20
    sections: tuple[Section, ...] = field(default=())
    source: str = "(defaults)"

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every origin the site answers on, canonical first."""
        return (self.origin, *self.mirrors)

    @property
    def cache_ttl(self) -> int:
        """How long a cache entry lives past its last write: three full rebuilds, each of
        which rewrites every live feed, so only orphans expire."""
        return 3 * self.full_rebuild_interval

    @property
    def admin_enabled(self) -> bool:
        """Whether the operator page is served at all (off unless configured)."""
        return bool(self.admin_token_hash or self.admin_password_hash or self.admin_listen)

    def section_by_path(self) -> dict[str, Section]:
        return {s.path: s for s in self.sections}

    def content_of(self, section_path: str) -> ContentMode:
        """What the feeds carry of an article filed under `section_path`: as the nearest
        configured section (itself, else an ancestor) that sets `content` says, else the
        site's `feeds.content`. A property of the article, not of the feed: an excerpted
        article is excerpted in every feed it appears in, so its body is in none."""
        configured = self.section_by_path()
        for path in reversed(ancestor_paths(section_path)[1:]):
            section = configured.get(path)
            if section is not None and section.content is not None:
                return section.content
        return self.content

    def describe(self) -> dict[str, Any]:
        """The settings as plain values, for `feedsvc check-config`."""
        return {
            "source": self.source,
            **{name: _plain(getattr(self, attr)) for name, attr in _DESCRIBED},
            "sections": [
                {"path": s.path, "name": "/".join(s.names), "title": s.title,
                 "description": s.description, "content": s.content}
                for s in self.sections
            ],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, ZoneInfo):
        return value.key
    if isinstance(value, ApiToken):
        return value.name  # never the hash
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def redact(url: str) -> str:
    """A store or Redis URL as it may be shown: without its passwords."""
    return _SENTINEL_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))


_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")
_SENTINEL_PASSWORD = re.compile(r"([?&]sentinel_password=)[^&]*")


# ---- checks ---------------------------------------------------------------------------------

def _origin(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{value!r} must be an origin only (scheme://host[:port]), no path")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _timezone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone") from exc


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError(f"must be positive, not {value}")
    return value


def _non_negative(value: float) -> float:
    """Kept as the type the option's row checked (int or float)."""
    if not 0 <= value < math.inf:  # nan fails too
        raise ValueError(f"must be a finite number, not negative, not {value}")
    return value


def _positive_rate(value: float) -> float:
    if not 0 < value < math.inf:  # nan fails too
        raise ValueError(f"must be a positive finite number, not {value}")
    return value


def _port(value: int) -> int:
    if not 0 < value < 65536:
        raise ValueError(f"{value} is not a TCP port")
    return value


def _port_or_off(value: int) -> int:
    return value and _port(value)


def _items(value: int) -> int:
    if not 1 <= value <= 1000:
        raise ValueError(f"must be between 1 and 1000, not {value}")
    return value


def _content(value: str) -> ContentMode:
    if value not in ("full", "excerpt"):
        raise ValueError(f"must be 'full' or 'excerpt', not {value!r}")
    return "full" if value == "full" else "excerpt"


def _excerpt_length(value: int) -> int:
    if not 50 <= value <= 10_000:
        raise ValueError(f"must be between 50 and 10000, not {value}")
    return value


def _nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _database_url(value: str) -> str:
    if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        raise ValueError(f"{value!r} must be a sqlite: or postgresql: URL")
    if value.startswith("postgres:"):  # the Heroku-style spelling
        value = "postgresql:" + value[len("postgres:"):]
    if value.startswith("postgresql:"):  # psycopg 3 is the driver we ship
        value = "postgresql+psycopg:" + value[len("postgresql:"):]
    return value


def _replica_url(value: str) -> str | None:
    return _database_url(value) if value else None


def _redis_url(value: str) -> str | None:
    if not value:
        return None
    if not value.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://",
                             "redis+cluster://")):
        raise ValueError(f"{value!r} must be a redis://, rediss://, unix://, redis+sentinel:// "
                         "or redis+cluster:// URL")
    parse(value)
    return value


def _secret_hash(value: str) -> str:
    """A hash as `feedsvc admin hash` prints it (werkzeug's `method:params$salt$hex`), never
    the secret itself."""
    if value and (not value.startswith(("scrypt:", "pbkdf2:")) or value.count("$") != 2):
        raise ValueError("must be a hash printed by `feedsvc admin hash`, not the secret")
    return value


def _listen(value: str) -> tuple[str, int] | None:
    """`host:port` (`[::1]:8001` for IPv6), or empty: none."""
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()):
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]"), _port(int(port))
def _api_tokens(values: list[Any]) -> tuple[ApiToken, ...]:
    tokens: dict[str, ApiToken] = {}
    for i, entry in enumerate(values):
        if not isinstance(entry, dict) or set(entry) != {"name", "hash"}:
            raise ValueError(f"[{i}] must be a table with exactly `name` and `hash`")
        name, digest = entry["name"], entry["hash"]
        if not isinstance(name, str) or not name.strip() or _CONTROL.search(name):
            raise ValueError(f"[{i}].name must be a non-empty single-line string")
        if not isinstance(digest, str) or not TOKEN_HASH.fullmatch(digest):
            raise ValueError(f"[{i}].hash must be `sha256:` and 64 hex digits, as "
                             "`feedsvc api hash-token` prints it")
        if name in tokens:
            raise ValueError(f"[{i}].name {name!r} is listed twice")
        if any(t.hash == digest for t in tokens.values()):
            raise ValueError(f"[{i}].hash is the same as another token's")
        tokens[name] = ApiToken(name, digest)
    return tuple(tokens.values())


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _each(check: Callable[[Any], Any]) -> Callable[[list[Any]], tuple[Any, ...]]:
    return lambda values: tuple(check(v) for v in values)


@dataclass(frozen=True, slots=True)
class _Option:
    key: str          # dotted TOML key
    attr: str         # Settings attribute
    type: type
    default: Any
    check: Callable[[Any], Any] = lambda v: v
    env: str | None = None


_OPTIONS: tuple[_Option, ...] = (
    _Option("site.title", "site_title", str, "feedsvc", _nonempty),
    _Option("site.description", "site_description", str, "News feeds"),
    _Option("site.language", "language", str, "en", _nonempty),
    _Option("site.timezone", "timezone", str, "UTC", _timezone),
    _Option("site.origin", "origin", str, "http://localhost:8000", _origin),
    _Option("site.mirrors", "mirrors", list, [], _each(_origin)),
    _Option("site.mirror_footer", "mirror_footer", bool, True),
    _Option("feeds.items_per_feed", "items_per_feed", int, 50, _items),
    _Option("feeds.refresh_interval", "refresh_interval", int, 60, _positive),
    _Option("feeds.full_rebuild_interval", "full_rebuild_interval", int, 3600, _positive),
    _Option("feeds.websub_hubs", "websub_hubs", list, [], _each(_url)),
    _Option("feeds.author_emails", "author_emails", bool, False),
    _Option("feeds.content", "content", str, "full", _content),
    _Option("feeds.excerpt_length", "excerpt_length", int, 600, _excerpt_length),
    _Option("feeds.tag_feed_idle_days", "tag_feed_idle_days", int, 7, _positive),
    _Option("feeds.listed_labels", "listed_labels", int, 100, _non_negative),
    _Option("scheduler.leader_lease", "leader_lease", int, 15, _positive),
    _Option("scheduler.change_overlap", "change_overlap", int, 30, _positive),
    _Option("scheduler.metrics_port", "scheduler_metrics_port", int, 0, _port_or_off),
    _Option("store.database_url", "database_url", str, DEFAULT_DATABASE_URL, _database_url,
            env="DATABASE_URL"),
    _Option("store.replica_url", "replica_url", str, "", _replica_url,
            env="DATABASE_REPLICA_URL"),
    _Option("store.pool_size", "pool_size", int, 5, _positive),
    _Option("store.pool_max_overflow", "pool_max_overflow", int, 10, _non_negative),
    _Option("store.pool_timeout", "pool_timeout", int, 30, _positive),
    _Option("store.statement_timeout", "statement_timeout", int, 30, _positive),
    _Option("cache.redis_url", "redis_url", str, "", _redis_url, env="REDIS_URL"),
    _Option("cache.key_prefix", "cache_prefix", str, "feedsvc:", _nonempty),
    _Option("web.host", "host", str, "127.0.0.1", _nonempty, env="HOST"),
    _Option("web.port", "port", int, 8000, _port, env="PORT"),
    _Option("web.trusted_proxies", "trusted_proxies", list, [], _each(str)),
    _Option("web.rate_limit", "rate_limit", float, 0.0, _non_negative),  # requests/s; 0: off
    _Option("web.rate_limit_burst", "rate_limit_burst", int, 20, _positive),
    _Option("reach.enabled", "reach_enabled", bool, True),
    _Option("reach.rollup_interval", "reach_rollup_interval", int, 60, _positive),
    _Option("admin.token_hash", "admin_token_hash", str, "", _secret_hash),
    _Option("admin.password_hash", "admin_password_hash", str, "", _secret_hash),
    _Option("admin.user", "admin_user", str, "admin", _nonempty),
    _Option("admin.listen", "admin_listen", str, "", _listen),
    _Option("api.tokens", "api_tokens", list, [], _api_tokens),
    _Option("api.max_body_bytes", "api_max_body_bytes", int, 32 * 1024 * 1024, _positive),
    _Option("api.rate_per_token", "api_rate_limit", float, 10.0,  # per token, per process
            _positive_rate),
    _Option("api.burst_per_token", "api_rate_limit_burst", int, 20, _positive),
)
_DESCRIBED = tuple((o.key, o.attr) for o in _OPTIONS)
_SECTION_KEYS = {"name", "title", "description", "content"}


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the config file (FEEDSVC_CONFIG, else config/feedsvc.toml when it exists, else
    defaults only), apply the environment overrides and validate everything."""
    environ = os.environ if environ is None else environ
    chosen = path or environ.get("FEEDSVC_CONFIG")
    if chosen is None and DEFAULT_CONFIG_PATH.is_file():
        chosen = DEFAULT_CONFIG_PATH
    raw: dict[str, Any] = {}
    if chosen is not None:
        try:
            with open(chosen, "rb") as fh:
                raw = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"{chosen}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{chosen}: not valid TOML: {exc}") from exc
    return settings_from_mapping(raw, environ, source=str(chosen or "(defaults)"))


def settings_from_mapping(
    raw: Mapping[str, Any], environ: Mapping[str, str] | None = None, *, source: str = "(dict)"
) -> Settings:
    """Validate an already-parsed config mapping (the TOML document's shape)."""
    environ = environ or {}
    known_tables = {o.key.split(".")[0] for o in _OPTIONS} | {"sections"}
    for table in raw:
        if table not in known_tables:
            raise ConfigError(f"{source}: {table}: unknown key")
    values: dict[str, Any] = {}
    for option in _OPTIONS:
        table, name = option.key.split(".")
        section = raw.get(table, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {table}: must be a table")
        allowed = {o.key.split(".")[1] for o in _OPTIONS if o.key.startswith(table + ".")}
        unknown = set(section) - allowed
        if unknown:
            raise ConfigError(f"{source}: {table}.{sorted(unknown)[0]}: unknown key")
        value = section.get(name, option.default)
        if option.env and environ.get(option.env):
            value = environ[option.env]
            if option.type is int:
                try:
                    value = int(value)
                except ValueError:
                    raise ConfigError(f"{option.env}: {value!r} is not a whole number") from None
        if option.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # TOML writes 5 for 5.0
        if not isinstance(value, option.type) or (option.type is int and isinstance(value, bool)):
            raise ConfigError(
                f"{source}: {option.key}: must be {option.type.__name__}, "
                f"not {type(value).__name__}"
            )
        try:
            values[option.attr] = option.check(value)
        except (ValueError, TypeError) as exc:
            where = option.env if option.env and environ.get(option.env) else option.key
            raise ConfigError(f"{source}: {where}: {exc}") from None
    values["sections"] = _sections(raw.get("sections", []), source)
    if values["origin"] in values["mirrors"]:
        raise ConfigError(f"{source}: site.mirrors: must not repeat site.origin")
    return Settings(**values, source=source)


def _sections(raw: Any, source: str) -> tuple[Section, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: sections: must be an array of tables ([[sections]])")
    sections: dict[str, Section] = {}
    for i, entry in enumerate(raw):
        where = f"{source}: sections[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table")
        unknown = set(entry) - _SECTION_KEYS
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key")
        name = entry.get("name")
        if not isinstance(name, str) or not section_slug(split_section(name)).strip("/"):
            raise ConfigError(f"{where}.name: must be a section name like 'News/Turkey'")
        names = split_section(name)
        if any(not part for part in names):
            raise ConfigError(f"{where}.name: {name!r} has an empty level")
        for key in ("title", "description"):
            if not isinstance(entry.get(key, ""), str):
                raise ConfigError(f"{where}.{key}: must be str")
        content = entry.get("content")
        if content is not None:
            try:
                content = _content(content)
            except ValueError as exc:
                raise ConfigError(f"{where}.content: {exc}") from None
        section = Section(
            names=names,
            title=entry.get("title") or names[-1],
            description=entry.get("description", ""),
            content=content,
        )
        if section.path in sections:
            raise ConfigError(f"{where}.name: {name!r} is listed twice")
        sections[section.path] = section
    return tuple(sections.values())
