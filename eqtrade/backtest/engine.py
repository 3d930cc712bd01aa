"""Backtests: roll out an agent (deterministic) or a baseline over a split, and a vectorised
engine that turns a weight matrix into daily returns with exactly the environments' costs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.market import span_text, split_range
from ..envs.portfolio import FILLS, borrow_rate
from ..util import Range

#: the allowed trading cost of every backtest (baselines, files, the Python API)
COST_BPS = Range(0, 10_000, note="basis points of each unit traded; a negative cost would be a rebate")
#: the allowed short-borrow fee of every backtest (annual, on the short weights held)
BORROW_BPS = Range(0, 10_000, note="the annual fee on short weights held, in basis points")

#: the baselines by name: the simple four, then the estimated rules of `eqtrade.backtest.baselines`
SIMPLE_BASELINES = ("equal-weight", "buy-and-hold", "sp500", "cash")
BASELINES = (*SIMPLE_BASELINES, "ivol", "minvar", "meanrisk", "hrp", "erc", "mom", "volman")
#: each baseline's name in reports (the S&P 500's is SP500_LABEL or the benchmark's own)
BASELINE_NAMES = {"equal-weight": "equal weight (daily)", "buy-and-hold": "buy & hold EW", "cash": "cash",
                  "ivol": "inverse volatility", "minvar": "minimum variance", "meanrisk": "maximum Sharpe",
                  "hrp": "hierarchical risk parity", "erc": "equal risk contribution", "mom": "momentum 12-1 (top third)",
                  "volman": "volatility-managed EW"}
#: the bundled benchmark is the S&P 500 price index: dividends (about 2%/yr) are not in it, while
#: the bundled stocks are dividend-adjusted; `--benchmark NAME` takes a total-return series instead
SP500_LABEL = "S&P 500 price index (excl. dividends)"


def check_fill(fill) -> int:
    """The lag in trading days of a `fill` ("close": 0, "next_close": 1); a one-line ValueError otherwise."""
    if not isinstance(fill, str) or fill not in FILLS:
        raise ValueError(f"fill = {fill!r} is not one of 'close', 'next_close' (when an order fills: at the close "
                         "it is decided on, or one trading day later)")
    return FILLS.index(fill)


@dataclass
class Backtest:
    """Daily returns (indexed by the day they are realised) and the target weights traded the
    close before and held over the day (indexed by the day they fill: the decision day with fill
    "close", the day after it with "next_close")."""

    name: str
    returns: pd.Series
    weights: pd.DataFrame | None = None
    traded: np.ndarray | None = None  # the turnover charged each decision day (what was really traded)
    kind: str | None = None  # the baseline's name in BASELINES ("equal-weight", "volman", ...); None: an agent

    @property
    def turnover(self) -> float:
        """Mean daily turnover actually traded (and charged): Σ|w_t − w_held| with the weights held
        after drift in the "drift" cost model; Σ|w_t − w_{t−1}| of the targets where only those are
        known (0 where nothing is)."""
        if self.traded is not None and len(self.traded):
            return float(np.mean(self.traded))
        if self.weights is None or self.weights.empty:
            return 0.0
        w = self.weights.to_numpy()
        return float(np.abs(np.diff(np.vstack([np.zeros(w.shape[1]), w]), axis=0)).sum(1).mean())


def decision_days(prices: pd.DataFrame, split, window: int = 1) -> pd.DatetimeIndex:
    """The decision days of a split, as the environments define them (`Market`): from the trading
    day before the split's first day to the day before its last (every t+1 inside the split)."""
    start, end = split_range(split)
    idx = prices.index
    pos = np.flatnonzero((idx >= start) & (idx <= end))
    if len(pos) < 2:
        raise ValueError(f"split {span_text(start, end)} has {len(pos)} trading day(s) in the data "
                         f"({idx[0]:%Y-%m-%d}..{idx[-1]:%Y-%m-%d}); a backtest needs at least 2")
    first, last = max(int(pos[0]) - 1, window), int(pos[-1]) - 1  # as `Market`: returns on the split's own days
    if first > last:
        raise ValueError(f"window {window} is longer than the history before/in split {span_text(start, end)} "
                         f"({len(pos)} days in the split, {pos[0]} before it)")
    return idx[first : last + 1]


