"""The national references, each by its own rules (over samples, not
probe-balanced), kept apart from the plan's indicators:
QCVN 126:2021 for 5G (qcvn126_download_mean, qcvn126_upload_mean,
qcvn126_download_floor_share, qcvn126_latency_mean, per operator) and
QCVN 34:2022 for fixed broadband (qcvn34_download_share,
qcvn34_upload_share, each line against its advertised plan).

Where each part is defined:
- which tests count: the views throughput_checked and latency_checked;
- QCVN 126: the view qcvn126_5g: the operator's means over its 5G samples
  (valid mobile tests on NR whose radio did not change technology) and the
  share of download samples at the 30 Mb/s floor. The indicators add up
  the same samples from the daily rollups (rollup_download,
  rollup_upload, rollup_latency_tech via units_qcvn126), only for speed;
  the interval (a cluster bootstrap over probes), the floor and the
  targets are here;
- QCVN 34: the view qcvn34_fixed_lines: each line's means against 0.8 x its
  plan, lines without a recorded plan apart, probe-limited below 0.8 x the
  plan. The indicators take the same means from the rollups (units_download,
  units_upload); the share of lines, its Wilson interval, the floor and the
  targets are here.
tests/analysis/test_national_references.py holds the figures to the views.
"""

from __future__ import annotations

from analysis import constants as k
from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, Unit

QCVN126_NOTE = (
    "national reference (QCVN 126:2021): {what} over the operator's 5G samples "
    "(valid tests on NR, NSA or SA), not probe-balanced"
)
QCVN34_NOTE = (
    "national reference (QCVN 34:2022): share of fixed lines whose mean {what} over "
    "their tests (samples) is >= 0.8 x the plan's advertised {speed}; probe-limited: "
    "interface below 0.8 x the plan"
)


def figures(ctx: Context) -> list[Figure]:
    """QCVN 126:2021 (5G, per operator), then QCVN 34:2022 (fixed lines against their plans)."""
    return qcvn126_figures(ctx) + qcvn34_figures(ctx)


def qcvn126_figures(ctx: Context) -> list[Figure]:
    """Means over the operator's 5G samples, per operator whatever --by says."""
    nr = ctx.rows("units_qcvn126")
    out: list[Figure] = []
    for name, total, count, what in (
        ("qcvn126_download_mean", "download_sum_mbps", "download_tests", "mean download"),
        ("qcvn126_upload_mean", "upload_sum_mbps", "upload_tests", "mean upload"),
        (
            "qcvn126_download_floor_share",
            "download_tests_at_floor",
            "download_tests",
            f"share of download samples >= {k.QCVN126_DOWNLOAD_FLOOR_MBPS:g} Mb/s",
        ),
        ("qcvn126_latency_mean", "latency_sum_ms", "latency_tests", "mean ICMP median RTT"),
    ):
        unit = "share" if name.endswith("share") else "ms" if "latency" in name else "Mb/s"
        out += ctx.calc.sample_figures(
            name,
            unit,
            [
                (
                    int(r["ward_code"]),
                    f"operator={r['operator_name']}",
                    float(r[total]),
                    int(r[count]),
                )
                for r in nr
            ],
            QCVN126_NOTE.format(what=what),
        )
    return out


def qcvn34_figures(ctx: Context) -> list[Figure]:
    """Each fixed line's sample means against its plan; lines without a plan apart."""
    plans = {
        str(r[0]): (r[1], r[2])
        for r in ctx.con.execute(
            "select probe_id, plan_down_mbps, plan_up_mbps from probes"
        ).fetchall()
    }
    uploads = {
        (r["probe_id"], r["ward_code"]): r
        for r in ctx.rows("units_upload")
        if r["network_kind"] == "fixed"
    }
    downloads = {(r["probe_id"], r["ward_code"]): r for r in ctx.fixed}
    ratio = k.QCVN34_PLAN_RATIO
    out: list[Figure] = []
    for name, lines, plan_index, what, speed in (
        ("qcvn34_download_share", downloads, 0, "download", "download speed (Vd)"),
        ("qcvn34_upload_share", uploads, 1, "upload", "upload speed (Vu)"),
    ):
        recorded: list[Unit] = []
        unrecorded: list[Unit] = []
        for key, r in sorted(lines.items()):
            plan = plans.get(key[0], (None, None))[plan_index]
            # the interface's speed as either direction's tests reported it
            links = [
                x["link_speed_mbps"]
                for x in (downloads.get(key), uploads.get(key))
                if x is not None and x["link_speed_mbps"] is not None
            ]
            link = max(links) if links else None
            line = Unit(
                ward_code=r["ward_code"],
                group=ctx.fixed_group(r["probe_id"]),
                value=1.0 if plan is not None and r["mean_mbps"] >= ratio * plan else 0.0,
                tests=r["tests"],
                limited=plan is not None and link is not None and link < ratio * plan,
            )
            (recorded if plan is not None else unrecorded).append(line)
        out += ctx.calc.share_figures(
            name,
            recorded,
            QCVN34_NOTE.format(what=what, speed=speed),
            apart=unrecorded,
            apart_note="lines apart, plan not recorded",
        )
    return out
