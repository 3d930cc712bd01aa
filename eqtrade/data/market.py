"""Price panels as the environments and backtests use them: validated wide frames, named
splits, simple returns and the decision days of one split (`Market`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: default named splits of the bundled data; they never overlap
DEFAULT_SPLITS: dict[str, tuple[str, str]] = {
    "train": ("2000-01-01", "2014-12-31"),
    "valid": ("2015-01-01", "2018-12-31"),
    "test": ("2019-01-01", "2022-12-28"),
}

ALIGNS = ("inner", "mask")


def trailing_rms(R: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """[T + 1, N]: row s is the root mean square (not demeaned) of the valid R[j] among the
    `window` days before s (j in s - window .. s - 1; 0 with none). Row s + 1 is thus the RMS up to
    and including day s; `Market.trailing_vol` is rows 0..T-1."""
    z = np.zeros((1, R.shape[1]))
    sq = np.concatenate([z, np.cumsum(np.where(valid, R**2, 0.0), axis=0)])  # Σ_{j<k}
    cnt = np.concatenate([z, np.cumsum(valid, axis=0)])
    s = np.arange(len(R) + 1)
    lo = np.maximum(s - window, 0)
    return np.sqrt(np.maximum((sq[s] - sq[lo]) / np.maximum(cnt[s] - cnt[lo], 1), 0.0))


def resolve_prices(prices=None, tickers=None, data_dir=None, align: str = "inner") -> pd.DataFrame:
    """A validated wide price frame from a DataFrame, a dataset name, or None (bundled 20 stocks).

    align="inner": only the dates on which every asset has a price (a universe of assets that
    all traded through the whole period: survivorship bias, and a look-ahead when an asset lists
    late, since earlier dates are dropped because of it). align="mask": every date on which some
    asset has a price; an asset is NaN before it lists and after it delists (never inside its
    history), and the environments trade it only where it has a price (`Market.tradable`)."""
    from .load import load_prices
    from .validate import validate_prices

    if align not in ALIGNS:
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
    if prices is None or isinstance(prices, str):
        df = load_prices(tickers, source=prices or "bundled", data_dir=data_dir,
                         align="inner" if align == "inner" else "outer")
        return df if align == "inner" else df.dropna(how="all")
    if not isinstance(prices, pd.DataFrame):
        raise TypeError(f"prices must be a wide DataFrame or a dataset name, got {type(prices).__name__}")
    df = prices if tickers is None else prices[list(tickers)]
    if not isinstance(df.index, pd.DatetimeIndex):
        raise ValueError(f"prices need a DatetimeIndex, got {type(df.index).__name__}")
    arr = df.to_numpy(dtype=float)
    if np.isinf(arr).any() or (align == "inner" and np.isnan(arr).any()):
        bad = np.argwhere(~np.isfinite(arr))[0]
        hint = "" if np.isinf(arr).any() else " (assets listed late or delisted early: align='mask')"
        raise ValueError(f"price panel has NaN/inf: {df.columns[bad[1]]} on {df.index[bad[0]]:%Y-%m-%d}{hint}")
    if align == "mask":
        df = df.dropna(how="all")
        empty = [str(c) for c in df.columns if df[c].isna().all()]
        if empty:
            raise ValueError(f"no price at all for {', '.join(empty)}")
    validate_prices(df).raise_if_errors("price panel")  # NaN inside a ticker's history is an error
    return df


def parse_split(text: str):
    """A split as written on a command line or in a spec: a name, or "START:END" -> (start, end).
    Either end may be left out ("2019-01-01:", ":2015-12-31"): the data's first or last date."""
    return tuple(s.strip() for s in text.split(":", 1)) if ":" in text else text


#: what an open end of a split stands for: before any and after every date of the data
OPEN_START, OPEN_END = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")


def split_range(split) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) of a named split or of an explicit (start, end) pair; end inclusive. An empty
    (or None) start or end is open: the data's first or last date (OPEN_START, OPEN_END here)."""
    if isinstance(split, str):
        if split not in DEFAULT_SPLITS:
            raise ValueError(f"unknown split {split!r}; use {', '.join(DEFAULT_SPLITS)} or a (start, end) pair")
        split = DEFAULT_SPLITS[split]
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ValueError(f"a split is a name ({', '.join(DEFAULT_SPLITS)}) or a (start, end) pair, got {split!r}")
    start, end = (default if s is None or (isinstance(s, str) and not s.strip()) else pd.Timestamp(s)
                  for s, default in zip(split, (OPEN_START, OPEN_END)))
    for s, t in zip(split, (start, end)):
        if pd.isna(t):
            raise ValueError(f"{s!r} is not a date")
    if end < start:
        raise ValueError(f"split end {end:%Y-%m-%d} is before its start {start:%Y-%m-%d}")
    return start, end


