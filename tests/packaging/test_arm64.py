"""The arm64 package proven on arm64 Debian 12, as a technician's box has it.

An arm64 Debian bookworm root (debootstrap; its programs run under
qemu-user-static through binfmt_misc, registered here) gets the package with
apt from a local repository. Inside it the agent enrols against an
aggregator on this machine (a chroot shares the host's network, so loopback
reaches it), runs one measurement cycle against the reference server, and
the results are found in the aggregator's store. Then: an upgrade to a newer
package keeps agent.toml (edited), the enrolment and the spool (results
measured before it are uploaded after it); removal keeps the data; purge
removes it and the service user. The figures (package size, install time,
the idle daemon's resident memory under qemu) are printed.

Needs root, debootstrap and qemu-user-static (`make arm64-proof` installs
them and runs this). The debootstrapped root is cached as a tar file under
$WARDPROBE_CACHE (default ~/.cache/wardprobe), reused by later runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from emulation.deployment import CentralPorts, Deployment
from tests.integration.conftest import NINH_KIEU

ROOT = Path(__file__).resolve().parents[2]
MIRROR = "http://deb.debian.org/debian"
# The package's Debian dependencies are in the cached root, so the install
# measured is the package's own (unpack, postinst); ca-certificates for apt.
INCLUDE = "python3,python3-cffi-backend,libiperf0,adduser,ca-certificates"
CACHE = Path(os.environ.get("WARDPROBE_CACHE", Path.home() / ".cache" / "wardprobe"))
ROOT_TAR = CACHE / f"arm64-bookworm-{hashlib.sha256(INCLUDE.encode()).hexdigest()[:8]}.tar"
CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}
REPO = "/srv/wardprobe-repo"
# Each command runs in a mount namespace of its own with /proc and /sys
# mounted in the root: they vanish with it, so no mount outlives a test (the
# root's /dev has the static nodes debootstrap made; the host's is not bound
# in, so removing a left-over root can never reach the host's devices).
IN_ROOT = (
    'root=$1; shift; mount -t proc proc "$root/proc" && '
    'mount -t sysfs -o ro sysfs "$root/sys" && exec chroot "$@"'
)
# Guards against a hang, not claims about this machine's speed (qemu is slow).
STEP_TIMEOUT_S = 900.0

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0, reason="needs root: debootstrap, chroot, mounts and binfmt_misc"
    ),
    pytest.mark.skipif(
        not (shutil.which("debootstrap") and Path("/usr/bin/qemu-aarch64-static").exists()),
        reason="needs debootstrap and qemu-user-static: `make arm64-proof` installs them",
    ),
    pytest.mark.timeout(3600),
]


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
    )
    return done


def register_binfmt() -> None:
    """Make the kernel run arm64 programs with qemu-aarch64-static."""
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "status").exists():
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)])
    if not (misc / "qemu-aarch64").exists():
        _run(["update-binfmts", "--enable", "qemu-aarch64"])
    assert (misc / "qemu-aarch64").read_text().startswith("enabled")


def make_root(dest: Path) -> None:
    """An arm64 Debian 12 root in `dest`, from the cache or debootstrap."""
    if not ROOT_TAR.exists():
        fresh = dest.parent / "debootstrap"
        _run(["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={INCLUDE}",
              "bookworm", str(fresh), MIRROR])  # fmt: skip
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = ROOT_TAR.with_suffix(".partial")
        _run(["tar", "--numeric-owner", "-cf", str(partial), "-C", str(fresh), "."])
        partial.rename(ROOT_TAR)
        shutil.rmtree(fresh)
    dest.mkdir()
    _run(["tar", "--numeric-owner", "-xf", str(ROOT_TAR), "-C", str(dest)])


class Arm64Box:
    """The chroot: commands in it, its files, its local apt repository."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def argv(self, *argv: str, user: str | None = None) -> list[str]:
        """`argv` run inside the root (as `user`, default root)."""
        chroot = [*(["--userspec", user] if user else []), str(self.root), *argv]
        return ["unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", IN_ROOT, "sh", str(self.root), *chroot]  # fmt: skip

    def run(
        self, *argv: str, user: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        full = self.argv(*argv, user=user)
        done = subprocess.run(
            full, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, env=CHROOT_ENV,
            check=False,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, (
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-4000:]}\n"
                f"{done.stdout[-2000:]}"
            )
        return done

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def publish(self, debs: list[Path]) -> None:
        """A file: apt repository with these packages, the box's only source."""
        repo = self.path(REPO)
        repo.mkdir(parents=True, exist_ok=True)
        for deb in debs:
            shutil.copy2(deb, repo)
        index = _run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo).stdout
        (repo / "Packages").write_text(index, "utf-8")
        self.path("/etc/apt/sources.list").write_text(f"deb [trusted=yes] file:{REPO} ./\n")
        self.run("apt-get", "update", "-qq")

    def status(self) -> dict[str, object]:
        done = self.run("wardprobe-agent", "status", "--json", check=False)
        assert done.returncode in (0, 1), done.stderr
        report: dict[str, object] = json.loads(done.stdout)
        return report

    def owner(self, inside: str) -> str:
        return self.run("stat", "-c", "%U:%G", inside).stdout.strip()


