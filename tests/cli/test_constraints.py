"""constraints/test.txt, the pinned test environment (issue 12 #15), still fits pyproject.toml:
every dependency and test extra is pinned, at a version its range allows."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints" / "test.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints/test.txt: {line!r} is not NAME==VERSION"
            out[canonicalize_name(name)] = version
    return out


def test_every_requirement_is_pinned_inside_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    for text in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in constraints/test.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints/test.txt pins {req.name}=={pinned[name]}, outside {text!r}")


def test_ci_and_the_readme_install_with_it() -> None:
    command = "-c constraints/test.txt -e '.[test]'"
    assert command in (ROOT / ".ci" / "run").read_text()
    assert command in (ROOT / "README.md").read_text()
