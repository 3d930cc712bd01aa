"""Backtest of a trained run or a baseline strategy, written to backtests/<name>/, and the
multi-run comparison of `eqtrade compare`."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..outdirs import holds_seed_runs
from ..util import Range, atomic_write, atomic_write_bytes, mean_ci
from .engine import (BASELINES, BORROW_BPS, COST_BPS, SIMPLE_BASELINES, SP500_LABEL, Backtest, baseline, check_fill,
                     decision_days, rollout, with_cash_interest)
from .metrics import metrics_table, rf_label

log = logging.getLogger(__name__)

SURVIVORSHIP = ("The bundled stocks were chosen with hindsight (survivorship bias): every long strategy on them "
                "looks better than it would have in real time.")


def _eval_env_kwargs(spec, split) -> dict:
    return spec.evaluation_kwargs(split=split, full_period=True)


def _transfer_spec(path: Path, data: str):
    """The saved run's env spec with its assets replaced by dataset `data` (another universe):
    only per-asset long/short portfolio networks act on it."""
    from ..agents import EnvSpec
    from ..agents.checkpoint import read

    state = read(path)
    spec, enc = EnvSpec(**state["env_spec"]), (state["config"].get("encoder") or {})
    if spec.id != "portfolio" or spec.kwargs.get("mode", "long_short") != "long_short":
        raise ValueError(f"--data applies to long/short portfolio runs; {path.parent} trained on {spec.id!r}")
    if enc.get("kind") != "per_asset":
        raise ValueError(f"{path.parent} has a flat network over its {enc.get('n_assets', 'N')} training assets, tied to "
                         "that universe and its order; only a per-asset network (encoder kind per_asset) acts on "
                         "another universe")
    kwargs = {k: v for k, v in spec.kwargs.items() if k != "tickers"}
    return EnvSpec("portfolio", dict(kwargs, prices=data), spec.eval_kwargs)


def family_label(family: str, encoder: dict | None, env_id: str, env_kwargs: dict | None = None) -> str:
    """A run's families as tables show them. Portfolio runs: the three symmetry axes,
    reflection/assets/scale, e.g. "relaxed/exact/relaxed" (relaxed reflection, one head shared
    by every asset, relaxed return scale), "plain/flat/exact" (one MLP over all assets), with
    "+mean" for market pooling and " +h" for multi-horizon inputs. Other envs: the reflection family."""
    if env_id != "portfolio":
        return family
    kw = env_kwargs or {}
    enc = encoder or {"kind": "flat"}
    if enc.get("kind") != "per_asset":
        assets = "flat"
    else:
        assets = enc.get("assets", "exact") + ("+mean" if enc.get("context", "none") == "mean" else "")
    scale = kw.get("scale") or ("exact" if kw.get("normalize", True) else "raw")
    from ..envs.wrappers import parse_horizons

    return f"{family}/{assets}/{scale}" + (" +h" if parse_horizons(kw.get("horizons")) else "")


def run_checkpoint(run_dir, checkpoint: str = "best") -> tuple[Path, str]:
    """(path, which) of a run's policy: best.pt (best validation return during training) or
    checkpoint.pt (the last); "best" falls back to the last for runs without evaluations."""
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    run_dir = Path(run_dir)
    if checkpoint == "best" and (run_dir / "best.pt").exists():
        return run_dir / "best.pt", "best"
    if not (run_dir / "checkpoint.pt").exists():
        raise FileNotFoundError(f"{run_dir} holds no checkpoint.pt: not a run directory")
    return run_dir / "checkpoint.pt", "last"


def _day(t: pd.Timestamp) -> str:
    return f"{t:%Y-%m-%d}"


def span_notes(prices: pd.DataFrame, split, window: int) -> tuple[dict, list[str]]:
    """The split as requested and the days a backtest really covers (its first and last daily
    return; `window`: the days of history the first decision needs, one more with fill
    next_close), and a note when the data shortened it: no prices (or too few for the window) at the
    requested start, or none up to the requested end."""
    from ..data.market import OPEN_END, OPEN_START, split_range

    start, end = split_range(split)
    days = decision_days(prices, split, window)
    idx = prices.index
    first = idx[idx.get_indexer(days[:1])[0] + 1]  # the first return is realised the day after
    last = idx[idx.get_indexer(days[-1:])[0] + 1]
    info = {"requested_start": "start of data" if start <= OPEN_START else _day(start),
            "requested_end": "end of data" if end >= OPEN_END else _day(end),
            "first_date": _day(first), "last_date": _day(last)}
    notes = []
    p0 = int(np.searchsorted(idx, start))  # the first trading day of the data in the split
    if start > OPEN_START and days[0] > idx[p0]:
        why = (f"the data has no price before {_day(idx[0])}" if idx[0] > start
               else f"only {p0} trading day(s) of data precede it")
        notes.append(f"shortened: the backtest's returns start {_day(first)}, not at the requested start "
                     f"{_day(start)}: {why}, and the {window}-day window needs {window} day(s) of history")
    if end < OPEN_END and (end - last).days > 7:
        notes.append(f"shortened: the backtest's returns end {_day(last)}, not at the requested end {_day(end)}: "
                     f"the data has no price after {_day(idx[-1])}")
    short = short_note(len(days), info["first_date"], info["last_date"])
    return info, notes + ([short] if short else [])


#: fewer daily returns than this (a quarter of a trading year) make annualised figures unreliable
MIN_ANNUAL_DAYS = 63


def short_note(n: int, first: str, last: str) -> str | None:
    """A note when a backtest has fewer than MIN_ANNUAL_DAYS daily returns: annualised figures
    extrapolate them to a year; the annualised Sharpe's standard error is about √(252/n)."""
    if n >= MIN_ANNUAL_DAYS:
        return None
    return (f"short sample: {n} daily return(s) ({first}..{last}), fewer than {MIN_ANNUAL_DAYS} (3 months): the "
            f"annualised figures (CAGR, Sharpe, Sortino, volatility, Calmar) extrapolate them to a year and are "
            f"unreliable (the annualised Sharpe's standard error is about √(252/{n}) = {np.sqrt(252 / n):.1f}); "
            f"use a split of at least {MIN_ANNUAL_DAYS} trading days for them")


