"""``keyfob --version`` prints the one version the package has, wherever it is read from.

The version is written once, as ``keyfob.__version__``; the packaging metadata (what pip shows,
what ``importlib.metadata`` answers), the OpenAPI document and the webhook ``User-Agent`` read
it from there.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from typer.testing import CliRunner

import keyfob
from keyfob.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def test_version_option_prints_the_version_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert (result.exit_code, result.output) == (0, f"keyfob {keyfob.__version__}\n")


def test_the_installed_metadata_carries_the_same_version() -> None:
    # Fails after a version bump until ``pip install -e .`` is run again: the metadata is stale.
    assert version("keyfob") == keyfob.__version__


def test_pyproject_reads_the_version_instead_of_writing_its_own() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())

    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "keyfob.__version__"}
