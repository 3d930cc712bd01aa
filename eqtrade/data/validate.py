"""Validation of price panels: report problems with ticker and date; never fix them silently."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataValidationError

#: |log return| above which a single day is reported as a jump (0.5 = +65% / -39%).
JUMP_LOG_RETURN = 0.5
#: consecutive zero-return days from which a run is reported (stale or halted quotes).
ZERO_RUN_DAYS = 5
#: prices below this are reported: with prices rounded to 3 decimals, returns are quantised.
SUB_DOLLAR = 1.0


@dataclass(frozen=True)
class Issue:
    """One finding: 'error' blocks use of the data, 'warning' and 'info' are reported only."""

    severity: str
    check: str
    ticker: str
    date: str
    message: str


@dataclass
class ValidationReport:
    """All findings of `validate_prices` on one panel."""

    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.errors

    def to_frame(self) -> pd.DataFrame:
        """The findings as a table."""
        return pd.DataFrame([i.__dict__ for i in self.issues], columns=["severity", "check", "ticker", "date", "message"])

    def raise_if_errors(self, what: str = "prices") -> None:
        """Raise DataValidationError listing every error."""
        if self.errors:
            lines = "\n".join(f"  {i.ticker} {i.date}: {i.message}" for i in self.errors[:20])
            more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
            raise DataValidationError(f"{what} failed validation ({len(self.errors)} errors):\n{lines}{more}")

    def __str__(self) -> str:
        if not self.issues:
            return "validation: no issues"
        n_err, n_warn = len(self.errors), len(self.warnings)
        head = f"validation: {n_err} error(s), {n_warn} warning(s), {len(self.issues) - n_err - n_warn} note(s)"
        rows = [f"  {i.severity:<7} {i.check:<12} {i.ticker:<8} {i.date:<23} {i.message}" for i in self.issues]
        return "\n".join([head, *rows])


def _d(ts) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of every run of True in a boolean array."""
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    diff = np.diff(padded)
    starts, ends = np.flatnonzero(diff == 1), np.flatnonzero(diff == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


#: a single day's move beyond x100 up or down (|log return| > log 100) cannot be a real price
#: series (a decimal error, a unit change): an error unless allowed
ABSURD_LOG_RETURN = float(np.log(100.0))


def validate_prices(
    prices: pd.DataFrame,
    jump_log_return: float = JUMP_LOG_RETURN,
    zero_run_days: int = ZERO_RUN_DAYS,
    sub_dollar: float = SUB_DOLLAR,
    allow_jumps: bool = False,
) -> ValidationReport:
    """Check a wide price panel (DatetimeIndex x tickers) and report every problem found.
    Non-finite prices are errors; a daily move beyond x100 is an error unless `allow_jumps`."""
    rep = ValidationReport()
    add = rep.issues.append
    if not isinstance(prices.index, pd.DatetimeIndex):
        add(Issue("error", "index", "*", "", f"index is {type(prices.index).__name__}, expected dates"))
        return rep
    dup = prices.index[prices.index.duplicated()]
    if len(dup):
        add(Issue("error", "duplicates", "*", _d(dup[0]), f"{len(dup)} duplicate date(s), first {_d(dup[0])}"))
    if not prices.index.is_monotonic_increasing:
        bad = np.flatnonzero(np.diff(prices.index.asi8) < 0)
        add(Issue("error", "order", "*", _d(prices.index[bad[0] + 1]), "dates are not in increasing order"))
    for col in prices.columns:
        s = pd.to_numeric(prices[col], errors="coerce")
        t = str(col)
        if prices[col].notna().sum() != s.notna().sum():
            add(Issue("error", "non-numeric", t, "", "column holds values that are not numbers"))
        valid = s.dropna()
        if valid.empty:
            add(Issue("error", "empty", t, "", "no prices at all"))
            continue
        first, last = valid.index[0], valid.index[-1]
        held = np.flatnonzero(s.notna().to_numpy())
        inner = s.iloc[held[0] : held[-1] + 1]  # by position: labels may repeat or be out of order
        nan_dates = inner.index[inner.isna()]
        if len(nan_dates):
            add(Issue("error", "nan", t, _d(nan_dates[0]),
                      f"{len(nan_dates)} NaN price(s) inside its history, first on {_d(nan_dates[0])}"))
        if first != s.index[0] or last != s.index[-1]:
            add(Issue("info", "history", t, f"{_d(first)}..{_d(last)}",
                      f"prices only from {_d(first)} to {_d(last)} (panel {_d(s.index[0])}..{_d(s.index[-1])})"))
        infinite = valid[~np.isfinite(valid.to_numpy(dtype=float))]
        if len(infinite):
            add(Issue("error", "non-finite", t, _d(infinite.index[0]),
                      f"{len(infinite)} non-finite price(s), first {infinite.iloc[0]} on {_d(infinite.index[0])}"))
            continue
        nonpos = valid[valid <= 0]
        if len(nonpos):
            add(Issue("error", "non-positive", t, _d(nonpos.index[0]),
                      f"{len(nonpos)} price(s) <= 0, first {nonpos.iloc[0]:g} on {_d(nonpos.index[0])}"))
            continue  # returns are meaningless below
        v = valid.to_numpy(dtype=float)
        logret = np.diff(np.log(v))
        absurd = np.flatnonzero(np.abs(logret) > ABSURD_LOG_RETURN)
        if len(absurd) and not allow_jumps:
            j = absurd[0]
            add(Issue("error", "absurd-jump", t, _d(valid.index[j + 1]),
                      f"price moved x{np.exp(logret[j]):.3g} in one day ({v[j]:g} -> {v[j + 1]:g} on "
                      f"{_d(valid.index[j + 1])}; {len(absurd)} such day(s)); a decimal or unit error? "
                      "Import with --allow-jumps if it is real"))
        jumps = np.flatnonzero(np.abs(logret) > jump_log_return)
        for j in jumps[:10]:
            add(Issue("warning", "jump", t, _d(valid.index[j + 1]),
                      f"single-day log return {logret[j]:+.3f} (x{np.exp(logret[j]):.2f}) on {_d(valid.index[j + 1])}"))
        if len(jumps) > 10:
            add(Issue("warning", "jump", t, "", f"... {len(jumps) - 10} more jumps"))
        zero = logret == 0.0
        long_runs = [(a, n) for a, n in _runs(zero) if n >= zero_run_days]
        if long_runs:
            a, n = max(long_runs, key=lambda r: r[1])
            add(Issue("warning", "zero-run", t, _d(valid.index[a + 1]),
                      f"{len(long_runs)} run(s) of >= {zero_run_days} zero-return days; longest {n} days from "
                      f"{_d(valid.index[a + 1])}"))
        if len(logret) and zero.mean() > 0.05:
            add(Issue("warning", "zero-days", t, "", f"{zero.mean():.1%} of days have a zero return"))
        low = valid < sub_dollar
        if low.any():
            spans = _runs(low.to_numpy())
            a, n = spans[0]
            b = spans[-1][0] + spans[-1][1] - 1
            add(Issue("warning", "sub-dollar", t, f"{_d(valid.index[a])}..{_d(valid.index[b])}",
                      f"{int(low.sum())} day(s) below ${sub_dollar:g} between {_d(valid.index[a])} and "
                      f"{_d(valid.index[b])}: returns are quantised by price rounding"))
    return rep
