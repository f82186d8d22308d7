"""The admin commands an operator runs: ca, token, probe."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from aggregator.cli.admin import (
    AdminContext,
    ca_app,
    parse_ttl,
    probe_app,
    registry_app,
    token_app,
)
from aggregator.enrolment.ca import CertificateAuthority
from aggregator.enrolment.registry import ProbeRegistry, ProbeRevoked, ProbeState, SiteClass
from emulation.postgres import PostgresCluster

NINH_KIEU = 31135


def ward_name(ward_code: int) -> str | None:
    return "Phường Ninh Kiều" if ward_code == NINH_KIEU else None


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def state_dir(tmp_path: Path, runner: CliRunner) -> Path:
    state = tmp_path / "aggregator"
    result = runner.invoke(
        ca_app,
        ["init", "--state-dir", str(state), "--server-name", "localhost", "--server-name", "::1"],
    )
    assert result.exit_code == 0, result.output
    return state


def _lines(output: str) -> dict[str, str]:
    return {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in output.splitlines())
    }


def test_ca_init_and_show_print_the_pin(state_dir: Path, runner: CliRunner) -> None:
    pin = CertificateAuthority.load(state_dir).pin
    result = runner.invoke(ca_app, ["show", "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    shown = _lines(result.output)
    assert shown["CA pin (sha256)"] == pin
    assert shown["server names"] == "localhost, ::1"


def test_ca_init_refuses_to_replace_without_force(state_dir: Path, runner: CliRunner) -> None:
    pin = CertificateAuthority.load(state_dir).pin
    again = ["init", "--state-dir", str(state_dir), "--server-name", "localhost"]
    refused = runner.invoke(ca_app, again)
    assert refused.exit_code == 1
    assert "--force" in refused.output
    assert CertificateAuthority.load(state_dir).pin == pin
    assert runner.invoke(ca_app, [*again, "--force"]).exit_code == 0
    assert CertificateAuthority.load(state_dir).pin != pin


def test_token_create_prints_a_redeemable_token_and_the_ward(
    state_dir: Path, runner: CliRunner
) -> None:
    result = runner.invoke(
        token_app,
        [
            "create",
            "--state-dir",
            str(state_dir),
            "--ward",
            str(NINH_KIEU),
            "--site-class",
            "school",
            "--ttl",
            "12h",
            "--note",
            "THCS Ninh Kiều",
        ],
        obj=AdminContext(ward_lookup=ward_name),
    )
    assert result.exit_code == 0, result.output
    shown = _lines(result.output)
    assert shown["ward"] == "31135 Phường Ninh Kiều"
    grant = ProbeRegistry.in_state_dir(state_dir, ward_name).redeem_token(shown["token"])
    assert (grant.ward_code, grant.site_class) == (NINH_KIEU, SiteClass.SCHOOL)


def test_token_create_takes_the_city_department_site_class(
    state_dir: Path, runner: CliRunner
) -> None:
    """A city department (Sở) is enrolled as what it is, not as "other": the
    IPv6 office indicator counts it beside the ward offices."""
    result = runner.invoke(
        token_app,
        [
            "create",
            "--state-dir",
            str(state_dir),
            "--ward",
            str(NINH_KIEU),
            "--site-class",
            "city_department",
        ],
        obj=AdminContext(ward_lookup=ward_name),
    )
    assert result.exit_code == 0, result.output
    grant = ProbeRegistry.in_state_dir(state_dir, ward_name).redeem_token(
        _lines(result.output)["token"]
    )
    assert grant.site_class == SiteClass.CITY_DEPARTMENT


def test_token_for_an_unknown_ward_is_refused(state_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        token_app,
        ["create", "--state-dir", str(state_dir), "--ward", "1", "--site-class", "household"],
        obj=AdminContext(ward_lookup=ward_name),
    )
    assert result.exit_code == 1
    assert "not a ward code" in result.output


def test_probe_list_and_revoke(state_dir: Path, runner: CliRunner) -> None:
    registry = ProbeRegistry.in_state_dir(state_dir, ward_name)
    authority = CertificateAuthority.load(state_dir)
    token = registry.create_token(
        NINH_KIEU, SiteClass.WARD_OFFICE, timedelta(days=1), authority.pin
    )
    grant = registry.redeem_token(token)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    probe_id = registry.new_probe_id()
    issued = authority.sign_probe_csr(csr, probe_id)
    registry.record_probe(probe_id, grant, "pi-ubnd", "0.1.0", issued.serial_hex, issued.not_after)

    listed = runner.invoke(probe_app, ["list", "--state-dir", str(state_dir)])
    assert listed.exit_code == 0, listed.output
    assert probe_id in listed.output and "active" in listed.output

    revoked = runner.invoke(probe_app, ["revoke", probe_id, "--state-dir", str(state_dir)])
    assert revoked.exit_code == 0, revoked.output
    assert registry.get_probe(probe_id).state is ProbeState.REVOKED
    with pytest.raises(ProbeRevoked):
        registry.identify(issued.certificate_pem)

    unknown = runner.invoke(probe_app, ["revoke", "wp-nosuchprobe", "--state-dir", str(state_dir)])
    assert unknown.exit_code == 1


def _token_args(state_dir: Path, *extra: str) -> list[str]:
    return [
        "create",
        "--state-dir",
        str(state_dir),
        "--ward",
        str(NINH_KIEU),
        "--site-class",
        "household",
        *extra,
    ]


def test_token_create_records_the_fixed_line_isp(state_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        token_app, _token_args(state_dir, "--isp", "fpt"), obj=AdminContext(ward_lookup=ward_name)
    )
    assert result.exit_code == 0, result.output
    shown = _lines(result.output)
    assert shown["fixed ISP"] == "FPT Telecom"
    grant = ProbeRegistry.in_state_dir(state_dir, ward_name).redeem_token(shown["token"])
    assert grant.isp == "FPT Telecom"

    without = runner.invoke(token_app, _token_args(state_dir), obj=AdminContext(ward_name))
    assert without.exit_code == 0, without.output
    assert _lines(without.output)["fixed ISP"] == "not recorded"


def test_token_create_refuses_an_unknown_isp(state_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        token_app,
        _token_args(state_dir, "--isp", "Comcast"),
        obj=AdminContext(ward_lookup=ward_name),
    )
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "'Comcast' is not a known fixed-broadband ISP" in flat
    assert "VNPT, Viettel, FPT Telecom" in flat
    # no token was made
    with sqlite3.connect(state_dir / "registry.sqlite") as conn:
        assert conn.execute("select count(*) from bootstrap_tokens").fetchone() == (0,)


def _enrolled_probe(state_dir: Path) -> tuple[ProbeRegistry, str]:
    """A household probe in Ninh Kiều, enrolled as the enrolment service does it."""
    registry = ProbeRegistry.in_state_dir(state_dir, ward_name)
    authority = CertificateAuthority.load(state_dir)
    token = registry.create_token(NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(days=1), authority.pin)
    grant = registry.redeem_token(token)
    probe_id = registry.new_probe_id()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box")]))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    issued = authority.sign_probe_csr(csr, probe_id)
    registry.record_probe(probe_id, grant, "pi-home", "0.1.0", issued.serial_hex, issued.not_after)
    return registry, probe_id


def test_probe_set_isp_and_list(state_dir: Path, runner: CliRunner) -> None:
    registry, probe_id = _enrolled_probe(state_dir)

    changed = runner.invoke(
        probe_app, ["set-isp", probe_id, "viettel", "--state-dir", str(state_dir)]
    )
    assert changed.exit_code == 0, changed.output
    assert f"probe {probe_id} fixed ISP: Viettel" in changed.output
    assert registry.get_probe(probe_id).isp == "Viettel"

    listed = runner.invoke(probe_app, ["list", "--state-dir", str(state_dir)])
    assert listed.exit_code == 0, listed.output
    assert "Viettel" in listed.output

    refused = runner.invoke(probe_app, ["set-isp", probe_id, "AT&T", "--state-dir", str(state_dir)])
    assert refused.exit_code == 1
    assert "not a known fixed-broadband ISP" in " ".join(refused.output.split())
    assert registry.get_probe(probe_id).isp == "Viettel"
    unknown = runner.invoke(
        probe_app, ["set-isp", "wp-nosuchprobe", "VNPT", "--state-dir", str(state_dir)]
    )
    assert unknown.exit_code == 1


@pytest.mark.parametrize(
    ("given", "expected"), [("300/100", (300.0, 100.0)), ("1000", (1000.0, 1000.0))]
)
def test_token_create_records_the_plan(
    state_dir: Path, runner: CliRunner, given: str, expected: tuple[float, float]
) -> None:
    result = runner.invoke(
        token_app,
        _token_args(state_dir, "--isp", "VNPT", "--plan-mbps", given),
        obj=AdminContext(ward_lookup=ward_name),
    )
    assert result.exit_code == 0, result.output
    shown = _lines(result.output)
    assert shown["fixed plan"] == f"{expected[0]:g}/{expected[1]:g} Mb/s (down/up)"
    grant = ProbeRegistry.in_state_dir(state_dir, ward_name).redeem_token(shown["token"])
    assert (grant.plan_down_mbps, grant.plan_up_mbps) == expected

    without = runner.invoke(token_app, _token_args(state_dir), obj=AdminContext(ward_name))
    assert _lines(without.output)["fixed plan"] == "not recorded"


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("0/100", "positive number"),
        ("-300", "positive number"),
        ("300/abc", "not a number"),
        ("300/100/50", "DOWN/UP"),
        ("fast", "not a number"),
        ("nan", "positive number"),
        ("300/", "DOWN/UP"),
    ],
)
def test_token_create_refuses_a_bad_plan(
    state_dir: Path, runner: CliRunner, bad: str, says: str
) -> None:
    result = runner.invoke(
        token_app,
        _token_args(state_dir, "--plan-mbps", bad),
        obj=AdminContext(ward_lookup=ward_name),
    )
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "error:" in flat and says in flat, flat
    assert "Traceback" not in result.output
    # refused before the registry is touched: no token was made
    assert not (state_dir / "registry.sqlite").exists()


def test_probe_set_plan_and_list(state_dir: Path, runner: CliRunner) -> None:
    registry, probe_id = _enrolled_probe(state_dir)
    assert registry.get_probe(probe_id).plan_down_mbps is None

    changed = runner.invoke(
        probe_app, ["set-plan", probe_id, "300/100", "--state-dir", str(state_dir)]
    )
    assert changed.exit_code == 0, changed.output
    assert f"probe {probe_id} fixed plan: 300/100 Mb/s (down/up)" in changed.output
    probe = registry.get_probe(probe_id)
    assert (probe.plan_down_mbps, probe.plan_up_mbps) == (300.0, 100.0)

    listed = runner.invoke(probe_app, ["list", "--state-dir", str(state_dir)])
    assert listed.exit_code == 0, listed.output
    assert "300/100" in listed.output

    refused = runner.invoke(probe_app, ["set-plan", probe_id, "0", "--state-dir", str(state_dir)])
    assert refused.exit_code == 1
    assert "positive number of Mb/s" in " ".join(refused.output.split())
    assert registry.get_probe(probe_id).plan_down_mbps == 300.0
    unknown = runner.invoke(
        probe_app, ["set-plan", "wp-nosuchprobe", "300", "--state-dir", str(state_dir)]
    )
    assert unknown.exit_code == 1
    assert "no probe" in unknown.output


def test_probe_commands_do_not_create_a_registry_in_a_wrong_directory(
    tmp_path: Path, runner: CliRunner
) -> None:
    result = runner.invoke(probe_app, ["list", "--state-dir", str(tmp_path / "typo")])
    assert result.exit_code == 1
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_ttl_units(text: str, expected: timedelta) -> None:
    assert parse_ttl(text) == expected


@pytest.mark.parametrize("text", ["0d", "7", "d", "-1d", "3y"])
def test_bad_ttl_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_ttl(text)


@pytest.mark.parametrize("app", [ca_app, token_app, probe_app, registry_app])
def test_every_command_and_option_has_help(app: typer.Typer) -> None:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    for name, sub in command.commands.items():
        assert sub.help, f"{name} has no help"
        for param in sub.params:
            assert getattr(param, "help", None), f"{name} {param.name} has no help"


# --- the registry in PostgreSQL (replicas on several hosts) -------------------


@pytest.fixture
def registry_uri(postgres: PostgresCluster, tmp_path: Path) -> str:
    """A new, empty database of the session's PostgreSQL, for one registry."""
    database = f"admin_{tmp_path.name.replace('-', '_')[-40:]}"
    postgres.create_database(database)
    return postgres.uri_of(database)