def weights_backtest(prices: pd.DataFrame, weights: pd.DataFrame, cost_bps: float = 10.0,
                     cost_model: str = "drift", name: str = "strategy", fill: str = "close",
                     borrow_bps: float = 0.0) -> Backtest:
    """Vectorised: target weights w_t (rows = decision days, columns ⊆ prices) -> daily returns
    r_{t+1} = w_t·R_{t+1} − c·turnover_t − b·Σ max(−w_t, 0), with the environments' cost models
    ("drift", the default: from the previous weights after their drift; "target": turnover
    Σ|w_t − w_{t−1}|) and borrow fee (b = borrow_bps/1e4/252 a day on the short weights held).
    `fill` "next_close": the weights decided on day d (data up to d) fill at the close of the next
    trading day and are held from there; the result's weights are indexed by that fill day."""
    if cost_model not in ("target", "drift"):
        raise ValueError(f"cost_model must be 'target' or 'drift', got {cost_model!r}")
    COST_BPS.check("cost_bps", cost_bps)
    BORROW_BPS.check("borrow_bps", borrow_bps)
    lag = check_fill(fill)
    loc = prices.index.get_indexer(weights.index)
    if (loc < 0).any() or (loc + 1 + lag >= len(prices)).any():
        bad = weights.index[(loc < 0) | (loc + 1 + lag >= len(prices))][0]
        raise ValueError(f"decision day {bad:%Y-%m-%d} has no {'next trading day' if not lag else 'two trading days after it'} "
                         "in the prices")
    if lag:  # the order decided at d fills at the close of d + 1 (one trading day of lag)
        loc = loc + lag
        weights = weights.set_axis(prices.index[loc], axis=0)
    w = weights.reindex(columns=prices.columns, fill_value=0.0).to_numpy(dtype=float)
    # an asset without a price on t or t+1 (not listed yet, delisted) returns 0: cash at its last price
    R_all = np.nan_to_num(prices.pct_change(fill_method=None).to_numpy(), nan=0.0)
    R = R_all[loc + 1]  # realised over t -> t+1
    c = cost_bps / 1e4
    fee = borrow_rate(borrow_bps) * np.maximum(-w, 0.0).sum(1)
    gross = (w * R).sum(1)
    if cost_model == "target":
        prev = np.vstack([np.zeros(w.shape[1]), w[:-1]])
        traded = np.abs(w - prev).sum(1)
    else:
        traded = np.empty(len(w))
        held = np.zeros(w.shape[1])
        for i in range(len(w)):  # drift depends on the previous day's growth: sequential
            traded[i] = np.abs(w[i] - held).sum()
            g = 1 + gross[i] - c * traded[i] - fee[i]
            # drifted weights relative to the book before costs (as PortfolioEnv): a position that
            # is left alone needs no trade the next day
            held = w[i] * (1 + R[i]) / (1 + gross[i]) if g > 1e-4 else np.zeros(w.shape[1])
    cost = c * traded
    ret = gross - cost - fee
    ruin = np.flatnonzero(ret <= -1)
    if len(ruin):  # as in the env: the value is gone from that day on
        ret[ruin[0]] = -1.0
        ret[ruin[0] + 1 :] = 0.0
    return Backtest(name, pd.Series(ret, index=prices.index[loc + 1], name=name), weights, traded)


def baseline_weights(kind: str, prices: pd.DataFrame, days: pd.DatetimeIndex, rebalance="M",
                     lookback: int = 252) -> pd.DataFrame:
    """Target weights of a baseline on the decision days (`rebalance` and `lookback`: the
    estimated rules of `eqtrade.backtest.baselines`, which decide on prices up to each day only)."""
    if kind in BASELINES and kind not in SIMPLE_BASELINES:
        from . import baselines

        return baselines.baseline_weights(kind, prices, days, rebalance, lookback)
    # in a universe whose assets list and delist (NaN before and after), the assets with a price
    # on the decision day are the ones that can be held
    has = prices.loc[days].notna().to_numpy()
    if kind == "equal-weight":  # rebalanced daily to 1/N of the tradable assets
        n = np.maximum(has.sum(1, keepdims=True), 1)
        return pd.DataFrame(has / n, index=days, columns=prices.columns)
    if kind == "buy-and-hold":  # 1/N of the first day's assets, then the weights drift with prices
        p = prices.loc[days].to_numpy()
        n0 = max(int(has[0].sum()), 1)
        last = pd.DataFrame(p).ffill().to_numpy()  # a delisted asset's value stays as cash
        v = np.where(has[0], last / np.where(has[0], p[0], 1.0) / n0, 0.0)
        held = np.where(has, v, 0.0)
        total = v.sum(1, keepdims=True)  # the delisted part is cash, still in the book
        return pd.DataFrame(held / total, index=days, columns=prices.columns)
    if kind == "cash":
        return pd.DataFrame(0.0, index=days, columns=prices.columns)
    if kind == "sp500":
        raise ValueError("sp500 is a benchmark index, not weights on the assets: use baseline('sp500', ...)")
    raise ValueError(f"unknown baseline {kind!r}; use {', '.join(BASELINES)}")