def in_sample_note(spec, first: str, last: str) -> str | None:
    """A note when a run's backtest days overlap the splits it trained on or was selected on."""
    from ..data.market import split_range

    a, b = pd.Timestamp(first), pd.Timestamp(last)
    train = spec.kwargs.get("split", "train")
    seen = {"train": train, "validation (model selection)": spec.eval_kwargs.get("split", train)}
    parts, ends = [], []
    for name, sp in seen.items():
        try:
            s, e = split_range(sp)
        except ValueError:  # a split this eqtrade cannot read: nothing to compare
            continue
        ends.append(e)
        if name != "train" and sp == train:
            continue
        lo, hi = max(a, s), min(b, e)
        if lo <= hi:
            parts.append(f"{_day(lo)}..{_day(hi)} in its {name} split")
    if not parts:
        return None
    after = max(ends) + pd.Timedelta(days=1)
    return (f"in-sample: the backtest's days overlap the run's training data ({'; '.join(parts)}), so this is not "
            f"an out-of-sample result; for one, use a split after them (e.g. --split {_day(after)}:)")


def backtest_run(run_dir, split="test", obs_noise: float = 0.0, seed: int = 0,
                 cost_model: str | None = None, checkpoint: str = "best",
                 benchmark: str | None = None, data_dir=None, data: str | None = None,
                 baselines=None, record: bool = True, fill: str | None = None,
                 borrow_bps: float | None = None) -> tuple[list[Backtest], dict]:
    """The agent of a run and its baselines over a split: ([agent, baselines...], context).
    `fill` ("close" or "next_close", default the run's evaluation env's, else "close") and
    `borrow_bps` (the annual fee on short weights, default the run's, else 0) apply to the agent's
    env and to the baselines alike.
    An out-of-sample read (days after the run's training and validation splits) is recorded in
    the run's ledger.jsonl (`record`) and the reads before it are counted in a note.
    `baselines`: the rules traded beyond the simple four (names or a comma list, "all"; default
    DEFAULT_BASELINES; "none" or () for the four only).
    `cost_model`: "drift" (default for portfolios: what a broker charges, the trades from the
    drifted weights to the new targets, for the agent and the baselines alike) or "target" (the
    training env's default, which keeps the reflection exact on mirrored data but charges no drift
    rebalancing); `checkpoint`: "best" (the validation-selected policy, default) or "last"."""
    from ..agents import Agent, EnvSpec
    from ..data.market import resolve_prices
    from ..envs.factory import is_trading

    path, which = run_checkpoint(run_dir, checkpoint)
    # the run's own assets, or another universe (`data`: the policy acts on it zero-shot)
    agent = Agent.load(path) if data is None else None
    spec = agent.env_spec if data is None else _transfer_spec(path, data)
    if not is_trading(spec.id):
        raise ValueError(f"{run_dir} trained on {spec.id}; backtests need the portfolio or trading env")
    kw = _eval_env_kwargs(spec, split)
    if spec.id == "portfolio":
        kw["cost_model"] = cost_model or "drift"
    if data_dir is not None:  # the dataset, looked up in another data directory
        kw["data_dir"] = str(data_dir)
    if fill is not None:
        check_fill(fill)
        kw["fill"] = fill
    if borrow_bps is not None:
        BORROW_BPS.check("borrow_bps", borrow_bps)
        kw["borrow_bps"] = borrow_bps
    env = EnvSpec(spec.id, kw).make()
    if agent is None:
        agent = Agent.load_policy(path, env)
    family = family_label(agent.config.family, agent.config.encoder, spec.id, spec.kwargs)
    label = f"{agent.algo.upper()} {family}"
    bt = rollout(lambda o: agent.predict(o, deterministic=True), env, obs_noise=obs_noise, seed=seed, name=label)
    prices = resolve_prices(kw.get("prices"), kw.get("tickers"), kw.get("data_dir"), kw.get("align", "inner"))
    if spec.id == "trading":
        prices = prices[[env.unwrapped.ticker]]
    ctx = {"kind": "run", "run": str(run_dir), "env": spec.id, "family": family, "algo": agent.algo,
           "seed": agent.config.seed, "split": split, "obs_noise": obs_noise, "cost_bps": kw.get("cost_bps", 10.0),
           "cost_model": kw.get("cost_model", "drift"), "window": kw.get("window", 32),
           "fill": kw.get("fill", "close"), "borrow_bps": kw.get("borrow_bps", 0.0),
           "tickers": list(prices.columns), "steps_trained": agent.step, "checkpoint": which,
           "benchmark": benchmark or SP500_LABEL}
    info, notes = span_notes(prices, split, ctx["window"] + (ctx.get("fill") == "next_close"))
    inside = in_sample_note(spec, info["first_date"], info["last_date"])
    if inside is None and record:
        from .ledger import record_run_read

        block = f"{info['first_date']}..{info['last_date']}"
        before = record_run_read(run_dir, block, what="backtest")
        ctx["reads_before"] = before
        if before:
            notes.append(f"out-of-sample look {before + 1} at {block} for this run ({Path(run_dir) / 'ledger.jsonl'}): "
                         "each look at the same test days is one more chance to fit them")
    ctx.update(info, notes=notes + ([inside] if inside else []))
    return [bt, *baselines_for(prices, ctx, load_benchmark(benchmark, kw.get("data_dir")), baselines)], ctx