@pytest.fixture
def box(tmp_path: Path) -> Arm64Box:
    register_binfmt()
    root = tmp_path / "arm64-root"
    make_root(root)
    return Arm64Box(root)


def _build(revision: str, out: Path) -> Path:
    _run([sys.executable, str(ROOT / "packaging" / "deb" / "make_deb.py"), "--arch", "arm64",
          "--revision", revision, "--out", str(out)])  # fmt: skip
    (deb,) = out.glob(f"wardprobe-agent_*-{revision}_arm64.deb")
    return deb


def _results_in_store(store: Path, probe_id: str) -> int:
    with duckdb.connect(str(store), read_only=True) as con:
        return sum(
            con.execute(
                f"select count(*) from {table} where cast(probe_id as varchar) = ?", [probe_id]
            ).fetchone()[0]  # type: ignore[index]
            for table in ("throughput", "latency", "ipv6")
        )


def _idle_rss_kib(box: Arm64Box) -> int:
    """The resident memory of `wardprobe-agent run` (the service's user and
    command line) once its start-up worker has ended and it waits."""
    cache = box.path("/var/lib/wardprobe/config.json")
    cache.unlink(missing_ok=True)  # the plan worker writes it again: start-up is over
    daemon = subprocess.Popen(
        box.argv("/usr/bin/wardprobe-agent", "run", "--config", "/etc/wardprobe/agent.toml",
                 user="wardprobe:wardprobe"),
        env=CHROOT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        samples: list[int] = []
        while len(samples) < 3:
            assert daemon.poll() is None, daemon.communicate()[1]
            assert time.monotonic() < deadline, "the daemon never went idle"
            time.sleep(1.0)
            status = Path(f"/proc/{daemon.pid}/status").read_text()
            children = Path(f"/proc/{daemon.pid}/task/{daemon.pid}/children").read_text().split()
            # The daemon (after the CLI's exec), past start-up, between jobs.
            cmdline = Path(f"/proc/{daemon.pid}/cmdline").read_text()
            if "agent.daemon" in cmdline and cache.exists() and not children:
                rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
                samples.append(int(rss.split()[1]))
            else:
                samples.clear()
        return max(samples)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.communicate()


def test_the_arm64_package_installs_measures_upgrades_and_purges(
    box: Arm64Box, tmp_path: Path
) -> None:
    started = time.monotonic()
    figures: dict[str, object] = {}
    first = _build("1", tmp_path / "debs")
    newer = _build("2", tmp_path / "debs")
    figures["package_size_mb"] = round(first.stat().st_size / 1e6, 1)

    with Deployment(tmp_path / "central", ports=CentralPorts.on_loopback()) as central:
        central.init_central()
        central.start_aggregator()
        central.start_reference_server()
        token = central.create_token(NINH_KIEU, "school")

        # Install: apt resolves the package from the local repository.
        box.publish([first])
        t0 = time.monotonic()
        box.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "wardprobe-agent")
        figures["install_s"] = round(time.monotonic() - t0, 1)
        assert box.run("wardprobe-agent", "--version").stdout == "wardprobe-agent 0.1.0\n"
        assert box.owner("/var/lib/wardprobe") == "wardprobe:wardprobe"
        assert box.path(
            "/etc/systemd/system/multi-user.target.wants/wardprobe-agent.service"
        ).is_symlink()
        assert (
            "/etc/wardprobe/agent.toml"
            in box.path("/var/lib/dpkg/info/wardprobe-agent.conffiles").read_text()
        )
        not_enrolled = box.run("wardprobe-agent", "status", check=False)
        assert not_enrolled.returncode == 1
        assert not_enrolled.stdout.startswith("not healthy: not enrolled")

        # Enrol as the technician does (sudo): the identity is the service user's.
        enrolled = box.run("wardprobe-agent", "enroll", "--aggregator",
                           f"127.0.0.1:{central.ports.enrol}", "--token", token)  # fmt: skip
        assert "ward:       Phường Ninh Kiều (31135)" in enrolled.stdout
        assert box.owner("/var/lib/wardprobe/probe.key") == "wardprobe:wardprobe"
        probe_id = json.loads(box.path("/var/lib/wardprobe/enrolment.json").read_text())["probe_id"]

        # This machine is shared (other tests load its CPUs and loopback): the
        # pre-test check would defer the throughput tests. Off, as a
        # technician may set it; edited in place, as on a box.
        config = box.path("/etc/wardprobe/agent.toml")
        config.write_text(
            config.read_text().replace(
                "[preflight]\nenabled = true", "[preflight]\nenabled = false"
            )
        )

        # One cycle on arm64 against the reference server, uploaded.
        t0 = time.monotonic()
        cycle = box.run("wardprobe-agent", "once")
        figures["cycle_s"] = round(time.monotonic() - t0, 1)
        results = [json.loads(line) for line in cycle.stdout.splitlines() if line.startswith("{")]
        assert len(results) == 5, cycle.stderr
        outcomes = [
            (
                next(kind for kind in r if kind != "envelope"),
                r["envelope"].get("status"),
                r["envelope"].get("statusReason", ""),
            )
            for r in results
        ]
        assert all(status == "STATUS_OK" for _, status, _ in outcomes), outcomes
        assert {kind for kind, _, _ in outcomes} == {"throughput", "latency", "ipv6"}, outcomes
        assert "uploaded: 5 stored" in cycle.stderr
        report = box.status()
        assert report["spool_depth"] == 0 and report["enrolled"] is True

        figures["idle_rss_mib_under_qemu"] = round(_idle_rss_kib(box) / 1024, 1)

        # Before the upgrade: agent.toml edited, and results waiting in the spool.
        config.write_text(config.read_text().replace("batch_size = 500", "batch_size = 250"))
        box.run("wardprobe-agent", "once", "--no-upload")
        assert box.status()["spool_depth"] == 5

        box.publish([newer])
        box.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "wardprobe-agent")
        assert "0.1.0-2" in box.run("dpkg-query", "-W", "wardprobe-agent").stdout
        kept = config.read_text()  # the conffile, as edited
        assert "batch_size = 250" in kept and "[preflight]\nenabled = false" in kept
        after = box.status()
        assert (after["probe_id"], after["spool_depth"]) == (probe_id, 5)
        assert "uploaded: 5 stored" in box.run("wardprobe-agent", "upload").stdout

        assert central.stop_aggregator() == 0, central.log_tail("aggregator")
        assert _results_in_store(central.store_path, probe_id) == 10

    # Removal keeps the identity, the spool and agent.toml; purge removes them.
    box.run("apt-get", "remove", "-y", "-qq", "wardprobe-agent")
    assert not box.path("/usr/lib/wardprobe-agent").exists()
    for kept in ("/var/lib/wardprobe/enrolment.json", "/var/lib/wardprobe/spool.sqlite",
                 "/etc/wardprobe/agent.toml"):  # fmt: skip
        assert box.path(kept).exists(), kept
    box.run("apt-get", "purge", "-y", "-qq", "wardprobe-agent")
    assert not box.path("/var/lib/wardprobe").exists()
    assert not box.path("/etc/wardprobe/agent.toml").exists()
    assert box.run("getent", "passwd", "wardprobe", check=False).returncode == 2

    figures["test_s"] = round(time.monotonic() - started, 1)
    print("\narm64 proof:", json.dumps(figures))