def test_a_city_registry_is_copied_into_postgres_and_used_there(
    state_dir: Path, registry_uri: str, runner: CliRunner
) -> None:
    created = runner.invoke(
        token_app, _token_args(state_dir), obj=AdminContext(ward_lookup=ward_name)
    )
    assert created.exit_code == 0, created.output
    token = _lines(created.output)["token"]

    copied = runner.invoke(
        registry_app, ["copy", "--state-dir", str(state_dir), "--to", registry_uri]
    )
    assert copied.exit_code == 0, copied.output
    assert "1 bootstrap_tokens, 0 probes" in copied.output
    # The token made before the copy is redeemable from PostgreSQL, once.
    shared = ProbeRegistry(registry_uri, ward_name)
    assert shared.redeem_token(token).ward_code == NINH_KIEU

    # The commands reach it with --registry (or WARDPROBE_REGISTRY).
    again = runner.invoke(
        token_app,
        [*_token_args(state_dir), "--registry", registry_uri],
        obj=AdminContext(ward_lookup=ward_name),
    )
    assert again.exit_code == 0, again.output
    assert shared.check_token(_lines(again.output)["token"]).ward_code == NINH_KIEU
    listed = runner.invoke(probe_app, ["list"], env={"WARDPROBE_REGISTRY": registry_uri})
    assert listed.exit_code == 0, listed.output

    # A second copy would mix two registries: refused, nothing added.
    twice = runner.invoke(
        registry_app, ["copy", "--state-dir", str(state_dir), "--to", registry_uri]
    )
    assert twice.exit_code == 1
    assert "not empty" in twice.output
    with sqlite3.connect(state_dir / "registry.sqlite") as con:
        assert con.execute("select count(*) from bootstrap_tokens").fetchone() == (1,)


def test_a_registry_uri_that_is_wrong_or_unreachable_is_one_line(
    tmp_path: Path, runner: CliRunner
) -> None:
    wrong = runner.invoke(probe_app, ["list", "--registry", "mysql://db/x"])
    assert wrong.exit_code == 2
    assert "not a postgres:// URI" in wrong.output
    unreachable = runner.invoke(
        probe_app, ["list", "--registry", f"postgres://nobody@/x?host={tmp_path}"]
    )
    assert unreachable.exit_code == 1
    assert unreachable.output.startswith("error: cannot use the probe registry postgres://")
    assert len(unreachable.output.strip().splitlines()) == 1