def load_benchmark(name: str | None, data_dir=None) -> pd.Series | None:
    """A benchmark price series by name: a one-column dataset (imported, e.g. a fetched SPY
    adjusted close saved with `data import`), a cached ticker (`eqtrade fetch`), or a bundled
    ticker (SP500, MTUM, ...); None gives the default (the bundled S&P 500 price index)."""
    from ..data import load_prices

    if name is None:
        return None
    for kw in (dict(source=name), dict(tickers=[name], source="cache"), dict(tickers=[name], source="bundled")):
        try:
            df = load_prices(data_dir=data_dir, **kw)
        except Exception:  # not this kind of source: try the next
            continue
        if df.shape[1] != 1:
            raise ValueError(f"benchmark dataset {name!r} has {df.shape[1]} columns; it needs exactly one price series")
        return df.iloc[:, 0].rename(name)
    raise ValueError(f"no benchmark named {name!r}: not a one-column dataset, a cached ticker or a bundled ticker "
                     f"(see `eqtrade data list`)")


def parse_rf(text, data_dir=None):
    """A risk-free rate from its text: an annual rate (a number) or the name of a cash-like price series."""
    try:
        rate = float(text)
    except ValueError:
        try:
            return load_benchmark(str(text), data_dir)
        except ValueError:
            raise ValueError(f"--rf {text!r}: neither an annual rate (e.g. 0.02) nor a one-column dataset, cached or "
                             "bundled ticker") from None
    if not -0.5 < rate < 0.5:
        raise ValueError(f"--rf {text} is not an annual rate as a fraction (e.g. 0.02 for 2%/yr)")
    return rate


#: the rules every backtest and comparison trades beyond the simple four unless told otherwise:
#: the cheap ones (well under a second over 20 years); "all" adds the skfolio optimisers
DEFAULT_BASELINES = ("ivol", "mom", "volman")
#: the reference of the paired statistics unless `against` names another baseline
DEFAULT_AGAINST = "equal-weight"


def baseline_kinds(kinds) -> list[str]:
    """Baseline names of the engine (`BASELINES`) from names or comma lists of them; the short
    names of `eqtrade.backtest.baselines` ("ew", "all", ...) are accepted too; None is
    DEFAULT_BASELINES, "none" is none."""
    from .baselines import named_baselines

    if kinds is None:
        kinds = DEFAULT_BASELINES
    if isinstance(kinds, str) and kinds.strip().lower() == "none":
        return []
    if isinstance(kinds, str):
        kinds = kinds.split(",")
    out: list[str] = []
    for k in kinds or ():
        k = str(k).strip()
        found = [k] if k in BASELINES else ["equal-weight" if n == "ew" else n for n in named_baselines(k)]
        out += [n for n in found if n not in out]
    return out


def baselines_for(prices: pd.DataFrame, ctx: dict, benchmark: pd.Series | None = None, kinds=None) -> list[Backtest]:
    """The baselines of a backtest: same days, fill (ctx["fill"]) and costs (ctx["cost_bps"],
    ctx["cost_model"], ctx["borrow_bps"]) as the agent, and the benchmark; `kinds`
    adds more by name (ivol, minvar, ..., or "all" for every rule of `eqtrade.backtest.baselines`)."""
    multi = prices.shape[1] > 1
    base = list(SIMPLE_BASELINES) if multi else [k for k in SIMPLE_BASELINES if k != "equal-weight"]
    # on one asset every weighting rule is that asset: the extra rules only apply to a universe
    asked = baseline_kinds(kinds)
    extra = [k for k in asked if k not in base and multi]
    if not multi and kinds not in (None, "none", ()) and asked:
        ctx.setdefault("notes", []).append(
            f"one asset: the weighting rules ({', '.join(asked)}) are that asset, so only buy & hold, "
            "the index and cash are traded beside it")
    out = []
    for k in base + extra:
        b = baseline(k, prices, ctx["split"], ctx["window"], ctx["cost_bps"], ctx["cost_model"], benchmark,
                     ctx.get("fill", "close"), ctx.get("borrow_bps", 0.0))
        if prices.shape[1] == 1 and k == "buy-and-hold":
            b.name = f"buy & hold {prices.columns[0]}"
            b.returns = b.returns.rename(b.name)
        out.append(b)
    return out


