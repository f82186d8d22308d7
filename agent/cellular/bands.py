"""The operating band of a downlink channel number (EARFCN, NR-ARFCN).

ModemManager's cell info gives the serving cell's channel but not its band,
and `current-bands` lists what the modem is allowed to use, not what it is
on: so the band is read off the channel with the 3GPP tables. Only the
bands deployed or auctioned in Vietnam are listed; any other channel has no
band here (None), and the channel is still reported.

LTE: TS 36.101 Table 5.7.3-1, downlink N_DL ranges (FDD and TDD bands never
share an EARFCN). NR: TS 38.101-1 Table 5.4.2.3-1, downlink NR-ARFCN ranges.
NR bands do overlap: n78 (3300-3800 MHz) lies inside n77 (3300-4200 MHz), so
a channel both contain cannot tell them apart; the narrowest band is named,
which is the one Vietnamese networks (3.5 GHz and 3.7 GHz blocks) announce.
"""

from __future__ import annotations

# (band, first EARFCN, last EARFCN), downlink.
LTE_DL_EARFCN: tuple[tuple[int, int, int], ...] = (
    (1, 0, 599),  # 2110-2170 MHz FDD
    (3, 1200, 1949),  # 1805-1880 MHz FDD
    (5, 2400, 2649),  # 869-894 MHz FDD
    (7, 2750, 3449),  # 2620-2690 MHz FDD
    (8, 3450, 3799),  # 925-960 MHz FDD
    (28, 9210, 9659),  # 758-803 MHz FDD
    (38, 37750, 38249),  # 2570-2620 MHz TDD
    (40, 38650, 39649),  # 2300-2400 MHz TDD
    (41, 39650, 41589),  # 2496-2690 MHz TDD
)

# (band, first NR-ARFCN, last NR-ARFCN), downlink, narrowest band first where
# ranges overlap (n78 before n77).
NR_DL_ARFCN: tuple[tuple[int, int, int], ...] = (
    (1, 422000, 434000),  # 2110-2170 MHz FDD
    (3, 361000, 376000),  # 1805-1880 MHz FDD
    (28, 151600, 160600),  # 758-803 MHz FDD
    (41, 499200, 537999),  # 2496-2690 MHz TDD
    (78, 620000, 653333),  # 3300-3800 MHz TDD
    (77, 620000, 680000),  # 3300-4200 MHz TDD
    (79, 693334, 733333),  # 4400-5000 MHz TDD
)


def _lookup(table: tuple[tuple[int, int, int], ...], channel: int | None) -> int | None:
    if channel is None:
        return None
    for band, first, last in table:
        if first <= channel <= last:
            return band
    return None


def lte_band(earfcn: int | None) -> int | None:
    """The E-UTRA band of a downlink EARFCN (3 for 1300), None outside the table."""
    return _lookup(LTE_DL_EARFCN, earfcn)


def nr_band(nr_arfcn: int | None) -> int | None:
    """The NR band of a downlink NR-ARFCN (41 for 528030), None outside the table."""
    return _lookup(NR_DL_ARFCN, nr_arfcn)
