"""Shared fixtures for the end-to-end tests.

VMM (environment) selects the binary under test, so the same suite runs
against the normal build and the ASan/UBSan build.
"""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def vmm_bin():
    # Absolute: a bare "vmm" would be looked up in PATH by exec.
    path = pathlib.Path(os.environ.get("VMM", ROOT / "vmm")).resolve()
    assert path.exists(), f"{path} not built: run make"
    return path


@pytest.fixture(scope="session")
def guest():
    """Paths of the test guest in its three boot formats."""
    out = ROOT / "tests" / "guest" / "out"
    images = {
        "elf": out / "guest.elf",
        "pvh": out / "guest-pvh.elf",
        "bzimage": out / "guest.bzImage",
    }
    for p in images.values():
        assert p.exists(), f"{p} not built: run make"
    return images