def backtest_strategy(name: str, split="test", data=None, window: int = 32, cost_bps: float = 10.0,
                      cost_model: str | None = None, benchmark: str | None = None,
                      data_dir=None, baselines=None, fill: str = "close",
                      borrow_bps: float = 0.0) -> tuple[list[Backtest], dict]:
    """A baseline strategy (by name or strategies/*.toml with a [baseline] table) and the others
    (`baselines`, `fill` and `borrow_bps` as for `backtest_run`)."""
    from ..strategies import load_toml
    from ..envs import resolve_prices

    from .. import strategies

    kind, kw, where = name, {}, ""
    if name.endswith(".toml") or Path(name).exists() or (name not in BASELINES and strategies.find(name)):
        cfg = load_toml(name)
        if "baseline" not in cfg:
            raise ValueError(f"{name} has no [baseline] table; agents are backtested from their run directory")
        kw, where = _baseline_table(name, cfg["baseline"]), f"{name}: [baseline] "
        kind = kw.pop("kind")
    if kind not in BASELINES:
        raise ValueError(f"{name!r} is neither a run directory (with checkpoint.pt) nor a baseline ({', '.join(BASELINES)})")
    window, cost_bps = kw.get("window", window), kw.get("cost_bps", cost_bps)
    BASELINE_WINDOW.check(f"{where}window", window)
    COST_BPS.check(f"{where}cost_bps", cost_bps)
    check_fill(fill)
    BORROW_BPS.check("borrow_bps", borrow_bps)
    prices = resolve_prices(kw.get("prices", data), kw.get("tickers"), data_dir)
    ctx = {"kind": "strategy", "strategy": kind, "split": split, "obs_noise": 0.0, "cost_bps": cost_bps,
           "cost_model": cost_model or kw.get("cost_model", "drift"), "window": window,
           "fill": fill, "borrow_bps": borrow_bps,
           "tickers": list(prices.columns), "benchmark": benchmark or SP500_LABEL}
    info, notes = span_notes(prices, split, ctx["window"] + (ctx.get("fill") == "next_close"))
    ctx.update(info, notes=notes)
    bench = load_benchmark(benchmark, data_dir)
    main = baseline(kind, prices, split, ctx["window"], ctx["cost_bps"], ctx["cost_model"], bench, fill, borrow_bps)
    others = [b for b in baselines_for(prices, ctx, bench, baselines) if b.kind != main.kind]
    return [main, *others], ctx


#: the keys of a strategy file's [baseline] table
BASELINE_KEYS = ("kind", "prices", "tickers", "window", "cost_bps", "cost_model")
BASELINE_WINDOW = Range(1, 100_000, note="days of history before the first decision, as the agents' window")


def _baseline_table(name: str, table) -> dict:
    """A strategy file's [baseline] table, checked: its keys and its kind (one line naming the file)."""
    if not isinstance(table, dict):
        raise ValueError(f"{name}: [baseline] must be a table, got {table!r}")
    unknown = [k for k in table if k not in BASELINE_KEYS]
    if unknown:
        raise ValueError(f"{name}: unknown [baseline] key(s) {', '.join(unknown)}; known: {', '.join(BASELINE_KEYS)}")
    kind = table.get("kind")
    if kind not in BASELINES:
        got = "has no kind" if kind is None else f"kind = {kind!r} is not a baseline"
        raise ValueError(f"{name} was read as a baseline strategy, but its [baseline] {got}; kind is one of "
                         f"{', '.join(BASELINES)}")
    if "window" in table and (isinstance(table["window"], bool) or not isinstance(table["window"], int)):
        raise ValueError(f"{name}: [baseline] window = {table['window']!r} must be a whole number of days")
    return dict(table)


def reference_kind(against: str) -> str:
    """The baseline name (BASELINES) of `against` (a name or a short form); cash is refused: its
    excess return is exactly 0, so it has no Sharpe to compare with."""
    kinds = baseline_kinds(against) if against != "sp500" else ["sp500"]
    if len(kinds) != 1:
        raise ValueError(f"--against names one baseline, got {against!r}")
    if kinds[0] == "cash":
        raise ValueError("--against cash: cash has no Sharpe ratio (its excess return is 0); compare against a "
                         "strategy, e.g. equal-weight, volman or sp500")
    return kinds[0]


def traded_reference(against: str, baselines=None, traded=None) -> str:
    """The reference kind of `against`, checked before any backtest to be among the baselines
    traded (`traded`, default the simple four and `baselines`)."""
    kind = reference_kind(against)
    traded = tuple(traded) if traded is not None else (*SIMPLE_BASELINES, *baseline_kinds(baselines))
    if kind not in traded:
        raise ValueError(f"--against {against}: not among the baselines traded ({', '.join(traded)}; add it to "
                         "--baselines)")
    return kind


def reference(backtests: list[Backtest], against: str = DEFAULT_AGAINST) -> Backtest:
    """The backtest of baseline `against` (a name of BASELINES or its short form) among `backtests`.
    On one asset equal weight is that asset: the default reference is then buy & hold."""
    kind = reference_kind(against)
    found = [b for b in backtests if b.kind == kind]
    if not found and kind == "equal-weight":
        found = [b for b in backtests if b.kind == "buy-and-hold"]
    if not found:
        have = ", ".join(dict.fromkeys(b.kind for b in backtests if b.kind)) or "none"
        raise ValueError(f"--against {against}: that baseline is not in this comparison (its baselines: {have}"
                         f"{'; on one asset only these' if 'equal-weight' not in have else ''}); add it with "
                         "--baselines")
    return found[0]


