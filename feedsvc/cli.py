"""The `feedsvc` command line (click)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

from feedsvc.config import ConfigError, Settings, load_settings
from feedsvc.logs import LogFormatError
from feedsvc.logs import configure as configure_logging

log = logging.getLogger("feedsvc")
DEMO_DIR = Path(__file__).parent / "demo"
DEMO_PAGE_PUBLISHED = "2026-11-20T14:00:00+03:30"


def _settings(ctx: click.Context) -> Settings:
    try:
        return load_settings(ctx.obj.get("config"))
    except ConfigError as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="Config file (default: $FEEDSVC_CONFIG, else config/feedsvc.toml).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.pass_context
def main(ctx: click.Context, config: str | None, log_level: str) -> None:
    """feedsvc: news feeds per section, on every mirror address."""
    try:
        configure_logging(log_level)
    except LogFormatError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = {"config": config}


def _port_option(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """Checked before anything is loaded; one line, like every other start failure."""
    if value is not None and not 0 < value < 65536:
        raise click.ClickException(f"--port {value} is not a TCP port (1-65535)")
    return value


def _listen_options(command: Callable[..., None]) -> Callable[..., None]:
    """--host and --port, for the commands that serve."""
    command = click.option("--port", type=int, default=None, callback=_port_option,
                           help="Port (default: $PORT, else web.port).")(command)
    return click.option("--host", default=None,
                        help="Address to bind (default: web.host).")(command)


@main.command("check-config")
@click.option("--connect", is_flag=True,
              help="Instead, check that the store, Redis and WebSub hubs answer as needed: one "
                   "line per check, exit 1 on any failure.")
@click.pass_context
def check_config(ctx: click.Context, connect: bool) -> None:
    """Validate the configuration and print the effective settings."""
    settings = _settings(ctx)
    if not connect:
        click.echo(json.dumps(settings.describe(), indent=2, ensure_ascii=False))
        return
    from feedsvc.doctor import checks

    click.echo(f"ok   config: {settings.source}")
    failed = False
    for check in checks(settings):
        click.echo(str(check))
        failed |= not check.ok
    ctx.exit(1 if failed else 0)


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--published", metavar="RFC3339",
              help="Publication date for page-text files, which carry none.")
@click.option("--id", "page_id", metavar="ID",
              help="The article id for one page-text file (importing it again with the same "
                   "id updates the article).")
@click.pass_context
def import_(ctx: click.Context, paths: tuple[Path, ...], published: str | None,
            page_id: str | None) -> None:
    """Import articles from JSON Lines or page-text files; exit 1 if any was rejected.
    Prints `ID PATH` for each page-text file imported."""
    from feedsvc.ingest.importer import Importer, ImportFailed
    from feedsvc.store import Store

    if page_id is not None and len(paths) != 1:
        raise click.UsageError("--id names the article of one page file; give one path")
    settings = _settings(ctx)
    store = Store.from_settings(settings)
    failure = None
    try:
        report = Importer(settings, store).import_paths(list(paths), published=published,
                                                        page_id=page_id)
    except ImportFailed as exc:
        failure, report = exc, exc.report
    for path, article_id in report.pages:
        click.echo(f"{article_id} {path}")
    click.echo(str(report), err=True)
    if report.accepted and settings.redis_url:  # else nobody can hear it (nor loads redis)
        from feedsvc.cache import open_cache

        open_cache(settings.redis_url, settings.cache_prefix, settings.cache_ttl).announce()
    if failure is not None:
        raise click.ClickException(f"import stopped: {failure}")
    ctx.exit(1 if report.rejected else 0)


@main.group()
def api() -> None:
    """The ingest API's tokens (docs/openapi.yaml, config `api.tokens`)."""


@api.command("hash-token")
def hash_token() -> None:
    """Print the config's hash of the token read from stdin (one line), for
    `api.tokens = [{name = "…", hash = "…"}]`. The token itself is never stored."""
    from feedsvc.ingest.tokens import WeakToken
    from feedsvc.ingest.tokens import hash_token as hashed

    token = sys.stdin.readline().rstrip("\r\n")
    try:
        click.echo(hashed(token))
    except WeakToken as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.pass_context
def refresh(ctx: click.Context) -> None:
    """Render every feed now and publish it to the cache (one shot, e.g. from cron)."""
    from feedsvc.refresh import Refresher
    from feedsvc.refresh.outage import OUTAGES, describe_outage
    from feedsvc.refresh.websub import WebSubPublisher
    from feedsvc.wiring import builder_of

    settings = _settings(ctx)
    websub = WebSubPublisher(settings.websub_hubs)
    try:
        report = Refresher(builder_of(settings), on_changed=websub.publish).full(progress=True)
    except OUTAGES as exc:
        # What was published stays; the next refresh (any scheduler's) redoes the rest.
        raise click.ClickException(f"refresh failed, {describe_outage(exc)}") from None
    finally:
        websub.close()
    click.echo(f"{report.feeds} feeds, {report.documents} documents, "
               f"{len(report.changed_urls)} changed, in {report.seconds:.2f}s", err=True)