def baseline(kind: str, prices: pd.DataFrame, split, window: int = 1, cost_bps: float = 10.0,
             cost_model: str = "drift", benchmark: pd.Series | None = None, fill: str = "close",
             borrow_bps: float = 0.0) -> Backtest:
    """A baseline over the split's decision days (same days, fill and costs as an agent's rollout).
    kind "sp500": the benchmark series (default: the bundled S&P 500 price index), named after
    `benchmark.name` when one is given. The estimated rules (ivol, minvar, ...) read the prices
    before the split for their lookback, never a price after a decision day.

    `fill` "next_close": the target traded at the close of t is the one the rule computes from the
    prices up to t−1 (the target weights shifted by one trading day); the first day of the
    backtest trades the target of the trading day before it (before the split: no day in cash).
    Buy & hold is the same in both fills: 1/N on the first day, then it never trades (its target
    is its book, which needs no decision). `borrow_bps`: the annual fee
    on short weights (the baselines are long-only: they pay none)."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; use {', '.join(BASELINES)}")
    lag = check_fill(fill)
    BORROW_BPS.check("borrow_bps", borrow_bps)
    days = decision_days(prices, split, window + lag)
    if kind == "sp500":
        label = SP500_LABEL
        if benchmark is None:
            from ..data import load_bundled

            benchmark = load_bundled("sp500-index")["SP500"]
        else:
            label = f"benchmark {benchmark.name}"
        nxt = prices.index[prices.index.get_indexer(days) + 1]
        benchmark = benchmark.dropna()
        if benchmark.empty or benchmark.index[0] > days[0] or benchmark.index[-1] < nxt[-1]:
            span = f"{benchmark.index[0]:%Y-%m-%d}..{benchmark.index[-1]:%Y-%m-%d}" if len(benchmark) else "no data"
            raise ValueError(f"benchmark {benchmark.name!r} ({span}) does not cover the backtest's days "
                             f"{days[0]:%Y-%m-%d}..{nxt[-1]:%Y-%m-%d}")
        # a day the benchmark did not trade (another exchange's holiday) is a day without a move
        b = benchmark.reindex(benchmark.index.union(days).union(nxt)).ffill()
        r = pd.Series(b.reindex(nxt).to_numpy() / b.reindex(days).to_numpy() - 1, index=nxt, name=label)
        return Backtest(label, r, kind="sp500")
    COST_BPS.check("cost_bps", cost_bps)  # before a 20-year fit, not after it
    if lag and kind != "buy-and-hold":  # decided on the close before each fill day, traded at the fill
        decided = prices.index[prices.index.get_indexer(days) - lag]
        bt = weights_backtest(prices, baseline_weights(kind, prices, decided), cost_bps, cost_model,
                              BASELINE_NAMES[kind], fill, borrow_bps)
    else:  # buy & hold's target is its own book after day one: no order to decide, nothing to lag
        bt = weights_backtest(prices, baseline_weights(kind, prices, days), cost_bps, cost_model,
                              BASELINE_NAMES[kind], borrow_bps=borrow_bps)
    bt.kind = kind
    return bt


def rollout(policy, env, obs_noise: float = 0.0, seed: int = 0, name: str = "agent") -> Backtest:
    """Run a policy (obs -> action) over a trading env in full-period mode (`eqtrade.envs.rollout`);
    optional test-time market noise `obs_noise` (σ in units of each asset's trailing volatility on
    the returns observed, the book exact: `eqtrade.envs.wrappers.MarketNoise` outermost, drawn
    from `seed`, normalised as the env is; it replaces the market part of the observation, so any
    market noise the env was made with is replaced too)."""
    from ..envs.factory import with_market_noise
    from ..envs.rollout import rollout as run_episode

    u = env.unwrapped
    if not getattr(u, "full_period", False):
        raise ValueError("rollout needs an environment in full_period mode")
    if obs_noise:
        env = with_market_noise(env, obs_noise, seed)
    ep = run_episode(policy, env, seed=seed)
    steps = ep.infos[1:]
    values = [i["value"] for i in ep.infos]
    rets = [v1 / v0 - 1.0 if v0 > 0 else 0.0 for v0, v1 in zip(values[:-1], values[1:])]
    dates = [i["date"] for i in ep.infos[:-1]]
    cols = u.tickers if hasattr(u, "weights_from_action") else [u.ticker]
    W = pd.DataFrame(np.array([i["target_weights"] for i in steps]), index=pd.DatetimeIndex(dates, name="date"),
                     columns=cols)
    real = u.market.dates[u.market.dates.get_indexer(W.index) + 1]
    traded_arr = np.asarray([i.get("turnover", np.nan) for i in steps], dtype=float)
    return Backtest(name, pd.Series(rets, index=real, name=name), W,
                    None if np.isnan(traded_arr).any() else traded_arr)


def with_cash_interest(bt: Backtest, rf) -> Backtest:
    """The backtest with its cash earning the risk-free rate `rf` (annual, or a series), one rule:
    each day the free cash 1 − Σ max(w_i, 0) of the weights held over the day (traded the close
    before) earns one day of rf; when negative (more than 100% long, on borrowed money) it pays rf.
    Short proceeds are collateral and earn nothing (a retail broker's rule; conservative): a
    50/50 long/short book earns rf on 0.5, a 130/30 book pays rf on 0.3. Backtests without
    weights (a benchmark index) are unchanged."""
    from .metrics import rf_daily

    if bt.weights is None or (not isinstance(rf, pd.Series) and not rf):
        return bt
    cash = 1.0 - bt.weights.clip(lower=0.0).sum(axis=1).to_numpy()
    r = bt.returns + cash * rf_daily(rf, bt.returns.index).to_numpy()
    return Backtest(bt.name, r.rename(bt.name), bt.weights, bt.traded, bt.kind)