def paired_stats(backtests: list[Backtest], against: str = DEFAULT_AGAINST, rf=0.0, n_boot: int = 2000,
                 seed: int = 0, n_trials: int = 1, sr_std: float | None = None, extra: dict | None = None,
                 cost_bps: float = 10.0) -> pd.DataFrame:
    """Every backtest against the reference baseline over the same days (`eqtrade.backtest.stats.
    paired_table` on the excess returns), with each one's mean gross and net exposure, beta to the
    index and break-even cost (the cost per unit traded at which its Sharpe would equal the
    reference's: its Sharpe before costs is computed from what it traded). `extra`: more return
    series (name -> Series on the same days), e.g. a family's seeds as one book."""
    from .metrics import rf_daily
    from .stats import beta, break_even_cost_bps, paired_table

    ref = reference(backtests, against)
    series = {b.name: b.returns for b in backtests}
    series.update(extra or {})
    frame = pd.DataFrame(series)
    frame = frame.sub(rf_daily(rf, frame.index).to_numpy(), axis=0)
    table = paired_table(frame, ref.name, n_boot=n_boot, seed=seed, n_trials=n_trials, sr_std=sr_std)
    index = next((b for b in backtests if b.kind == "sp500"), None)
    cost = {b.name: b for b in backtests}
    for name in frame:
        b = cost.get(name)
        w = b.weights if b is not None else None
        table.loc[name, "gross exposure"] = float(w.abs().sum(1).mean()) if w is not None and len(w) else np.nan
        table.loc[name, "net exposure"] = float(w.sum(1).mean()) if w is not None and len(w) else np.nan
        table.loc[name, "beta"] = beta(frame[name].to_numpy(), frame[index.name].to_numpy()) if index is not None else np.nan
        be = np.nan
        if b is not None and b.traded is not None and len(b.traded) == len(frame) and name != ref.name:
            gross = frame[name].to_numpy() + cost_bps / 1e4 * b.traded
            if np.std(gross) > 0 and np.std(frame[ref.name].to_numpy()) > 0:  # (cash has no Sharpe)
                be = break_even_cost_bps(gross, b.traded, frame[ref.name].to_numpy())
        table.loc[name, "break-even bps"] = be
    table.attrs["against"] = ref.name
    return table


def paired_markdown(table: pd.DataFrame) -> str:
    """The paired table as markdown, under the sentence that says how its interval was computed."""
    from .stats import bootstrap_note

    cols = ["Sharpe", "Sharpe SE", "ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "IR", "IR t", "corr", "PSR",
            "DSR", "gross exposure", "net exposure", "beta", "break-even bps"]
    cols = [c for c in cols if c in table]
    return (f"Paired against {table.attrs['against']} over the same days. {bootstrap_note(table.attrs)}; JKM p: "
            "Jobson-Korkie test with Memmel's correction; Sharpe SE: Lo/Mertens (non-normal returns); PSR: "
            "probability that the true Sharpe is above 0; break-even bps: the cost per unit traded at which the "
            "strategy's Sharpe would equal the reference's.\n\n" + table[cols].to_markdown(floatfmt=".3f") + "\n")


