"""Symmetry gap of real data: invariances of the statistic, symmetric vs asymmetric markets, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eqtrade.cli import main
from eqtrade.data import load_prices
from eqtrade.symmetry.gap import _directions, reflection_gap, sliced_gap


def prices_from_returns(r: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(50 * np.cumprod(1 + r, axis=0), index=pd.bdate_range("2001-01-01", periods=len(r)))


@pytest.mark.parametrize("seed", range(3))
def test_gap_is_reflection_invariant_and_scale_free(seed):
    r = np.random.default_rng(seed).standard_t(3, size=(800, 2)) * 0.01 + 0.001
    th = _directions(16, 8, seed)
    g = sliced_gap(r, th)
    assert g == pytest.approx(sliced_gap(-r, th), rel=1e-12)  # the distance between X and -X is symmetric
    assert g == pytest.approx(sliced_gap(7.0 * r, th), rel=1e-12)  # relative: unit-free


def test_symmetric_market_reads_as_symmetric_and_skewed_one_does_not():
    rng = np.random.default_rng(0)
    sym = reflection_gap(prices_from_returns(rng.standard_t(4, size=(2500, 1)) * 0.01), window=16, n_boot=40)
    assert sym[0].epsilon < 0.05 and "indistinguishable" in sym[0].reading
    # strong drift and negative skew: small steady gains, rare large losses
    crash = np.where(rng.random((2500, 1)) < 0.03, -0.08, 0.004) + rng.normal(0, 0.003, (2500, 1))
    asym = reflection_gap(prices_from_returns(crash), window=16, n_boot=40)
    assert asym[0].gap > asym[0].floor and asym[0].eps_lo > 0 and asym[0].skew < -2
    assert asym[0].epsilon > 5 * max(sym[0].epsilon, 0.01)


def test_real_data_rows_per_asset_and_pooled():
    rows = reflection_gap(load_prices(["AAPL", "KO", "XOM"], start="2014-12-01", end="2018-12-31"), n_boot=20)
    assert [r.asset for r in rows] == ["AAPL", "KO", "XOM", "pooled"]
    for r in rows:
        assert 0 <= r.eps_lo <= r.epsilon <= r.eps_hi or r.epsilon == 0
        assert np.isfinite([r.drift, r.skew, r.down_up_vol, r.gap, r.floor]).all()


def test_cli_symmetry(capsys):
    assert main(["symmetry", "--data", "AAPL", "KO", "--split", "valid", "--boot", "10"]) == 0
    out = capsys.readouterr().out
    assert "2015-01-01..2018-12-31" in out and "pooled: ε =" in out and "AAPL: ε =" in out
    assert "reflection of the portfolio env's accounting" in out and "'target' keeps it exact" in out
    assert main(["symmetry", "--data", "factor-etfs", "--split", "2016-01-01:2017-12-31", "--boot", "5"]) == 0
    assert "MTUM" in capsys.readouterr().out


def _regime_prices(drift_in_calm: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2000-01-03", periods=4000)
    vol = np.where((np.arange(4000) // 400) % 2 == 0, 0.01, 0.03)  # calm and volatile regimes
    R = vol[:, None] * rng.standard_normal((4000, 2)) + np.where(vol == 0.01, drift_in_calm, 0.0)[:, None]
    return pd.DataFrame(100 * np.cumprod(1 + R, axis=0), index=days, columns=["A", "B"])


def test_scale_gap_is_noise_for_a_scale_symmetric_market_and_large_when_regimes_differ():
    from eqtrade.symmetry.gap import scale_gap

    sym = {r.asset: r for r in scale_gap(_regime_prices(0.0), window=16, n_boot=20)}
    broken = {r.asset: r for r in scale_gap(_regime_prices(0.006), window=16, n_boot=20)}
    assert sym["pooled"].vol_ratio > 2  # the halves really are calm and volatile
    assert sym["pooled"].gap <= sym["pooled"].floor * 1.5
    assert broken["pooled"].epsilon > 3 * max(sym["pooled"].epsilon, 0.01)


def test_exchangeability_gap_sees_a_different_asset_and_not_a_rescaled_one():
    """Assets drawn from one law (one of them at 3x the volatility: normalising removes that) are
    exchangeable; an asset with a strong trend per unit of risk is not, and only it stands out."""
    from eqtrade.symmetry.gap import exchangeability_gap

    rng = np.random.default_rng(0)
    T = 2500
    R = rng.standard_t(5, size=(T, 5)) * 0.01
    R[:, 1] *= 3.0
    R[:, 4] = np.abs(R[:, 4]) * 0.9  # only up days: far from the others after normalising
    dates = pd.bdate_range("2005-01-03", periods=T)
    prices = pd.DataFrame(100 * np.cumprod(1 + R, axis=0), index=dates, columns=list("ABCDE"))
    rows = {r.asset: r for r in exchangeability_gap(prices, window=16, n_boot=20)}
    assert rows["E"].gap > 5 * rows["E"].floor and rows["E"].epsilon > 0.1
    for a in "ABCD":
        assert rows[a].gap < rows["E"].gap / 3, (a, rows[a])
    assert rows["B"].vol > 2.5 * rows["A"].vol  # the raw scales differ, the normalised windows do not
    assert "pooled" in rows
    with pytest.raises(ValueError, match="at least 2 assets"):
        exchangeability_gap(prices[["A"]])
