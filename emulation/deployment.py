"""A whole wardprobe deployment as real processes: the central site
(aggregator + reference server) and enrolled probe boxes running the agent.

Used by the demo and the integration tests. Every step is the command a
person would type (`wardprobe-aggregator ca init`, `token create`,
`wardprobe-agent enroll`, `once`), run as `python -m` so that it works from
the virtualenv without PATH set-up. With a `City`, each host is a network
namespace; without one, everything runs on loopback, unshaped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from emulation.city import City, ProbeHost
from emulation.city_services import CityServices
from emulation.modem import EmulatedModem, ModemModel, ModemState
from emulation.routed import PathSpec, RoutedCity
from emulation.shaping import LinkProfile, NetworkKind

# Names the reference server's DNS answers for (the IPv6 check's targets).
IPV6_ONLY_NAME = "v6only.ref.wardprobe.test"
DUAL_STACK_NAME = "ds.ref.wardprobe.test"


class DeploymentError(RuntimeError):
    """A step failed; the message names the command and carries its output."""


def free_tcp_port() -> int:
    """A port nothing on loopback listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class CentralPorts:
    ingest: int = 7443
    enrol: int = 7444
    iperf3: tuple[int, ...] = (5201, 5202, 5203, 5204)
    echo: int = 7007
    dns: int = 53
    speedtest: int = 8080  # the reference server's Speedtest mini (HTTP)

    @classmethod
    def on_loopback(cls, iperf3_pool: int = 4) -> CentralPorts:
        """Unprivileged free ports, for a run without namespaces."""
        return cls(
            ingest=free_tcp_port(),
            enrol=free_tcp_port(),
            iperf3=tuple(free_tcp_port() for _ in range(iperf3_pool)),
            echo=free_tcp_port(),
            dns=free_tcp_port(),
            speedtest=free_tcp_port(),
        )


@dataclass(frozen=True)
class ModemSpec:
    """The emulated USB modem of a mobile probe box (emulation/modem.py)."""

    model: ModemModel = ModemModel.RM500Q
    state: ModemState = ModemState.LTE
    operator: str = "45204"
    script: tuple[tuple[int, ModemState], ...] = ()  # state changes at given observations


@dataclass(frozen=True)
class ProbeBox:
    """An enrolled probe box: where it runs and where its files are."""

    name: str
    netns: str | None
    state_dir: Path
    config_path: Path
    probe_id: str
    ward_code: int
    site_class: str
    profile: LinkProfile | None
    modem: EmulatedModem | None = None


