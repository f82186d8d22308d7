"""The intervals' arithmetic."""

from __future__ import annotations

import pytest

from analysis.indicators import wilson


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 30, 100, 1000])
def test_wilson_bounds_are_exact_at_0_and_1_and_stay_within(n: int) -> None:
    assert wilson(0, n)[0] == 0.0
    assert wilson(n, n)[1] == 1.0
    for yes in range(n + 1):
        low, high = wilson(yes, n)
        assert 0.0 <= low <= yes / n <= high <= 1.0
        assert (low > 0.0) is (yes > 0) and (high < 1.0) is (yes < n)
