"""What the tests that open pages in a browser share: Debian's headless
Chromium (chromium-headless-shell, the Makefile's DEB_PKGS), a network
namespace of the test's own with nothing but loopback (so a page that
reached for the network would fail), and where screenshots are kept.

Playwright's Python package drives that Chromium (executable_path): no
browser of Playwright's own is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")
ARTEFACTS_ENV = "WARDPROBE_TEST_ARTEFACTS"
_DEFAULT_ARTEFACTS = Path(__file__).parent / "artefacts"


def netns_missing() -> str | None:
    """Why a test cannot make a network namespace here (None: it can)."""
    if shutil.which("ip") is None:
        return "needs iproute2 for a network namespace"
    if os.geteuid() != 0:
        return "needs root for a network namespace"
    return None


def browser_missing() -> str | None:
    """Why a test cannot drive a browser here (None: it can)."""
    if CHROMIUM is None:
        return "chromium-headless-shell not installed (make setup installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install -e '.[dev]')"
    return netns_missing()


@contextmanager
def offline_netns(prefix: str, *, loopback: bool = True) -> Iterator[str]:
    """A network namespace with no route out: loopback only (up when
    `loopback`, for a server inside it), deleted afterwards."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        if loopback:
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def in_netns(name: str, command: list[str]) -> list[str]:
    """`command` run inside the namespace `name`."""
    return ["ip", "netns", "exec", name, *command]


def artefacts_dir(test: str) -> Path:
    """Where a test keeps what a person should look at (screenshots):
    $WARDPROBE_TEST_ARTEFACTS/<test>, by default tests/artefacts/<test>
    (git-ignored)."""
    root = Path(os.environ.get(ARTEFACTS_ENV) or _DEFAULT_ARTEFACTS)
    out = root / test
    out.mkdir(parents=True, exist_ok=True)
    return out
