"""The package's arrows point one way (README "The way the data goes"): read from the source
files with `ast`, not by importing them, so a wrong arrow is caught even where nothing runs it.

A module's imports count wherever they appear in the file (inside functions, and under
`TYPE_CHECKING`: a type is a dependency too). Importing `a.b.c` also runs `a/__init__` and
`a/b/__init__`, so those count as imported as well."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "feedsvc"

# The miss path's one entry point: the module that reads a feed's articles from the store and
# renders every format on every address, which the web's miss path may use (and only it).
MISS_PATH_ENTRY = "feedsvc.build"
# The modules of render/ that each write one kind of document; none builds on another.
FORMAT_MODULES = frozenset({"feedsvc.render.feeds", "feedsvc.render.jsonfeed",
                            "feedsvc.render.roku", "feedsvc.render.site"})
# What store/ may import of feedsvc besides itself.
STORE_MAY_IMPORT = frozenset({"feedsvc", "feedsvc.config", "feedsvc.model"})


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _with_parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def _absolute(node: ast.ImportFrom, importer: str) -> str:
    if not node.level:
        return node.module or ""
    package = importer if modules()[importer].name == "__init__.py" else importer.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


@cache
def imports_of(importer: str) -> frozenset[str]:
    """Every module `importer` imports (any package, parents included); for `from a import b`
    also `a.b` when that is a module of feedsvc."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(modules()[importer].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, importer)
            found.update(_with_parents(base))
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if f"{base}.{alias.name}" in modules())
    found.discard(importer)
    return frozenset(found)


def feedsvc_imports(importer: str) -> frozenset[str]:
    return frozenset(name for name in imports_of(importer) if name in modules())


def reachable(start: str) -> set[str]:
    """The feedsvc modules `start` loads, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in feedsvc_imports(todo.pop()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def modules_of(package: str) -> list[str]:
    return [name for name in modules() if in_package(name, package)]


def wrong_arrows(importers: Iterable[str], forbidden: Iterable[str],
                 allowed: Iterable[str] = ()) -> list[str]:
    """'importer -> imported' for each import of a forbidden package that is not allowed."""
    forbidden, allowed = tuple(forbidden), set(allowed)
    return sorted(
        f"{importer} -> {name}"
        for importer in importers
        for name in feedsvc_imports(importer)
        if name not in allowed and any(in_package(name, package) for package in forbidden)
        # importing the allowed entry point also names its parent packages
        and not any(in_package(entry, name) for entry in allowed)
    )


def test_the_graph_reader_sees_the_package() -> None:
    """The rules below must be able to fail: the reader finds modules and their imports."""
    assert {"feedsvc.config", "feedsvc.store", "feedsvc.web.routes"} <= modules().keys()
    assert {"feedsvc.config", "feedsvc.model"} <= feedsvc_imports("feedsvc.store.repository")
    assert MISS_PATH_ENTRY in modules(), f"{MISS_PATH_ENTRY} is not a module of feedsvc"
    assert modules().keys() >= FORMAT_MODULES


def test_web_reaches_render_and_store_only_through_the_miss_path_entry() -> None:
    """web -> cache; a cache miss renders through the one entry point, nothing else of render,
    store or refresh (whose package loads both)."""
    arrows = wrong_arrows(modules_of("feedsvc.web"),
                          ["feedsvc.render", "feedsvc.store", "feedsvc.refresh"],
                          allowed=[MISS_PATH_ENTRY])
    assert not arrows, "\n".join(arrows)


def test_render_is_pure() -> None:
    """Articles in, bytes out: render reads no store, writes no cache, knows no web."""
    arrows = wrong_arrows(modules_of("feedsvc.render"),
                          ["feedsvc.store", "feedsvc.cache", "feedsvc.web", "feedsvc.refresh"])
    assert not arrows, "\n".join(arrows)


def test_store_knows_only_config_and_the_model() -> None:
    arrows = sorted(
        f"{importer} -> {name}"
        for importer in modules_of("feedsvc.store")
        for name in feedsvc_imports(importer)
        if not in_package(name, "feedsvc.store") and name not in STORE_MAY_IMPORT
    )
    assert not arrows, "\n".join(arrows)


def test_only_the_store_knows_sqlalchemy() -> None:
    """Everything else catches the store's own StoreUnavailable."""
    leaks = sorted(
        name for name in modules()
        if not in_package(name, "feedsvc.store") and "sqlalchemy" in imports_of(name)
    )
    assert not leaks, "\n".join(leaks)


def test_config_and_cache_do_not_import_each_other() -> None:
    config_reaches_cache = any(in_package(name, "feedsvc.cache")
                               for name in reachable("feedsvc.config"))
    cache_reaches_config = any(in_package(name, "feedsvc.config")
                               for module in modules_of("feedsvc.cache")
                               for name in reachable(module))
    assert not (config_reaches_cache and cache_reaches_config)


@pytest.mark.parametrize("module", sorted(FORMAT_MODULES))
def test_no_format_module_imports_another(module: str) -> None:
    assert feedsvc_imports(module) & (FORMAT_MODULES - {module}) == set()


def test_the_runtime_package_carries_no_benchmark_generator() -> None:
    """The article generator (word pools for the benchmarks) lives in bench/; the package keeps
    only the demo's data."""
    assert [name for name in modules_of("feedsvc.demo") if name != "feedsvc.demo"] == []


def test_the_ingest_api_is_mounted_by_the_composition_only() -> None:
    """The ingest API is an app of the ingest layer: the web neither imports it nor anything of
    ingest (nor the composition above both); ingest knows nothing of the web (the rate limit's
    token buckets are shared from feedsvc.tokenbucket); only feedsvc.wsgi, which composes the
    web process's app and loads the API on its first request, imports it."""
    arrows = wrong_arrows(modules_of("feedsvc.web"), ["feedsvc.ingest", "feedsvc.wsgi"])
    arrows += wrong_arrows(modules_of("feedsvc.ingest"), ["feedsvc.web", "feedsvc.wsgi"])
    arrows += sorted(f"{importer} -> feedsvc.ingest.api" for importer in modules()
                     if "feedsvc.ingest.api" in feedsvc_imports(importer)
                     and importer != "feedsvc.wsgi")
    assert not arrows, "\n".join(arrows)
