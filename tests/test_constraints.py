"""The pinned install set still matches pyproject.toml, and the README and CI install it.

A dependency added or raised in pyproject.toml without regenerating constraints.txt
makes the README's install fail (pip refuses a requirement its constraint excludes)
or leaves the new package unpinned, back to pip's long searches: caught here, with
no network and no install.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]


def _pins(text: str) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==", f"line {number}: not a pin: {raw}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"line {number}: {req.name} pinned twice"
        pins[name] = Version(spec[0].version)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return [Requirement(text) for text in declared]


def _disagreements(requirements: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """What a forgotten regeneration looks like: a requirement unpinned or pinned outside it."""
    problems = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name} has no pin")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req.name}=={pin} does not satisfy {req}")
    return problems


def test_every_requirement_has_a_pin_that_satisfies_it():
    pins = _pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
    problems = _disagreements(_requirements(), pins)
    assert not problems, "regenerate: python3 scripts/update_constraints.py --check\n" + "\n".join(
        problems
    )


def test_a_forgotten_regeneration_is_caught():
    pins = _pins("numpy==1.26.4\n")
    problems = _disagreements([Requirement("numpy>=2"), Requirement("duckdb>=1.0")], pins)
    assert problems == ["numpy==1.26.4 does not satisfy numpy>=2", "duckdb has no pin"]


def test_the_project_and_its_installers_are_not_pinned():
    pins = _pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
    assert not {"segmerge", "pip", "setuptools", "wheel"} & set(pins)


def test_readme_and_ci_install_the_pinned_set_with_the_same_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = block.strip().splitlines()
    assert len(commands) == 2
    assert all("pip install -q -c constraints.txt -e " in command for command in commands)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == commands[1]