@dataclass
class Deployment:
    """Central site and probes under `workdir`; `close()` stops every process."""

    workdir: Path
    city: City | None = None
    ports: CentralPorts = field(default_factory=CentralPorts)
    throughput_duration_s: int = 5
    throughput_streams: int = 4
    latency_count: int = 10
    latency_interval_s: float = 0.2
    # Schedule the path tests too (traceroute, ipv6_pmtu, dns), as the demo does.
    path_tests: bool = False
    # The city's own services (emulation/city_services.py), started in the city:
    # their list and CA go into aggregator.toml, their records into the
    # reference server's DNS, and the probes check them (ipv6_services).
    services: CityServices | None = None
    # The probe registry in PostgreSQL (a libpq URI), as replicas on several
    # hosts keep it: in aggregator.toml and on `token create`. None: registry.sqlite.
    registry: str | None = None
    python: str = sys.executable
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _modems: list[EmulatedModem] = field(default_factory=list)

    # --- addresses -----------------------------------------------------

    @property
    def central_netns(self) -> str | None:
        return self.city.core.netns if self.city else None

    @property
    def reference_ipv4(self) -> str:
        return self.city.core.reference_ipv4 if self.city else "127.0.0.1"

    @property
    def reference_ipv6(self) -> str:
        return self.city.core.reference_ipv6 if self.city else "::1"

    @property
    def aggregator_dir(self) -> Path:
        return self.workdir / "aggregator"

    @property
    def store_path(self) -> Path:
        return self.workdir / "wardprobe.duckdb"

    @property
    def aggregator_config_path(self) -> Path:
        return self.aggregator_dir / "aggregator.toml"

    def _argv(self, netns: str | None, argv: Sequence[str]) -> list[str]:
        return City.netns_argv(netns, argv) if netns else list(argv)

    def run(self, netns: str | None, argv: Sequence[str], timeout_s: float = 120.0) -> str:
        """Run a command to completion; its stdout, or DeploymentError with its stderr."""
        full = self._argv(netns, argv)
        done = subprocess.run(full, capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0:
            raise DeploymentError(
                f"{' '.join(argv)} exited {done.returncode}:\n"
                f"{done.stderr.strip()}\n{done.stdout.strip()}"
            )
        return done.stdout

    # --- central site --------------------------------------------------

    def init_central(self) -> None:
        """Create the CA (server certificate for the reference addresses) and aggregator.toml."""
        self.aggregator_dir.mkdir(parents=True, exist_ok=True)
        names = ["localhost", self.reference_ipv4, self.reference_ipv6, "127.0.0.1"]
        if not (self.aggregator_dir / "ca.crt").exists():
            argv = [
                self.python,
                "-m",
                "aggregator",
                "ca",
                "init",
                "--state-dir",
                str(self.aggregator_dir),
            ]
            for name in dict.fromkeys(names):
                argv += ["--server-name", name]
            self.run(None, argv)
        ports = self.ports
        host = self.reference_ipv4
        config = f"""# Written by emulation/deployment.py for this run.
state_dir = "{self.aggregator_dir}"
store_path = "{self.store_path}"
{self._registry_key()}ingest_listen = "[::]:{ports.ingest}"
enrol_listen = "[::]:{ports.enrol}"
ingest_public_address = "{host}:{ports.ingest}"
throughput_duration_s = {self.throughput_duration_s}
throughput_streams = {self.throughput_streams}
latency_count = {self.latency_count}
latency_interval_s = {self.latency_interval_s}
probe_sync_interval_s = 0.5
grace_period_s = 5.0
{self._services_keys()}
[reference_server]
host = "{host}"
iperf3_ports = [{", ".join(str(p) for p in ports.iperf3)}]
tcp_echo_port = {ports.echo}
ipv6_only_host = "{IPV6_ONLY_NAME}"
dual_stack_host = "{DUAL_STACK_NAME}"
dns_server = "{host}"
dns_port = {ports.dns}

# One cycle of `wardprobe-agent once` runs each of these once, on the lines
# the probe has (a mobile probe's agent.toml enables only its modem line).
[[schedule]]
measurement = "latency_icmp"
interval_s = 900
network_kind = "fixed"
[[schedule]]
measurement = "latency_tcp"
interval_s = 900
network_kind = "fixed"
[[schedule]]
measurement = "download"
interval_s = 14400
network_kind = "fixed"
[[schedule]]
measurement = "upload"
interval_s = 14400
network_kind = "fixed"
[[schedule]]
measurement = "ipv6"
interval_s = 21600
network_kind = "fixed"
[[schedule]]
measurement = "latency_icmp"
interval_s = 900
network_kind = "mobile"
[[schedule]]
measurement = "latency_tcp"
interval_s = 900
network_kind = "mobile"
[[schedule]]
measurement = "download"
interval_s = 14400
network_kind = "mobile"
[[schedule]]
measurement = "upload"
interval_s = 14400
network_kind = "mobile"
[[schedule]]
measurement = "ipv6"
interval_s = 21600
network_kind = "mobile"
"""
        if self.path_tests:
            config += "".join(
                f'[[schedule]]\nmeasurement = "{name}"\ninterval_s = {interval}\n'
                f'network_kind = "{kind}"\n'
                for kind in ("fixed", "mobile")
                for name, interval in (("traceroute", 3600), ("ipv6_pmtu", 21600), ("dns", 3600))
            )
        if self.services is not None:
            config += (
                '[[schedule]]\nmeasurement = "ipv6_services"\ninterval_s = 86400\n'
                'network_kind = "fixed"\n'
            )
        self.aggregator_config_path.write_text(config, "utf-8")

    def _services_keys(self) -> str:
        """aggregator.toml's services_list and services_ca_file, with services."""
        if self.services is None:
            return ""
        listing = self.services.write_list()
        return f'services_list = "{listing}"\nservices_ca_file = "{self.services.ca_path}"\n'

    def _start(self, name: str, netns: str | None, argv: Sequence[str]) -> None:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = log.open("ab")
        self._logs.append(handle)
        self._processes[name] = subprocess.Popen(
            self._argv(netns, argv),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _registry_key(self) -> str:
        """aggregator.toml's registry line (a literal string: the URI as it is), or nothing."""
        return f"registry = '{self.registry}'\n" if self.registry else ""

    def start_aggregator(
        self,
        name: str = "aggregator",
        config: Path | None = None,
        ports: tuple[int, int] | None = None,
    ) -> None:
        """Start `wardprobe-aggregator serve` and wait until both ports answer.
        A replica beside it (the demo's scale mode): its own `name` (its log
        is logs/<name>.log), `config` and (ingest, enrolment) `ports`."""
        self._start(
            name,
            self.central_netns,
            [
                self.python,
                "-m",
                "aggregator",
                "serve",
                "--config",
                str(config or self.aggregator_config_path),
            ],
        )
        for port in ports or (self.ports.ingest, self.ports.enrol):
            self.wait_for_tcp(self.reference_ipv4, port, name)

    def stop_aggregator(
        self, timeout_s: float = 30.0, name: str = "aggregator", signum: int = signal.SIGTERM
    ) -> int:
        """Signal the aggregator (SIGTERM: a graceful stop) and wait; its exit
        code (negative: the signal that ended it)."""
        return self._stop(name, signum, timeout_s)

    def start_reference_server(self) -> None:
        """Start the reference server: iperf3 pool, TCP echo, DNS, Speedtest mini."""
        ports = self.ports
        config = self.aggregator_dir / "reference.toml"
        zone = (
            self.services.reference_toml(self.city)
            if self.services is not None and self.city is not None
            else ""
        )
        config.write_text(f"speedtest_port = {ports.speedtest}\n{zone}", "utf-8")
        argv = [
            self.python,
            "-m",
            "aggregator",
            "reference-server",
            "serve",
            "--config",
            str(config),
            "--listen",
            self.reference_ipv4,
            "--listen",
            self.reference_ipv6,
            "--iperf3-ports",
            ",".join(str(p) for p in ports.iperf3),
            "--echo-port",
            str(ports.echo),
            "--dns-port",
            str(ports.dns),
            "--ipv6-only-name",
            IPV6_ONLY_NAME,
            "--dual-stack-name",
            DUAL_STACK_NAME,
            "--answer-ipv4",
            self.reference_ipv4,
            "--answer-ipv6",
            self.reference_ipv6,
        ]
        self._start("reference-server", self.central_netns, argv)
        self.wait_for_tcp(self.reference_ipv4, ports.echo, "reference-server")
        for port in ports.iperf3:
            self.wait_for_tcp(self.reference_ipv4, port, "reference-server")

    def wait_for_tcp(self, host: str, port: int, process: str, timeout_s: float = 30.0) -> None:
        """Until a TCP connect to host:port succeeds, as seen from the central site."""
        deadline = time.monotonic() + timeout_s
        probe = [
            self.python,
            "-c",
            "import socket, sys; "
            "socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()",
            host,
            str(port),
        ]
        while True:
            proc = self._processes.get(process)
            if proc is not None and proc.poll() is not None:
                raise DeploymentError(
                    f"{process} exited with {proc.returncode}: {self.log_tail(process)}"
                )
            if self.central_netns is None:
                try:
                    socket.create_connection((host, port), 1).close()
                    return
                except OSError:
                    pass
            elif (
                subprocess.run(
                    self._argv(self.central_netns, probe), capture_output=True, check=False
                ).returncode
                == 0
            ):
                return
            if time.monotonic() > deadline:
                raise DeploymentError(f"{process} did not open {host}:{port} in {timeout_s:.0f} s")
            time.sleep(0.1)

    def log_tail(self, process: str, lines: int = 30) -> str:
        path = self.workdir / "logs" / f"{process}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text("utf-8", errors="replace").splitlines()[-lines:])

    # --- probes --------------------------------------------------------

    def create_token(
        self,
        ward_code: int,
        site_class: str,
        isp: str | None = None,
        plan_mbps: str | None = None,
    ) -> str:
        """`wardprobe-aggregator token create`; the token text."""
        out = self.run(
            None,
            [
                self.python,
                "-m",
                "aggregator",
                "token",
                "create",
                "--state-dir",
                str(self.aggregator_dir),
                "--ward",
                str(ward_code),
                "--site-class",
                site_class,
                "--ttl",
                "1h",
                *(["--isp", isp] if isp else []),
                *(["--plan-mbps", plan_mbps] if plan_mbps else []),
                *(["--registry", self.registry] if self.registry else []),
            ],
        )
        match = re.search(r"^token:\s+(\S+)", out, re.MULTILINE)
        if match is None:
            raise DeploymentError(f"token create printed no token:\n{out}")
        return match.group(1)

    def add_probe(
        self,
        name: str,
        ward_code: int,
        site_class: str,
        profile: LinkProfile | None = None,
        agent_toml_extra: str = "",
        modem: ModemSpec | None = None,
        mobile: bool | None = None,
        isp: str | None = None,
        plan_mbps: str | None = None,
        path: PathSpec | None = None,
    ) -> ProbeBox:
        """A probe box on its own access line (with a city), enrolled in `ward_code`.
        `agent_toml_extra` is appended to its agent.toml (e.g. an [upload] table).
        `modem` gives the box an emulated modem on a pty, named in its [modem]
        table. `mobile` overrides the line kind the profile implies (None: the
        profile's; a box on loopback has no profile). `isp` and `plan_mbps`
        ("down/up"): the fixed line's ISP and advertised plan, recorded with the token.
        `path`: the box's routers and line delay in a RoutedCity."""
        host: ProbeHost | None = None
        if self.city is not None:
            if profile is None:
                raise ValueError("a probe in the city needs a link profile")
            if isinstance(self.city, RoutedCity):
                host = self.city.add_probe(name, profile, path)
            else:
                host = self.city.add_probe(name, profile)
        netns = host.netns if host else None
        state_dir = self.workdir / "probes" / name
        if state_dir.exists():
            shutil.rmtree(state_dir)
        state_dir.mkdir(parents=True)
        token = self.create_token(ward_code, site_class, isp, plan_mbps)
        self.run(
            netns,
            [
                self.python,
                "-m",
                "agent",
                "enroll",
                "--aggregator",
                f"{self.reference_ipv4}:{self.ports.enrol}",
                "--token",
                token,
                "--state-dir",
                str(state_dir),
            ],
        )
        enrolment = json.loads((state_dir / "enrolment.json").read_text("utf-8"))
        if mobile is None:
            mobile = profile is not None and profile.network_kind == NetworkKind.MOBILE
        iface = host.iface if host else ""
        emulated: EmulatedModem | None = None
        modem_toml = ""
        if modem is not None:
            # Where udev would put /dev/serial/by-id/usb-Quectel_...-if02-port0.
            emulated = EmulatedModem(
                state_dir / "dev" / f"usb-Quectel_{modem.model.value}-if02-port0",
                modem.model,
                modem.state,
                modem.operator,
                script=modem.script,
            ).start()
            self._modems.append(emulated)
            modem_toml = f"""
[modem]
backend = "at"
serial_port = "{emulated.link}"
at_timeout_s = 1.0
"""
        config_path = state_dir / "agent.toml"
        config_path.write_text(
            f"""# Written by emulation/deployment.py for probe {name}.
state_dir = "{state_dir}"

# Every emulated probe shares this machine's CPUs with the other probes and
# the reference server, so the CPU half of the pre-test check would defer
# most tests: off here (100 %); the cross-traffic half stays on.
[preflight]
max_cpu_load_pct = 100.0

# The emulated boxes run on this machine's clock, which the emulation cannot
# synchronise (a CI machine may have no NTP): no waiting for it at start.
# Results still carry the clock's state.
[clock]
wait_for_sync_s = 0

[fixed]
enabled = {str(not mobile).lower()}
interface = "{"" if mobile else iface}"

[mobile]
enabled = {str(mobile).lower()}
interface = "{iface if mobile else "wwan0"}"

# The dns test asks the reference server's DNS; the box's own resolver only in
# a routed city, where it is that DNS too (elsewhere it is this machine's).
[dns]
system_resolver = {str(isinstance(self.city, RoutedCity)).lower()}
{modem_toml}{agent_toml_extra}""",
            "utf-8",
        )
        return ProbeBox(
            name=name,
            netns=netns,
            state_dir=state_dir,
            config_path=config_path,
            probe_id=str(enrolment["probe_id"]),
            ward_code=int(enrolment["ward_code"]),
            site_class=str(enrolment["site_class"]),
            profile=profile,
            modem=emulated,
        )

    def agent_argv(self, box: ProbeBox, *command: str) -> list[str]:
        return [self.python, "-m", "agent", *command, "--config", str(box.config_path)]

    def run_once(
        self, box: ProbeBox, timeout_s: float = 300.0
    ) -> tuple[int, list[dict[str, Any]], str]:
        """`wardprobe-agent once` on the box: exit code, the JSON results, stderr."""
        done = subprocess.run(
            self._argv(box.netns, self.agent_argv(box, "once")),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return done.returncode, results, done.stderr

    def start_once(self, box: ProbeBox, log: Path) -> subprocess.Popen[str]:
        """`wardprobe-agent once` on the box in the background, in a process
        group of its own: its JSON results on stdout, a line each as they
        come; its stderr into `log`."""
        with log.open("w", encoding="utf-8") as handle:
            return subprocess.Popen(
                self._argv(box.netns, self.agent_argv(box, "once")),
                stdout=subprocess.PIPE,
                stderr=handle,
                text=True,
                start_new_session=True,
            )

    def start_agent(self, box: ProbeBox, *command: str) -> subprocess.Popen[bytes]:
        """Start an agent command (e.g. `run`, `upload`) in the background."""
        name = f"agent-{box.name}-{command[0]}"
        self._start(name, box.netns, self.agent_argv(box, *command))
        return self._processes[name]

    # --- teardown ------------------------------------------------------

    def _stop(self, name: str, signum: int, timeout_s: float) -> int:
        proc = self._processes.pop(name, None)
        if proc is None:
            return 0
        if proc.poll() is None:
            os.killpg(proc.pid, signum)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return int(proc.returncode)

    def close(self) -> None:
        """Stop every process this deployment started (aggregator last, gracefully)."""
        for name in [n for n in self._processes if n != "aggregator"]:
            self._stop(name, signal.SIGTERM, 10.0)
        self._stop("aggregator", signal.SIGTERM, 30.0)
        for modem in self._modems:
            modem.close()
        self._modems.clear()
        for handle in self._logs:
            handle.close()
        self._logs.clear()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
