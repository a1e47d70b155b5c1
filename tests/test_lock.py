"""uv.lock, which the README's install and tests/run.sh install from, was made from the ranges
pyproject.toml declares today, and pins each requirement inside its range: a fresh machine gets
what CI passed with, and an edited range without a refreshed lock fails here first."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import ROOT

Declared = tuple[str, frozenset[str], str, str]  # name, extras, specifier, marker


def _declared(requirements: Iterable[Requirement]) -> set[Declared]:
    return {(canonicalize_name(r.name), frozenset(r.extras), str(r.specifier),
             str(r.marker or "")) for r in requirements}


def _pyproject() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    for extra, lines in project.get("optional-dependencies", {}).items():
        for line in lines:
            requirement = Requirement(line)
            requirement.marker = Requirement(f"x; extra == '{extra}'").marker
            requirements.append(requirement)
    return requirements


def _lock() -> dict:
    return tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))


def _locked_requirements(lock: dict) -> list[Requirement]:
    """The project's requirements as the lock recorded them when it was made."""
    [project] = [p for p in lock["package"] if p.get("source") == {"editable": "."}]
    return [Requirement(f"{r['name']}{'[' + ','.join(r['extras']) + ']' if 'extras' in r else ''}"
                        f"{r.get('specifier', '')}{'; ' + r['marker'] if 'marker' in r else ''}")
            for r in project["metadata"]["requires-dist"]]


def test_the_lock_was_made_from_the_ranges_pyproject_declares():
    lock = _lock()
    declared, locked = _declared(_pyproject()), _declared(_locked_requirements(lock))
    assert declared == locked, (
        f"pyproject.toml and uv.lock disagree: only in pyproject {sorted(declared - locked)}, "
        f"only in the lock {sorted(locked - declared)}; refresh the lock (README, 'The lock')")


def test_every_locked_requirement_is_inside_its_range_and_hashed():
    packages = {canonicalize_name(p["name"]): p for p in _lock()["package"]}
    for requirement in _pyproject():
        package = packages[canonicalize_name(requirement.name)]
        assert Version(package["version"]) in requirement.specifier, (requirement, package)
        files = package.get("wheels", []) + ([package["sdist"]] if "sdist" in package else [])
        assert files and all(f["hash"].startswith("sha256:") for f in files), package["name"]
