"""The installed package: version, type information, stubs matching the native module."""

from __future__ import annotations

import importlib.resources
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import redpool

REPO = Path(__file__).resolve().parents[2]


def test_version_is_the_cargo_version():
    cargo = (REPO / "Cargo.toml").read_text()
    workspace = cargo[cargo.index("[workspace.package]"):]
    version = re.search(r'^version\s*=\s*"([^"]+)"', workspace, re.M).group(1)
    assert redpool.__version__ == version
    assert redpool._native.__version__ == version


def test_the_installed_package_is_tested():
    # Not the source tree next to the tests (which has no native module).
    assert Path(redpool.__file__).resolve().parent != REPO / "python" / "redpool"


def test_type_information_ships():
    files = importlib.resources.files("redpool")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_native.pyi").is_file()


@pytest.mark.skipif(shutil.which("stubtest") is None and not shutil.which(sys.executable),
                    reason="no interpreter")
def test_stubs_match_the_native_module():
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed (tests/run.sh installs it)")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "redpool._native", "--ignore-missing-stub"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