@main.command()
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Run the refresh jobs until stopped (the Procfile `scheduler` process)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from feedsvc.wiring import builder_of, cache_of, refresh_service

    settings = _settings(ctx)
    if not settings.redis_url:
        log.warning("REDIS_URL is not set: this scheduler fills an in-process cache that no "
                    "web process can see")
    builder = builder_of(settings)
    service = refresh_service(settings, builder, BlockingScheduler())
    if settings.admin_listen:
        from feedsvc.cache import shared
        from feedsvc.web.admin import serve_admin

        try:
            serve_admin(settings, shared(builder.cache) if builder.cache else cache_of(settings))
        except OSError as exc:
            raise click.ClickException(f"cannot serve the admin on admin.listen: {exc}") from None
    if settings.scheduler_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.scheduler_metrics_port, addr=settings.host)
        log.info("scheduler metrics on http://%s:%d/metrics", settings.host,
                 settings.scheduler_metrics_port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # Procfile platforms stop with TERM
    try:
        service.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        service.shutdown()


@main.command()
@_listen_options
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Web server and scheduler in one process, on the configured store and cache."""
    _serve(_settings(ctx), host, port)


@main.command()
@_listen_options
@click.pass_context
def demo(ctx: click.Context, host: str | None, port: int | None) -> None:
    """`serve` on a fresh embedded store loaded with the sample articles."""
    from feedsvc.ingest.importer import Importer
    from feedsvc.store import Store

    settings = _settings(ctx)
    host, port = host or settings.host, port or settings.port
    local = _listening_origin(host, port)
    workdir = Path(tempfile.mkdtemp(prefix="feedsvc-demo-"))
    owner = os.getpid()
    try:
        # The listening address is one more address of the site, so that every link on it
        # (index, OPML, feeds, items) can be followed locally, rewritten as for a mirror.
        settings = dataclasses.replace(
            settings, database_url=f"sqlite:///{workdir / 'demo.sqlite3'}", redis_url=None,
            mirrors=tuple(a for a in dict.fromkeys([*settings.mirrors, local])
                          if a != settings.origin),
        )
        importer = Importer(settings, Store.from_settings(settings))
        report = importer.import_paths(sorted(DEMO_DIR.glob("*.jsonl")))
        report_page = importer.import_paths(sorted(DEMO_DIR.glob("*.txt")),
                                            published=DEMO_PAGE_PUBLISHED)
        log.info("demo store %s: %s, %s", workdir, report, report_page)
        log.info("demo site on %s/ (its links rewritten to that address)", local)
        _serve(settings, host, port)
    finally:
        # Not in the server's worker: forked from this process, it unwinds this stack too
        # when it exits, while the server may still need the store.
        if os.getpid() == owner:
            shutil.rmtree(workdir, ignore_errors=True)


def _listening_origin(host: str, port: int) -> str:
    """The origin a browser on this machine reaches `host:port` by."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host.lower()}:{port}"


def _serve(settings: Settings, host: str | None, port: int | None) -> None:
    from feedsvc.web.listen import CannotListen, check_can_listen
    from feedsvc.wiring import EmbeddedServer

    host, port = host or settings.host, port or settings.port
    try:  # gunicorn would retry a busy port five times, a line each, then exit
        check_can_listen(host, port)
    except CannotListen as exc:
        raise click.ClickException(str(exc)) from None
    EmbeddedServer(settings, host, port).run()


@main.group()
def admin() -> None:
    """The operator page /admin/ (README, "Reach")."""


@admin.command("hash")
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read the secret from the first line of standard input instead of asking.")
def admin_hash(from_stdin: bool) -> None:
    """Print the hash of a token or password, for admin.token_hash or admin.password_hash
    (scrypt; the secret itself is never stored)."""
    from werkzeug.security import generate_password_hash

    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = click.prompt("Token or password", hide_input=True, confirmation_prompt=True)
    if len(secret) < 12:
        raise click.ClickException("the secret must be at least 12 characters long")
    click.echo(generate_password_hash(secret, method="scrypt"))


@main.group()
def reach() -> None:
    """Reach: who reads the feeds (README, "Reach")."""


@reach.command("rollup")
@click.pass_context
def reach_rollup(ctx: click.Context) -> None:
    """Roll today's and yesterday's counts up into the store and publish the report, once
    (the scheduler's leader does it every reach.rollup_interval seconds)."""
    from feedsvc.refresh.outage import OUTAGES, describe_outage
    from feedsvc.refresh.reach import ReachRollup
    from feedsvc.store import Store
    from feedsvc.wiring import cache_of

    settings = _settings(ctx)
    cache = cache_of(settings)
    try:
        done = ReachRollup(Store.from_settings(settings), cache.reach(), cache).run()
    except OUTAGES as exc:
        raise click.ClickException(f"reach rollup failed, {describe_outage(exc)}") from None
    feeds = done.report["feeds"]
    click.echo(f"rolled up {done.days[0]} and {done.days[1]}: {len(feeds)} feeds, "
               f"{sum(f['subscribers'] for f in feeds)} subscribers today, "
               f"{done.pruned} old rows pruned, in {done.seconds:.2f}s", err=True)
