"""Run inside the test's network namespace (test_browser.py): Debian's
headless Chromium, driven by Playwright, loads the API's HTML map and the
yearly report over TLS with a read token, hovers a ward, tries without a
token, and prints what it found as JSON on stdout. Screenshots go to --out.

The browser trusts the API's certificate by its public key alone
(--ignore-certificate-errors-spki-list with the key of the aggregator's
server.crt): no other certificate error is let through.

Not a test module: `python -m tests.aggregator.api.browser_check --help`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Page, sync_playwright

from analysis import labels
from analysis.maps.layers import UNIT_SUFFIX

WAIT_GUARD_S = 180.0  # for the API to come up: a guard, not a claim about speed
DRAW_GUARD_MS = 180_000  # for plotly to draw the page
UNITS = {suffix: unit for unit, suffix in UNIT_SUFFIX.items()}

# A point inside each drawn ward (its path's fill, tested on a grid over its
# bounding box), in page coordinates, with the ward's code.
_INSIDE = """() => {
  const out = [];
  for (const path of document.querySelectorAll('path.choroplethlocation')) {
    const box = path.getBBox();
    const m = path.getScreenCTM();
    const svg = path.ownerSVGElement;
    let found = null;
    for (let i = 1; i < 12 && !found; i++) {
      for (let j = 1; j < 12 && !found; j++) {
        const p = svg.createSVGPoint();
        p.x = box.x + box.width * i / 12;
        p.y = box.y + box.height * j / 12;
        if (path.isPointInFill(p)) found = p.matrixTransform(m);
      }
    }
    const datum = path.__data__ || {};
    out.push({code: String(datum.loc ?? ''), x: found ? found.x : null, y: found ? found.y : null,
              area: box.width * box.height});
  }
  return out;
}"""


def spki_pin(cert_pem: bytes) -> str:
    """base64(sha256(SubjectPublicKeyInfo)), as Chromium's SPKI list takes it."""
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def wait_for_api(url: str, token: str, ca: Path) -> None:
    deadline = time.monotonic() + WAIT_GUARD_S
    tls = ssl.create_default_context(cafile=ca)
    while True:
        try:
            httpx.get(f"{url}/health", verify=tls, headers={"Authorization": f"Bearer {token}"})
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def hover_a_ward(page: Page, geojson: dict[str, Any]) -> dict[str, Any]:
    """Hover the largest ward that has a figure; what the hover label says
    and what the map's GeoJSON says of that ward."""
    by_code = {str(f["properties"]["ward_code"]): f["properties"] for f in geojson["features"]}
    points = page.evaluate(_INSIDE)
    first = next(iter(by_code.values()))
    suffix = next(k.removeprefix("value_") for k in first if k.startswith("value_"))
    candidates = [
        p for p in points
        if p["x"] is not None and by_code.get(p["code"], {}).get(f"value_{suffix}") is not None
    ]  # fmt: skip
    chosen = max(candidates, key=lambda p: p["area"])
    props = by_code[chosen["code"]]
    page.mouse.move(chosen["x"], chosen["y"])
    page.wait_for_selector(".hoverlayer .hovertext", timeout=DRAW_GUARD_MS)
    shown = page.text_content(".hoverlayer .hovertext") or ""
    return {
        "code": chosen["code"],
        "hover": shown,
        "ward_name": props["ward_name"],
        "value_text": labels.quantity(props[f"value_{suffix}"], UNITS[suffix], "vi"),
        "drawn_codes": sorted({p["code"] for p in points}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)  # https://127.0.0.1:PORT/api/v1
    parser.add_argument("--token", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    wait_for_api(args.url, args.token, args.state_dir / "ca.crt")
    pin = spki_pin((args.state_dir / "server.crt").read_bytes())
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(args.url))
    query = "period=2026&synthetic=true"
    map_url = f"{args.url}/maps/gigabit_capable_share.html?{query}"
    report_url = f"{args.url}/report/2026.html?{query}"
    found: dict[str, Any] = {"outside_requests": [], "failed_requests": []}

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium,
            args=["--no-sandbox", f"--ignore-certificate-errors-spki-list={pin}"],
        )
        # without a token
        anonymous = browser.new_context()
        page = anonymous.new_page()
        response = page.goto(map_url)
        assert response is not None
        found["no_token"] = {"status": response.status, "body": page.inner_text("body")}
        page.screenshot(path=str(args.out / "no_token.png"))
        anonymous.close()

        # with the token: the map
        context = browser.new_context(
            extra_http_headers={"Authorization": f"Bearer {args.token}"},
            viewport={"width": 1400, "height": 1000},
        )
        for name in ("request", "requestfailed"):
            key = "outside_requests" if name == "request" else "failed_requests"
            context.on(
                name,
                lambda r, key=key: (
                    found[key].append(r.url)
                    if key == "failed_requests" or not r.url.startswith((origin, "data:"))
                    else None
                ),
            )
        page = context.new_page()
        response = page.goto(map_url)
        assert response is not None
        found["map_status"] = response.status
        page.wait_for_function(
            "document.querySelectorAll('path.choroplethlocation').length >= 103",
            timeout=DRAW_GUARD_MS,
        )
        found["wards_drawn"] = page.locator("path.choroplethlocation").count()
        found["title"] = page.title()
        # the same map's GeoJSON, for what the hover should say
        geojson = httpx.get(
            f"{args.url}/maps/gigabit_capable_share.geojson?{query}",
            verify=ssl.create_default_context(cafile=args.state_dir / "ca.crt"),
            headers={"Authorization": f"Bearer {args.token}"},
            timeout=600,
        )
        found["hover"] = hover_a_ward(page, geojson.json())
        page.screenshot(path=str(args.out / "map_hover.png"))

        # with the token: the report
        page = context.new_page()
        response = page.goto(report_url, timeout=DRAW_GUARD_MS)
        assert response is not None
        found["report_status"] = response.status
        found["report_h1"] = page.inner_text("h1")
        found["report_images"] = page.evaluate(
            "() => Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        page.screenshot(path=str(args.out / "report_top.png"))
        found["pages_requests_outside"] = list(found.pop("outside_requests"))
        found["pages_requests_failed"] = list(found.pop("failed_requests"))
        found["outside_requests"], found["failed_requests"] = [], []
        # no way out of the namespace: a page elsewhere cannot load
        try:
            page.goto("https://198.18.0.1/", timeout=15_000)
            found["outside_reachable"] = True
        except Exception as err:
            found["outside_reachable"] = False
            found["outside_error"] = str(err).splitlines()[0]
        context.close()
        browser.close()
    json.dump(found, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
