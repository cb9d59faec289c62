"""What `make install` installs is pinned: requirements.lock holds an exact version of every
dependency pyproject.toml names, inside its range, and this environment has those versions."""

import importlib.metadata
import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
MAKEFILE = (ROOT / "Makefile").read_text()


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def dependencies() -> list[Requirement]:
    """pyproject.toml's dependencies and dev extras, as the installed package declares them."""
    return [Requirement(text) for text in importlib.metadata.requires("nmt") or []]


def test_every_dependency_is_pinned_inside_its_range_and_installed_at_that_version():
    pins = locked()
    for requirement in dependencies():
        name = canonicalize_name(requirement.name)
        if name == "torch":
            continue
        assert name in pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name} {pins[name]}, outside {requirement}: run `make lock`"
        )
        assert importlib.metadata.version(name) == pins[name], name


def test_torch_is_pinned_by_the_makefile_alone():
    assert "torch" not in locked()
    torch = re.search(r"^TORCH\s*\?=\s*torch==([\d.]+)$", MAKEFILE, re.M)
    assert torch and importlib.metadata.version("torch").split("+")[0] == torch.group(1)
    ranges = {canonicalize_name(r.name): r for r in dependencies()}
    assert ranges["torch"].specifier.contains(torch.group(1))


def test_the_install_takes_the_lock_and_nothing_else():
    recipe = MAKEFILE.split("$(VENV)/.installed:")[1].split("\n\n")[0]
    assert "-r $(LOCK)" in recipe and "--no-deps -e ." in recipe
    assert "[dev]" not in recipe  # the ranges would resolve anew
