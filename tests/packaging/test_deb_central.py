"""The central site's package (aggregator and reference server), as dpkg sees
it, its units as systemd reads them, and the packaged aggregator serving
under Debian's python3: health and metrics answer from the package's own
Python dependencies."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emulation.deployment import free_tcp_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging" / "deb"))
import make_deb as build  # noqa: E402

DEBIAN_PYTHON = Path("/usr/bin/python3")
UNITS = ("wardprobe-aggregator", "wardprobe-reference")

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None or build.nfpm_binary_or_none() is None,
    reason="needs dpkg-deb and nfpm (`make setup` installs nfpm)",
)


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("deb")
    argv = ["--package", "wardprobe-central", "--arch", "amd64", "--out", str(out)]
    assert build.main(argv) == 0
    (package,) = out.glob("wardprobe-central_*_amd64.deb")
    yield package


@pytest.fixture(scope="module")
def tree(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    subprocess.run(["dpkg-deb", "-R", str(deb), str(root)], check=True)
    return root


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_control_declares_what_the_server_needs(deb: Path) -> None:
    assert deb.name == f"wardprobe-central_{build.project_version()}-1_amd64.deb"
    assert _field(deb, "Architecture") == "amd64"
    depends = [d.strip() for d in _field(deb, "Depends").split(",")]
    for needed in (
        "python3 (>= 3.11~)",
        "python3 (<< 3.12)",
        "iperf3",  # the reference server's pool
        "libpango-1.0-0",  # the report's PDF
        "fonts-dejavu-core",
        "adduser",
    ):
        assert needed in depends
    # gzip: one of the compressions Debian's archive (and lintian) accept.
    members = subprocess.run(["ar", "t", str(deb)], capture_output=True, text=True, check=True)
    assert members.stdout.split() == ["debian-binary", "control.tar.gz", "data.tar.gz"]


def test_the_files_scripts_and_conffile(tree: Path) -> None:
    control = tree / "DEBIAN"
    assert (control / "conffiles").read_text().split() == ["/etc/wardprobe/aggregator.toml"]
    for script in ("postinst", "prerm", "postrm"):
        assert os.access(control / script, os.X_OK)
    postinst, postrm = (control / "postinst").read_text(), (control / "postrm").read_text()
    assert "adduser --system --group" in postinst and "wardprobe-aggregator" in postinst
    purge = postrm.split('if [ "$1" = "purge" ]; then', 1)[1]
    assert "rm -rf /var/lib/wardprobe-aggregator" in purge  # purge only: removal keeps it
    assert os.access(tree / "usr/bin/wardprobe-aggregator", os.X_OK)
    lib = tree / "usr/lib/wardprobe-central"
    for module in (
        "aggregator/central.py",
        "aggregator/ingest/schema.sql",
        "analysis/wards.py",
        "wardprobe/v1/ingest_pb2.py",
        "duckdb",
        "pyarrow",
        "grpc_health/v1/health.py",
        "prometheus_client",
        "weasyprint",
    ):
        assert (lib / module).exists(), module
    assert not (lib / "agent").exists() and not (lib / "emulation").exists()
    assert not list(lib.rglob("__pycache__"))  # postinst compiles on the server
    assert build.check_machine(lib, build.ARCHES["amd64"]) > 0


@pytest.mark.parametrize("unit", UNITS)
def test_the_units_run_the_packaged_command_hardened(tree: Path, unit: str) -> None:
    text = (tree / f"lib/systemd/system/{unit}.service").read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["ExecStart"].startswith("/usr/bin/wardprobe-aggregator ")
    for key, want in (
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("Restart", "on-failure" if unit == "wardprobe-aggregator" else "always"),
    ):
        assert settings[key] == want, key
    if unit == "wardprobe-aggregator":
        assert settings["User"] == "wardprobe-aggregator"
        assert settings["StateDirectory"] == "wardprobe-aggregator"
        assert settings["CapabilityBoundingSet"] == ""  # no capability at all
    else:
        assert settings["DynamicUser"] == "yes"
        assert settings["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"  # port 53


def _exposure(unit: Path) -> float:
    """systemd-analyze security's overall exposure (0 safest, 10 most exposed)."""
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert match is not None, done.stdout[-500:]
    return float(match[1])


TIMESYNCD = Path("/lib/systemd/system/systemd-timesyncd.service")


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not TIMESYNCD.exists(),
    reason="needs systemd-analyze and Debian's systemd-timesyncd unit to compare with",
)
@pytest.mark.parametrize("unit", UNITS)
def test_systemd_reads_the_units_and_scores_them_safer_than_timesyncd(
    tree: Path, unit: str, tmp_path: Path
) -> None:
    packaged = tree / f"lib/systemd/system/{unit}.service"
    # verify needs the command to exist on this machine: /bin/true stands in.
    stand_in = tmp_path / packaged.name
    stand_in.write_text(
        re.sub(r"(?m)^ExecStart=\S+", "ExecStart=/bin/true", packaged.read_text()), "utf-8"
    )
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(stand_in)], capture_output=True, text=True
    )
    assert (verify.returncode, verify.stderr) == (0, "")  # no unknown or bad key
    assert _exposure(stand_in) < _exposure(TIMESYNCD)


@pytest.mark.skipif(
    not DEBIAN_PYTHON.exists()
    or subprocess.run(
        [str(DEBIAN_PYTHON), "-c", "import sys; assert sys.version_info[:2] == (3, 11)"],
        check=False,
    ).returncode
    != 0,
    reason="needs Debian 12's python3 (3.11), which the package is built for",
)
def test_debian_python_serves_from_the_package(tree: Path, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(tree / "usr/lib/wardprobe-central"),
        "PYTHONSAFEPATH": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(tmp_path),
    }
    python = [str(DEBIAN_PYTHON), "-m", "aggregator"]
    shown = subprocess.run([*python, "--help"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "wardprobe aggregator: enrols probes" in shown.stdout
    for command in ("serve", "backup", "restore", "reference-server"):
        assert command in shown.stdout

    state = tmp_path / "state"
    made = subprocess.run(
        [*python, "ca", "init", "--state-dir", str(state), "--server-name", "localhost"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    health_port, metrics_port = free_tcp_port(), free_tcp_port()
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'state_dir = "{state}"\nstore_path = "{state / "wardprobe.duckdb"}"\n'
        f'ingest_listen = "127.0.0.1:{free_tcp_port()}"\n'
        f'enrol_listen = "127.0.0.1:{free_tcp_port()}"\n'
        f'health_listen = "127.0.0.1:{health_port}"\n'
        f'metrics_listen = "127.0.0.1:{metrics_port}"\n',
        "utf-8",
    )
    serve = subprocess.Popen(
        [*python, "serve", "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{health_port}")
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=60, wait_for_ready=True)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
        deadline = time.monotonic() + 60  # a guard: the metrics port opens after health's
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as page:
                    metrics = page.read().decode()
                break
            except OSError:
                assert serve.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert "wardprobe_store_writable 1.0" in metrics
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        output = serve.communicate(timeout=60)[0].decode()
    assert serve.returncode == 0, output


def test_it_is_built_for_amd64_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--package", "wardprobe-central", "--arch", "arm64", "--out", str(tmp_path)]
    assert build.main(argv) == 1
    assert capsys.readouterr().err == "error: wardprobe-central is built for amd64 only\n"
    assert not list(tmp_path.iterdir())