def write_report(backtests: list[Backtest], ctx: dict, out: Path, html: bool = True, rf=0.0,
                 against: str = DEFAULT_AGAINST, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """returns.parquet, weights.parquet, metrics.csv/.md, paired.csv, tearsheet.html, equity.png,
    config.toml. `rf` (an annual rate or a cash-like price series): cash earns it, Sharpe/Sortino
    are of excess returns, and the report says which rate it used. Every backtest is compared,
    paired, with the baseline `against` (`paired_stats`): in metrics.md, paired.csv, the
    tearsheet's title (its benchmark stays the index) and `table.attrs["paired"]`."""
    from ..util import dump_toml

    ctx = dict(ctx, rf=rf_label(rf))
    backtests = [with_cash_interest(b, rf) for b in backtests]
    # the paired table first: a reference that is not there is an error before anything is written
    paired = paired_stats(backtests, against, rf, n_boot=n_boot, seed=seed, cost_bps=ctx.get("cost_bps", 10.0))
    out.mkdir(parents=True, exist_ok=True)
    main = backtests[0]
    rets = pd.concat([b.returns for b in backtests], axis=1)
    rets.index.name = "date"
    atomic_write(out / "returns.parquet", lambda p: rets.to_parquet(p))
    if main.weights is not None:
        atomic_write(out / "weights.parquet", lambda p: main.weights.to_parquet(p))
    table = metrics_table(backtests, rf)
    atomic_write(out / "metrics.csv", lambda p: table.to_csv(p))
    atomic_write(out / "paired.csv", lambda p: paired.to_csv(p))
    table.attrs["paired"] = paired
    md = _markdown(table, ctx) + "\n" + paired_markdown(paired)
    atomic_write_bytes(out / "metrics.md", md.encode())
    atomic_write_bytes(out / "config.toml", dump_toml({"backtest": {k: v for k, v in ctx.items() if v is not None}}).encode())
    _plot_equity(rets, out / "equity.png", f"{main.name} — {ctx['split']} split")
    if html:  # against the benchmark, with the paired ΔSharpe against the reference baseline in the title
        ref = paired.attrs["against"]  # the reference's name
        bench = next((b.returns for b in backtests if b.kind == "sp500"), None)
        p = paired.loc[main.name]
        title = f"eqtrade: {main.name} ({ctx['split']} split)"
        if main.name != ref:
            title += (f" — ΔSharpe vs {ref} {p['ΔSharpe']:+.2f} [{p['ΔSharpe lo']:+.2f}, {p['ΔSharpe hi']:+.2f}] "
                      f"(95%, stationary bootstrap, {paired.attrs['n_boot']} resamples, block {paired.attrs['block']} "
                      f"days), JKM p {p['JKM p']:.3f}")
        _tearsheet(main.returns, bench, out / "tearsheet.html", title)
    return table


def fill_text(fill: str, borrow_bps: float) -> str:
    """How a backtest fills and what shorts pay, in words (reports' first lines)."""
    when = "orders fill at the close they are decided on" if fill == "close" else \
        "orders fill at the next close (decided on the data up to the day before)"
    return f"{when}, short borrow {borrow_bps:g} bps/yr"


def _markdown(table: pd.DataFrame, ctx: dict) -> str:
    fmt = table.copy()
    for c in ["CAGR", "Max drawdown", "Volatility", "Total return", "Hit rate"]:
        fmt[c] = fmt[c].map(lambda x: f"{x:.1%}")
    for c in ["Sharpe", "Sortino", "Calmar", "Turnover"]:
        fmt[c] = fmt[c].map(lambda x: f"{x:.2f}")
    fmt["Days"] = fmt["Days"].astype(int)
    head = (f"Backtest on the {ctx['split']} split, costs {ctx['cost_bps']} bps ({ctx['cost_model']} model)"
            + f", {fill_text(ctx.get('fill', 'close'), ctx.get('borrow_bps', 0.0))}"
            + (f", observation noise σ = {ctx['obs_noise']}" if ctx.get("obs_noise") else "")
            + f"; benchmark: {ctx.get('benchmark', SP500_LABEL)}; risk-free rate {ctx.get('rf', rf_label(0.0))} "
            "(cash earns it; Sharpe and Sortino are of excess returns).\n\n"
            + "".join(f"Note: {n}.\n\n" for n in ctx.get("notes", [])))
    return head + fmt.to_markdown() + f"\n\n{SURVIVORSHIP}\n"


def _plot_equity(rets: pd.DataFrame, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eq = (1 + rets.fillna(0)).cumprod()
    dd = eq / eq.cummax() - 1
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for i, c in enumerate(eq.columns):
        a1.plot(eq.index, eq[c], lw=2.0 if i == 0 else 1.0, label=c)
        a2.plot(dd.index, dd[c], lw=1.5 if i == 0 else 0.8)
    a1.set_ylabel("growth of 1")
    a1.set_title(title)
    a1.legend(loc="upper left", fontsize=8)
    a1.grid(alpha=0.3)
    a2.set_ylabel("drawdown")
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _tearsheet(returns: pd.Series, benchmark: pd.Series | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import quantstats as qs

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # quantstats asks for Arial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmp = path.with_suffix(".tmp.html")
        qs.reports.html(returns, benchmark=benchmark, output=str(tmp), title=title, download_filename=path.name)
        tmp.replace(path)


# -- compare ---------------------------------------------------------------------------------------
def selection_metrics(run_dir, checkpoint: str = "best") -> dict[str, float]:
    """Train- and valid-split Sharpe at the evaluation that chose best.pt (or at the last one,
    for checkpoint "last"), from metrics.csv: the generalisation gap next to the backtest's
    numbers (NaN where not recorded)."""
    path = Path(run_dir) / "metrics.csv"
    out = {"train Sharpe": float("nan"), "valid Sharpe": float("nan"), "best step": float("nan")}
    if not path.exists():
        return out
    df = pd.read_csv(path)
    if "eval_return" not in df or df["eval_return"].isna().all():
        return out
    ev = df.dropna(subset=["eval_return"])
    row = ev.loc[ev["eval_return"].idxmax()] if checkpoint == "best" else ev.iloc[-1]
    out["best step"] = float(row["step"])
    out["train Sharpe"] = float(row.get("train_sharpe", float("nan")))
    out["valid Sharpe"] = float(row.get("eval_sharpe", float("nan")))
    return out


SUMMARY_METRICS = ["Sharpe", "CAGR", "Max drawdown", "Turnover", "Total return", "train Sharpe", "valid Sharpe"]


#: the paired columns a comparison's summary shows (each family's seeds as one book, each baseline itself)
PAIRED_SUMMARY = ["ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "IR", "corr", "PSR", "DSR"]


def compare_runs(run_dirs, split="test", obs_noises=(0.0,), out: Path | None = None,
                 checkpoint: str = "best", benchmark: str | None = None, rf=0.0,
                 data_dir=None, data: str | None = None, baselines=None, against: str = DEFAULT_AGAINST,
                 n_boot: int = 2000, seed: int = 0, fill: str | None = None,
                 borrow_bps: float | None = None, n_trials: int | None = None) -> pd.DataFrame:
    """Backtest several runs (families x seeds) and summarise each family: mean and 95% interval
    over seeds of Sharpe, CAGR, max drawdown, turnover, total return on `split`, and the train /
    valid Sharpe of the selected checkpoint, for every observation-noise level; then the paired
    statistics against the baseline `against` over the same days (`paired_stats`): for each
    family its seeds as one book (equal capital in each seed's strategy), for each baseline
    itself, and for each run in runs.csv / paired.csv. The deflated Sharpe counts `n_trials`
    configurations (a study passes its ledger's count), by default the families compared plus
    those tried while choosing the defaults (ledger.PRIOR_CONFIGURATIONS); the runs must share
    their costs, fill and borrow fee (their baselines are traded once).
    `baselines`, `fill`, `borrow_bps`: as for `backtest_run` (the runs and the baselines alike)."""
    from . import ledger
    from .metrics import rf_daily
    from .stats import pbo, sharpe, trials_sharpe_std

    rows, curves, base, notes = [], {}, None, {}
    check_runs(run_dirs)
    if not len(obs_noises):
        raise ValueError("no observation-noise level to compare at: give at least one (e.g. 0, or 0,0.05)")
    agents: dict[float, dict[str, Backtest]] = {}
    for noise in obs_noises:
        for rd in run_dirs:
            bts, ctx = backtest_run(rd, split, obs_noise=noise, checkpoint=checkpoint, benchmark=benchmark,
                                    data_dir=data_dir, data=data, record=noise == obs_noises[0],
                                    fill=fill, borrow_bps=borrow_bps,
                                    baselines=baselines if base is None else "none")  # the extra rules once
            bts = [with_cash_interest(b, rf) for b in bts]
            for n in ctx.get("notes", []):
                notes.setdefault(n, []).append(str(rd))
            m = metrics_table(bts[:1], rf).iloc[0].to_dict()
            rows.append({"family": ctx["family"], "algo": ctx["algo"], "seed": ctx["seed"], "run": str(rd),
                         "obs_noise": noise, "checkpoint": ctx["checkpoint"], **m, **selection_metrics(rd, ctx["checkpoint"])})
            name = f"{ctx['family']} s{ctx['seed']}"
            if name in agents.get(noise, {}):
                name = f"{name} ({Path(rd).name})"
            agents.setdefault(noise, {})[name] = Backtest(name, bts[0].returns.rename(name), bts[0].weights,
                                                         bts[0].traded)
            rows[-1]["_name"] = name
            if noise == obs_noises[0]:
                curves[name] = (1 + bts[0].returns).cumprod()
                if base is None:
                    base = bts[1:]
                    reference(base, against)  # before the other runs: a reference that is not there is an error now
                    cost_bps = ctx["cost_bps"]
                    fills = fill_text(ctx["fill"], ctx["borrow_bps"])
                    first = (rd, {k: ctx[k] for k in ("cost_bps", "cost_model", "fill", "borrow_bps")})
                else:
                    mine = {k: ctx[k] for k in first[1]}
                    if mine != first[1]:
                        k = next(k for k in mine if mine[k] != first[1][k])
                        raise ValueError(f"{rd} is backtested with {k} = {mine[k]!r} but {first[0]} with "
                                         f"{first[1][k]!r}: runs compared side by side (with one set of baselines) "
                                         "must share their costs, fill and borrow fee; compare them apart")
    per_run = pd.DataFrame(rows)
    families = list(dict.fromkeys(per_run["family"]))
    n_counted = n_trials is not None
    n_trials = int(n_trials) if n_trials is not None else len(families) + ledger.PRIOR_CONFIGURATIONS
    paired, summary = {}, []
    for noise in obs_noises:
        runs = per_run[per_run["obs_noise"] == noise]
        books = {f"{fam} (mean of {len(g)} seeds)": pd.concat([agents[noise][n].returns for n in g["_name"]],
                                                              axis=1).mean(axis=1)
                 for fam, g in runs.groupby("family", sort=False)}
        excess = pd.DataFrame(books)
        excess = excess.sub(rf_daily(rf, excess.index).to_numpy(), axis=0)  # as the paired table's Sharpe
        sr_std = trials_sharpe_std([sharpe(excess[c].to_numpy()) for c in excess], len(excess))
        t = paired_stats(base + list(agents[noise].values()), against, rf, n_boot=n_boot, seed=seed,
                         n_trials=n_trials, sr_std=sr_std, extra=books, cost_bps=cost_bps)
        t.attrs["pbo"] = pbo(excess.to_numpy()) if excess.shape[1] > 1 and len(excess) >= 32 else float("nan")
        paired[noise] = t
        for fam, g in runs.groupby("family", sort=False):
            row = {"family": fam, "obs_noise": noise, "seeds": len(g)}
            for k in SUMMARY_METRICS:
                row[k], row[f"{k} ±95%"] = mean_ci(g[k].to_numpy())
            book = t.loc[f"{fam} (mean of {len(g)} seeds)"]
            row.update({k: book[k] for k in PAIRED_SUMMARY})
            summary.append(row)
    per_run = per_run.join(pd.concat([paired[nz].loc[g["_name"], PAIRED_SUMMARY[:4]].set_index(g.index)
                                      for nz, g in per_run.groupby("obs_noise", sort=False)]))
    per_run = per_run.drop(columns="_name")
    summary = pd.DataFrame(summary)
    bt = metrics_table(base, rf)
    for name, r in bt.iterrows():
        summary = pd.concat([summary, pd.DataFrame([{"family": f"baseline: {name}", "obs_noise": 0.0, "seeds": 1,
                                                     **{k: r[k] for k in SUMMARY_METRICS[:5]},
                                                     **{k: paired[obs_noises[0]].loc[name, k] for k in PAIRED_SUMMARY}}])])
    table = pd.concat([t.assign(obs_noise=nz) for nz, t in paired.items()])
    table.index.name = "strategy"
    table.attrs.update(paired[obs_noises[0]].attrs)
    notes = [f"{n} ({', '.join(dict.fromkeys(rds))})" for n, rds in notes.items()]
    from .stats import bootstrap_note

    head = (f"Test split {split}; risk-free rate {rf_label(rf)} (cash earns it; Sharpe of excess returns); "
            f"benchmark: {benchmark or SP500_LABEL}; costs: drift model (what a broker charges); {fills}. Paired columns "
            f"(ΔSharpe .. DSR) against {table.attrs['against']} over the same days, for a family its seeds as one "
            f"book (equal capital in each): {bootstrap_note(table.attrs)}; JKM p: Jobson-Korkie-Memmel; DSR: "
            + (f"deflated for N = {n_trials} configurations (the study's ledger + {ledger.PRIOR_CONFIGURATIONS} "
               "tried while choosing the defaults)" if n_counted else
               f"deflated for N = {n_trials} configurations ({len(families)} compared here + "
               f"{ledger.PRIOR_CONFIGURATIONS} tried while choosing the defaults)")
            + (", the trials' Sharpe spread that of the families" if len(families) > 1 else
               ", the trials' Sharpe spread the null's √(252/days)") + "."
            + (f" Probability of backtest overfitting over the {len(families)} families (CSCV, 16 blocks): "
               + ", ".join(f"{paired[nz].attrs['pbo']:.2f} at noise {nz:g}" for nz in obs_noises) + "."
               if len(families) > 1 else ""))
    summary.attrs.update(notes=notes, paired=table, head=head)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        per_run.to_csv(out / "runs.csv", index=False)
        summary.to_csv(out / "summary.csv", index=False)
        table.to_csv(out / "paired.csv")
        note = head + "".join(f"\n\nNote: {n}." for n in notes)
        atomic_write_bytes(out / "summary.md", (note + "\n\n" + summary.to_markdown(index=False, floatfmt=".3f")
                                                + "\n\n" + paired_markdown(paired[obs_noises[0]])
                                                + f"\n\n{SURVIVORSHIP}\n").encode())
        _plot_compare(curves, base, out / "equity.png", split)
    return summary


def check_runs(run_dirs) -> None:
    """Every run of a comparison exists, is a run directory, and is given once (same resolved path)."""
    seen: dict[Path, str] = {}
    for rd in map(str, run_dirs):
        p = Path(rd)
        if not p.exists():
            raise FileNotFoundError(f"run {rd} does not exist")
        if not (p / "checkpoint.pt").is_file():
            stack = p.is_dir() and holds_seed_runs(p)
            raise FileNotFoundError(f"{rd} is not a run directory (no checkpoint.pt file)" + (
                f"; it is the folder of a --seeds stack: give its runs, {rd.rstrip('/')}/s*" if stack else ""))
        key = p.resolve()
        if key in seen:
            same = "" if seen[key] == rd else f" ({seen[key]} and {rd} are the same directory)"
            raise ValueError(f"run {rd} is given twice{same}: a run counts once; each seed is its own run directory")
        seen[key] = rd
    _check_distinct_runs(list(seen.values()))


def _check_distinct_runs(run_dirs: list[str]) -> None:
    """No two runs are one run twice: the same config.toml (same seed, same everything) or, for
    runs without one, the same checkpoint.pt bytes (a copy), which would count one seed as two."""
    import hashlib
    import json
    import tomllib

    configs: dict[str, str] = {}
    sizes: dict[int, list[str]] = {}
    for rd in run_dirs:
        cfg = Path(rd) / "config.toml"
        try:
            text = (json.dumps(tomllib.loads(cfg.read_text()), sort_keys=True, default=str)  # order-free
                    if cfg.is_file() else None)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            text = None  # unreadable: the backtest says so; nothing to compare here
        if text is not None:
            if text in configs:
                seed = tomllib.loads(cfg.read_text()).get("agent", {}).get("seed", "?")
                raise ValueError(f"runs {configs[text]} and {rd} have the same config.toml (seed {seed}, same "
                                 "everything): one seed twice would count as two; compare runs of different seeds "
                                 "(or give one of them)")
            configs[text] = rd
        else:  # a run saved without config.toml (the API): a copy has the same bytes
            sizes.setdefault((Path(rd) / "checkpoint.pt").stat().st_size, []).append(rd)
    for same_size in (v for v in sizes.values() if len(v) > 1):
        digests: dict[str, str] = {}
        for rd in same_size:
            h = hashlib.sha256((Path(rd) / "checkpoint.pt").read_bytes()).hexdigest()
            if h in digests:
                raise ValueError(f"runs {digests[h]} and {rd} hold the same checkpoint.pt (a copy of one run): one "
                                 "seed twice would count as two; compare runs of different seeds (or give one of them)")
            digests[h] = rd


def _plot_compare(curves: dict, base, png: Path, split) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {f"{f}/exact/exact": f"C{i}" for i, f in enumerate(("plain", "exact", "relaxed"))}
    fig, ax = plt.subplots(figsize=(9, 5))
    seen = set()
    for label, eq in curves.items():
        fam = label.split()[0]
        if fam not in colors:  # e.g. plain/flat/exact, relaxed/exact/relaxed: the next free colour
            colors[fam] = f"C{len(colors) % 10}"
        ax.plot(eq.index, eq, color=colors[fam], lw=1.2, alpha=0.8, label=None if fam in seen else fam)
        seen.add(fam)
    styles = [("k", "--"), ("dimgray", ":"), ("saddlebrown", "-."), ("gray", (0, (1, 3)))]  # one per baseline
    for b, (color, ls) in zip(base or [], styles * 3):
        ax.plot(b.returns.index, (1 + b.returns.fillna(0)).cumprod(), linestyle=ls, lw=1.3, color=color,
                alpha=0.8, label=b.name)
    ax.set_title(f"equity curves, {split} split (one line per seed)")
    ax.set_ylabel("growth of 1")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def noise_levels(text: str | None) -> tuple[float, ...]:
    if not text:
        return (0.0,)
    vals = tuple(float(x) for x in str(text).split(","))
    if any(v < 0 or not np.isfinite(v) for v in vals):
        raise ValueError(f"observation noise must be >= 0, got {text}")
    return vals
