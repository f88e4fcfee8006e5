"""Shared fixtures for the end-to-end tests.

VMM (environment) selects the binary under test, so the same suite runs
against the normal build and the ASan/UBSan build.
"""
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from apiclient import Vmm  # noqa: E402

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


@pytest.fixture
def api(vmm_bin):
    """Factory: start VMMs with --api-sock (apiclient.Vmm, same arguments);
    all are killed afterwards, whatever the test did."""
    made = []

    def start(*args, env=None, **kw):
        v = Vmm(vmm_bin, args, env=env, **kw)
        made.append(v)
        return v

    yield start
    for v in made:
        v.close()


@pytest.fixture(scope="session")
def modules(vmm_bin):
    """The compile-time modules of the binary under test, from --version
    ("vmm 0.1.0 (modules: hugepages nested)"): the suite runs against the
    default build and the minimal one (make min)."""
    import re
    import subprocess
    out = subprocess.run([str(vmm_bin), "--version"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"\(modules: ([^)]*)\)", out)
    assert m, f"--version does not list the modules: {out!r}"
    return set() if m.group(1) == "none" else set(m.group(1).split())


@pytest.fixture
def needs_migration(modules):
    """Skip a test of the migration module in a build without it (the
    "not built in" refusals are tested on their own)."""
    if "migration" not in modules:
        pytest.skip("module migration not built in")