def span_text(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """START..END of a split as messages show it (an open end as "start/end of data")."""
    a = "start of data" if start <= OPEN_START else f"{start:%Y-%m-%d}"
    b = "end of data" if end >= OPEN_END else f"{end:%Y-%m-%d}"
    return f"{a}..{b}"


@dataclass
class Market:
    """Simple returns R[t] = p[t]/p[t-1] - 1 of a panel, and the decision days of one split.

    A decision day t has a full window (W returns up to and including t, which may reach
    before the split) and a next day t+1 inside the split (the reward is realised over t -> t+1):
    the decision days run from the trading day before the split's first day (when the data has
    it and the window fits) to the day before its last, so the returns realised are exactly the
    split's trading days and consecutive splits tile the calendar without a gap or an overlap.
    """

    dates: pd.DatetimeIndex
    tickers: list[str]
    returns: np.ndarray  # [T, N] float64; returns[0] = 0 (no previous price); 0 where not both prices exist
    first: int  # first decision day index
    last: int  # last decision day index (inclusive)
    #: [T, N] bool: the asset has a price on day t, so it can be traded at t's close; None when
    #: every asset has a price every day. Known at t (no look-ahead). An asset with no price on
    #: t+1 (it delisted) returns 0 over t -> t+1: what was held is cash at its last price.
    tradable: np.ndarray | None = None

    @classmethod
    def from_prices(cls, prices: pd.DataFrame, window: int, split) -> "Market":
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        start, end = split_range(split)
        name = f"split {split!r} " if isinstance(split, str) else "split "
        if len(prices) == 0:
            raise ValueError(f"{name}{span_text(start, end)}: the price panel has no rows")
        span = f"the data's dates are {prices.index[0]:%Y-%m-%d}..{prices.index[-1]:%Y-%m-%d}"
        fix = ("; choose a split inside the data's dates (--split START:END, or split = [START, END] under [env] "
               "or [eval_env] of a run config)")
        # nothing after the split's last day is kept: an env (and a checkpoint that pickles it)
        # cannot read later data, e.g. the test period while training and validating
        prices = prices.loc[prices.index <= end]
        p = prices.to_numpy(dtype=float)
        has = np.isfinite(p)
        r = np.zeros_like(p)
        with np.errstate(invalid="ignore"):
            r[1:] = np.where(has[1:] & has[:-1], p[1:] / p[:-1] - 1.0, 0.0)
        dates = prices.index
        in_split = np.flatnonzero((dates >= start) & (dates <= end))
        if len(in_split) < 2:
            raise ValueError(f"{name}{span_text(start, end)} has {len(in_split)} trading day(s) in the "
                             f"data ({span}); it needs at least 2{fix}")
        # the first decision is the close before the split's first day, so that the split's
        # daily returns are exactly its own trading days: consecutive splits tile without a gap
        # (that decision reads only prices before the split); returns[t-W+1..t] need prices from t-W on
        first = max(int(in_split[0]) - 1, window)
        last = int(in_split[-1]) - 1
        if first > last:
            raise ValueError(f"window {window} is longer than the history available before/in {name}"
                             f"{span_text(start, end)} ({len(in_split)} days in the split, "
                             f"{in_split[0]} before it; {span}): it needs {window + 2} days up to the split's end"
                             f"{fix}, or a shorter window")
        return cls(dates, [str(c) for c in prices.columns], r, first, last, None if has.all() else has)

    def __post_init__(self) -> None:
        # Timestamps created once: indexing a DatetimeIndex builds a new Timestamp every step
        self.date_list = list(self.dates)

    def valid_returns(self) -> np.ndarray:
        """[T, N] bool: R[s] is a real return (prices on both s - 1 and s); the placeholder zeros
        before a listing (and returns[0]) are not."""
        has = np.ones_like(self.returns, dtype=bool) if self.tradable is None else self.tradable
        valid = np.zeros_like(has)
        valid[1:] = has[1:] & has[:-1]
        return valid

    def trailing_vol(self, vol_window: int = 63, returns: np.ndarray | None = None) -> np.ndarray:
        """[T, N] causal trailing volatility: σ[s] is the root mean square (not demeaned) of the
        valid returns among the `vol_window` before s (fewer at the start of the data; 0 with
        none). `returns`: another [T, N] table aligned with `self.returns` (noisy observations of
        the market, `eqtrade.envs.wrappers.MarketNoise`); default the market's own."""
        if vol_window < 1:
            raise ValueError(f"vol_window must be >= 1, got {vol_window}")
        R = self.returns if returns is None else returns
        return trailing_rms(R, self.valid_returns(), vol_window)[:-1]

    def scaled_returns(self, vol_window: int = 63, clip: float = 5.0, floor: float = 1e-6,
                       returns: np.ndarray | None = None) -> np.ndarray:
        """Returns divided by a causal trailing volatility, clipped: R[s] / σ[s-1], where σ[s-1] is
        the root mean square of the `vol_window` returns before s (fewer at the start of the data;
        `trailing_vol`). `returns`: scale another [T, N] table aligned with `self.returns` instead
        (noisy observations of the market: their volatility is then the noisy one too).

        Causal (σ uses data strictly before the return it scales); not demeaned, so R -> -R maps
        the scaled returns to their negatives exactly; R -> c·R leaves them unchanged once the
        trailing window is full (a return-scale symmetry). `floor` only guards a zero volatility
        (a run of zero returns)."""
        if clip <= 0:
            raise ValueError(f"clip must be > 0, got {clip}")
        R = self.returns if returns is None else returns
        sigma = self.trailing_vol(vol_window, R)
        out = np.zeros_like(R)
        ok = sigma > floor
        out[ok] = R[ok] / sigma[ok]
        return np.clip(out, -clip, clip)

    @property
    def n_days(self) -> int:
        """Number of decision days in the split."""
        return self.last - self.first + 1
