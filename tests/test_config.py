"""Configuration: the repository's file, environment overrides, and errors that name the key."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from conftest import ROOT
from feedsvc.cli import main
from feedsvc.config import ConfigError, load_settings, settings_from_mapping

CONFIG = ROOT / "config" / "feedsvc.toml"


def test_the_demo_site_configuration():
    s = load_settings(CONFIG, environ={})
    assert s.origin == "https://news.example"
    assert s.mirrors == ("https://news-mirror.example", "https://example-news.tv")
    assert [sec.path for sec in s.sections] == [
        "news", "news/turkey", "news/middle-east", "news/iran", "world"]
    assert s.section_by_path()["news/middle-east"].title == "Middle East"
    assert s.items_per_feed == 50 and s.refresh_interval == 60
    assert s.timezone.key == "Asia/Tehran"
    assert s.redis_url is None
    assert s.database_url == "sqlite:///var/feedsvc.sqlite3"


def test_environment_overrides_the_file():
    s = load_settings(CONFIG, environ={
        "DATABASE_URL": "postgres://u@db/feeds", "REDIS_URL": "redis://cache:6379/2",
        "PORT": "9000"})
    assert s.database_url == "postgresql+psycopg://u@db/feeds"
    assert s.redis_url == "redis://cache:6379/2"
    assert s.port == 9000


def test_feedsvc_config_names_the_file(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text('[site]\ntitle = "Other"\n')
    s = load_settings(environ={"FEEDSVC_CONFIG": str(path)})
    assert s.site_title == "Other" and s.source == str(path)
    assert s.sections == () and s.origin == "http://localhost:8000"  # defaults for the rest


@pytest.mark.parametrize(("raw", "environ", "message"), [
    ({"site": {"origin": "news.example"}}, {}, "site.origin: 'news.example' is not an http(s)"),
    ({"site": {"origin": "https://news.example/path"}}, {}, "site.origin: "),
    ({"site": {"mirrors": ["ftp://x"]}}, {}, "site.mirrors: "),
    ({"site": {"timezone": "Mars/Olympus"}}, {}, "site.timezone: 'Mars/Olympus' is not an IANA"),
    ({"site": {"titel": "typo"}}, {}, "site.titel: unknown key"),
    ({"sit": {}}, {}, "sit: unknown key"),
    ({"feeds": {"items_per_feed": "50"}}, {}, "feeds.items_per_feed: must be int, not str"),
    ({"feeds": {"items_per_feed": 0}}, {}, "feeds.items_per_feed: must be between 1 and 1000"),
    ({"feeds": {"refresh_interval": True}}, {}, "feeds.refresh_interval: must be int"),
    ({"store": {"database_url": "mysql://x"}}, {}, "store.database_url: 'mysql://x' must be"),
    ({}, {"PORT": "eighty"}, "PORT: 'eighty' is not a whole number"),
    ({}, {"PORT": "70000"}, "PORT: 70000 is not a TCP port"),
    ({}, {"REDIS_URL": "localhost:6379"}, "REDIS_URL: 'localhost:6379' must be a redis://"),
    ({"sections": [{"title": "No name"}]}, {}, "sections[0].name: must be a section name"),
    ({"sections": [{"name": "A"}, {"name": " a "}]}, {}, "sections[1].name: ' a ' is listed twice"),
    ({"sections": [{"name": "A", "colour": "red"}]}, {}, "sections[0].colour: unknown key"),
    ({"site": {"origin": "https://a.example", "mirrors": ["https://a.example"]}}, {},
     "site.mirrors: must not repeat site.origin"),
])
def test_invalid_settings_name_the_key_and_the_reason(raw, environ, message):
    with pytest.raises(ConfigError) as error:
        settings_from_mapping(raw, environ, source="test.toml")
    assert message in str(error.value)


def test_check_config_prints_the_effective_settings():
    result = CliRunner().invoke(main, ["--config", str(CONFIG), "check-config"],
                                env={"PORT": "8123", "DATABASE_URL": "", "REDIS_URL": ""})
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["web.port"] == 8123
    assert printed["site.origin"] == "https://news.example"
    assert {s["path"] for s in printed["sections"]} >= {"news/turkey", "world"}


def test_an_invalid_file_stops_a_command_with_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[feeds]\nitems_per_feed = -3\n')
    result = CliRunner().invoke(main, ["--config", str(bad), "refresh"])
    assert result.exit_code != 0
    assert "feeds.items_per_feed: must be between 1 and 1000" in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[site\n")
    result = CliRunner().invoke(main, ["--config", str(broken), "check-config"])
    assert result.exit_code != 0 and "not valid TOML" in result.output


def test_check_config_output_hides_passwords():
    settings = settings_from_mapping({}, environ={
        "DATABASE_URL": "postgresql://feeds:s3cret@db.example/feeds",
        "REDIS_URL": "redis://:hunter2@cache.example:6379/0"})
    described = json.dumps(settings.describe())
    assert "s3cret" not in described and "hunter2" not in described
    assert "postgresql+psycopg://feeds:***@db.example/feeds" in described
    assert settings.database_url.endswith("feeds:s3cret@db.example/feeds")  # still used as is
    sentinel = settings_from_mapping({}, environ={
        "REDIS_URL": "redis+sentinel://:hunter2@s1:26379,s2:26379/feeds?sentinel_password=x%26y"})
    described = json.dumps(sentinel.describe())
    assert "hunter2" not in described and "x%26y" not in described
    assert "redis+sentinel://:***@s1:26379,s2:26379/feeds?sentinel_password=***" in described


GOOD_HASH = "sha256:" + "ab" * 32


@pytest.mark.parametrize("tokens, message", [
    ([{"name": "cms"}], "api.tokens: [0] must be a table with exactly `name` and `hash`"),
    ([{"name": "cms", "hash": "secret"}], "api.tokens: [0].hash must be `sha256:`"),
    ([{"name": "", "hash": GOOD_HASH}], "api.tokens: [0].name must be a non-empty"),
    ([{"name": "a", "hash": GOOD_HASH}, {"name": "a", "hash": "sha256:" + "cd" * 32}],
     "api.tokens: [1].name 'a' is listed twice"),
    ([{"name": "a", "hash": GOOD_HASH}, {"name": "b", "hash": GOOD_HASH}],
     "api.tokens: [1].hash is the same as another token's"),
])
def test_api_tokens_are_checked_with_the_key(tokens, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_mapping({"api": {"tokens": tokens}}, source="test.toml")


def test_check_config_names_the_api_tokens_but_never_prints_their_hashes():
    settings = settings_from_mapping({"api": {"tokens": [{"name": "cms", "hash": GOOD_HASH}]}})
    described = json.dumps(settings.describe())
    assert settings.describe()["api.tokens"] == ["cms"] and GOOD_HASH not in described
