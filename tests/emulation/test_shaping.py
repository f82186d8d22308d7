"""Token-bucket sizing and profile lookup: what the shaper is told to do."""

from __future__ import annotations

import pytest

from emulation.shaping import (
    FIBRE_1G,
    LTE,
    MIN_BURST_BYTES,
    PROFILES,
    LinkProfile,
    NetworkKind,
    link_shapers,
    profile_named,
    shaped,
    tbf_argv,
    tbf_params,
)


def test_named_profiles_are_the_documented_lines() -> None:
    assert set(PROFILES) >= {"fibre_1g", "fibre_300", "lte", "nr5g", "ipv4_only"}
    assert (FIBRE_1G.down_mbps, FIBRE_1G.up_mbps) == (1000, 1000)
    assert LTE.network_kind is NetworkKind.MOBILE
    assert profile_named("nr5g").network_kind is NetworkKind.MOBILE
    assert profile_named("ipv4_only").ipv6 is False


def test_shaped_profile_by_rate_and_by_name() -> None:
    fifty = shaped(50)
    assert (fifty.name, fifty.down_mbps, fifty.up_mbps) == ("shaped_50", 50, 50)
    assert profile_named("shaped_50") == fifty
    asym = profile_named("shaped_100_20")
    assert (asym.down_mbps, asym.up_mbps) == (100, 20)
    with pytest.raises(ValueError, match="unknown link profile"):
        profile_named("dialup")


@pytest.mark.parametrize("rate_mbps", [1, 15, 50, 300, 1000, 2500])
def test_bucket_holds_a_tick_of_tokens_and_a_gso_packet(rate_mbps: float) -> None:
    params = tbf_params(rate_mbps, queue_ms=50)
    rate_bytes_s = rate_mbps * 1e6 / 8
    assert params.rate_bit_s == rate_mbps * 1_000_000
    assert params.burst_bytes >= rate_bytes_s / 100  # >= rate / HZ for any HZ >= 100
    assert params.burst_bytes >= MIN_BURST_BYTES
    # The queue holds the configured 50 ms at line rate, beyond the bucket.
    assert params.limit_bytes - params.burst_bytes >= rate_bytes_s * 0.050 - 1


def test_gigabit_bucket_is_ten_ms_of_tokens() -> None:
    down, up = link_shapers(FIBRE_1G)
    assert down.burst_bytes == up.burst_bytes == 1_250_000


def test_explicit_burst_below_one_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="below one frame"):
        tbf_params(50, queue_ms=50, burst_bytes=1000)


def test_invalid_profiles_are_refused() -> None:
    with pytest.raises(ValueError, match="rates"):
        LinkProfile(name="x", down_mbps=0, up_mbps=10)
    with pytest.raises(ValueError, match="mtu"):
        LinkProfile(name="x", down_mbps=10, up_mbps=10, mtu=576)


def test_tc_command_line() -> None:
    params = tbf_params(50, queue_ms=50)
    argv = tbf_argv("wpx-core", "pr1", params)
    assert argv[:8] == ["tc", "-n", "wpx-core", "qdisc", "replace", "dev", "pr1", "root"]
    assert argv[8:] == [
        "tbf", "rate", "50000000bit", "burst", str(params.burst_bytes),
        "limit", str(params.limit_bytes),
    ]  # fmt: skip
