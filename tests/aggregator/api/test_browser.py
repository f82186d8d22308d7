"""The proof in a browser: in a network namespace with nothing but loopback,
the API runs (TLS, the aggregator's certificate) and Debian's headless
Chromium, driven by Playwright (browser_check.py), loads the HTML map and
the yearly report from it with a read token: every ward is drawn, hovering
one shows its name and value, nothing is fetched from elsewhere (nor could
be), and without the token the page is refused. Screenshots are kept under
$WARDPROBE_TEST_ARTEFACTS (default tests/artefacts/)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.aggregator.api.conftest import ApiData, write_config
from tests.browser import CHROMIUM, artefacts_dir, browser_missing, in_netns, offline_netns

REPO = Path(__file__).resolve().parents[3]
# Guards against a hang, not claims about speed.
CHECK_GUARD_S = 900


@pytest.mark.netns
def test_the_map_and_the_report_in_chromium_with_no_network(
    api_data: ApiData, tmp_path: Path
) -> None:
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    assert CHROMIUM is not None
    out = artefacts_dir("api_browser")
    for old in out.glob("*.png"):
        old.unlink()
    config = write_config(tmp_path / "aggregator.toml", api_data, "127.0.0.1:8443")
    with offline_netns("wpapi") as ns:
        routes = subprocess.run(
            ["ip", "-n", ns, "route", "show"], check=True, capture_output=True, text=True
        )
        assert routes.stdout.strip() == ""  # no route out of the namespace
        log = (tmp_path / "api.log").open("wb")
        api = subprocess.Popen(
            in_netns(ns, [sys.executable, "-m", "aggregator", "api", "serve",
                          "--config", str(config)]),
            stderr=log, cwd=REPO,
        )  # fmt: skip
        try:
            check = subprocess.run(
                in_netns(ns, [sys.executable, "-m", "tests.aggregator.api.browser_check",
                              "--url", "https://127.0.0.1:8443/api/v1",
                              "--token", api_data.token, "--state-dir", str(api_data.state_dir),
                              "--chromium", CHROMIUM, "--out", str(out)]),
                capture_output=True, text=True, cwd=REPO, timeout=CHECK_GUARD_S,
            )  # fmt: skip
        finally:
            api.send_signal(signal.SIGTERM)
            api.wait(timeout=120)
            log.close()
    assert check.returncode == 0, check.stderr[-3000:]
    found = json.loads(check.stdout)

    assert found["no_token"]["status"] == 401
    assert json.loads(found["no_token"]["body"]) == {"detail": "unauthorized"}

    assert found["map_status"] == 200
    assert found["wards_drawn"] == 103
    assert len(found["hover"]["drawn_codes"]) == 103
    hover = found["hover"]
    assert hover["ward_name"] in hover["hover"]
    assert f"Giá trị: {hover['value_text']}" in hover["hover"]
    assert f"mã {hover['code']}" in hover["hover"]

    assert found["report_status"] == 200
    assert "Báo cáo" in found["report_h1"] and "2026" in found["report_h1"]
    assert found["report_images"] and all(found["report_images"])  # the maps inside it drew

    assert found["pages_requests_outside"] == []  # the pages asked nothing of elsewhere
    assert found["pages_requests_failed"] == []
    assert found["outside_reachable"] is False
    for shot in ("no_token.png", "map_hover.png", "report_top.png"):
        assert (out / shot).stat().st_size > 0, shot
