"""Walk-forward studies: a sweep whose every configuration is trained once per yearly fold.

    [sweep.walkforward]
    first_test_year = 2011     # the test blocks: every calendar year first..last
    last_test_year = 2022
    valid_years = 2            # model selection on the years just before each test year
    train_years = 0            # 0: training from the data's start (expanding); N: the N years before

Fold Y trains on [start, Dec 31 of Y − valid_years − 1], selects its checkpoint (best.pt) on
[Jan 1 of Y − valid_years, Dec 31 of Y − 1] and trades [Jan 1 of Y, Dec 31 of Y] once, in the
report. A split's returns are exactly its own trading days (`eqtrade.data.market.Market`), so the
test blocks tile the out-of-sample span without a gap or an overlap; each fold's book starts in
cash on its first decision (the close before the test year's first day), for the agents and the
baselines alike, and the first trade pays its costs. No fold reads a price after its validation
block while it trains or is selected: an env keeps no price after its split's end.

The folds' test returns join into one out-of-sample path per configuration and seed, on which
`eqtrade.backtest.stats` computes the paired statistics against the baselines over the same days.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

WALKFORWARD_KEYS = ("first_test_year", "last_test_year", "valid_years", "train_years", "warm_start")
DEFAULTS = {"first_test_year": 2011, "last_test_year": 2022, "valid_years": 2, "train_years": 0, "warm_start": False}
#: the keys a walk-forward study sets in every trial, which its grid must leave alone
FOLD_KEYS = ("env.split", "eval_env.split")


@dataclass(frozen=True)
class Fold:
    """One fold: its test year and the three spans (ISO dates, inclusive; "" = the data's start)."""

    year: int
    train: tuple[str, str]
    valid: tuple[str, str]
    test: tuple[str, str]

    @property
    def name(self) -> str:
        return f"fold={self.year}"


def parse_walkforward(path, table) -> dict:
    """A [sweep.walkforward] table, checked (one-line errors naming the key and value)."""
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [sweep.walkforward] must be a table, got {table!r}")
    bad = sorted(set(table) - set(WALKFORWARD_KEYS))
    if bad:
        raise ValueError(f"{path}: unknown [sweep.walkforward] option(s) {bad}; known: {', '.join(WALKFORWARD_KEYS)}")
    wf = dict(DEFAULTS, **table)
    if not isinstance(wf["warm_start"], bool):
        raise ValueError(f"{path}: [sweep.walkforward] warm_start = {wf['warm_start']!r} must be true or false")
    for k, v in wf.items():
        if k == "warm_start":
            continue
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{path}: [sweep.walkforward] {k} = {v!r} must be a whole number")
    if not 1900 <= wf["first_test_year"] <= wf["last_test_year"] <= 2200:
        raise ValueError(f"{path}: [sweep.walkforward] test years {wf['first_test_year']}..{wf['last_test_year']}: "
                         "first_test_year must be a year <= last_test_year")
    if wf["valid_years"] < 1:
        raise ValueError(f"{path}: [sweep.walkforward] valid_years = {wf['valid_years']} must be >= 1: each fold "
                         "selects its checkpoint on the years before its test year")
    if wf["train_years"] < 0:
        raise ValueError(f"{path}: [sweep.walkforward] train_years = {wf['train_years']} must be >= 0 (0: from the "
                         "data's start)")
    return wf


def folds(wf: dict) -> list[Fold]:
    """The folds of a parsed [sweep.walkforward] table, in test-year order."""
    out = []
    for y in range(wf["first_test_year"], wf["last_test_year"] + 1):
        v0 = y - wf["valid_years"]
        start = f"{v0 - wf['train_years']}-01-01" if wf["train_years"] else ""
        out.append(Fold(y, (start, f"{v0 - 1}-12-31"), (f"{v0}-01-01", f"{y - 1}-12-31"), (f"{y}-01-01", f"{y}-12-31")))
    return out


def fold_overrides(fold: Fold) -> dict:
    """The dotted config keys a fold sets in a trial."""
    return {"env.split": list(fold.train), "eval_env.split": list(fold.valid)}


def warm_starts(spec, out: Path) -> dict[str, str]:
    """With `warm_start = true`: each fold trial but the first -> the best.pt of the same
    configuration and seed in the previous fold ([run] init_from); {} without it."""
    if not (spec.walkforward or {}).get("warm_start"):
        return {}
    fs = spec.folds()
    out_runs = Path(out) / "runs"
    starts = {}
    for name, _ in spec.configurations():
        names = [f"{name},{f.name}" if name != "trial" else f.name for f in fs]
        for prev, this in zip(names[:-1], names[1:]):
            starts[this] = str(out_runs / prev / "best.pt")
    return starts


def write_folds(out: Path, fs: list[Fold]) -> None:
    """folds.json: every fold's spans, what its training and selection saw and what it trades."""
    from ..util import atomic_write_bytes

    rows = [dict(asdict(f), train=list(f.train), valid=list(f.valid), test=list(f.test)) for f in fs]
    atomic_write_bytes(Path(out) / "folds.json", json.dumps(
        {"rule": "fold Y: train on `train`, select best.pt on `valid`, trade `test` once; the book starts in cash at "
                 "the close before the test year's first day (agents and baselines alike); \"\" = the data's start; "
                 "with warm_start, each fold's networks start from the previous fold's best.pt",
         "folds": rows}, indent=1).encode())


# -- the report -------------------------------------------------------------------------------------
#: the baselines a walk-forward report trades over the same days (`eqtrade.backtest.baselines`)
REPORT_BASELINES = ("equal-weight", "ivol", "minvar", "hrp", "erc", "mom", "volman", "buy-and-hold", "sp500")


def _join(parts: list, what: str, index) -> "pd.Series":
    """Fold returns joined into one path, checked to tile the trading days without gap or overlap."""
    import pandas as pd

    path = pd.concat(parts)
    if not path.index.is_monotonic_increasing or path.index.has_duplicates:
        raise ValueError(f"walk-forward path {what}: the folds' test returns overlap")
    span = index[(index >= path.index[0]) & (index <= path.index[-1])]
    missing = span.difference(path.index)
    if len(missing):
        raise ValueError(f"walk-forward path {what}: {len(missing)} trading day(s) of the out-of-sample span have no "
                         f"return (first {missing[0]:%Y-%m-%d}): the folds do not tile it")
    return path


def walkforward_report(spec, study: Path, out: Path, data_dir=None, force: bool = False,
                       n_boot: int = 2000, seed: int = 0) -> "pd.DataFrame":
    """Trade every fold's test year once, join the folds into one out-of-sample path per
    configuration and seed, and compare each path with the baselines over the same days (the
    paired statistics of `eqtrade.backtest.stats`). Writes returns.parquet, per_fold.csv,
    paired.csv, summary.md and rolling_sharpe.png to `out`; the test read goes in the study's
    ledger (a second read is refused unless `force`)."""
    import numpy as np
    import pandas as pd

    from ..backtest import ledger
    from ..backtest.engine import baseline
    from ..backtest.metrics import metrics
    from ..backtest.report import backtest_run, load_benchmark, parse_rf
    from ..backtest.metrics import rf_daily
    from ..backtest.stats import bootstrap_note, paired_table, pbo, sharpe, trials_sharpe_std
    from ..backtest.engine import with_cash_interest
    from ..outdirs import check_output_dir
    from ..util import atomic_write, atomic_write_bytes

    fs = spec.folds()
    rep = spec.report
    from ..backtest.report import baseline_kinds

    against = rep.get("against", "equal-weight")
    against = "sp500" if against == "sp500" else baseline_kinds(against)[0]
    block = f"{fs[0].test[0]}..{fs[-1].test[1]}"
    # checked now, recorded once the table is computed (a report that fails halfway reads nothing)
    read = ledger.plan_test_read(study, block, force, what="walk-forward report",
                                 content=spec.read_content([n for n, _ in spec.trials()]))
    check_output_dir(out, "walkforward", force=True)
    out.mkdir(parents=True, exist_ok=True)
    rf = parse_rf(rep.get("rf", 0.0), data_dir)
    bench = load_benchmark(rep.get("benchmark"), data_dir)
    noises = tuple(float(x) for x in rep["obs_noise"])
    paths: dict[tuple[float, str], list] = {}
    labels: dict[str, dict] = {}
    base_parts: dict[str, list] = {}
    index = None
    first = spec.configurations()[0][0]
    for name, _ in spec.configurations():
        for f in fs:
            run = study / "runs" / (f"{name},{f.name}" if name != "trial" else f.name)
            for noise in noises:
                bts, ctx = backtest_run(run, f.test, obs_noise=noise, seed=f.year, benchmark=rep.get("benchmark"),
                                        data_dir=data_dir, data=rep.get("data"), record=noise == noises[0],
                                        baselines="none")
                group = ",".join(p for p in name.split(",") if not p.startswith("seed=")) or "trial"
                label = f"{ctx['algo'].upper()} {ctx['family']}" + (
                    "" if group in ("trial", f"family={ctx['family']}") or group.startswith("family=") and "," not in group
                    else f" [{group}]")
                key = f"{label} s{ctx['seed']}"
                labels[key] = {"configuration": label, "seed": ctx["seed"], "group": group}
                paths.setdefault((noise, key), []).append(with_cash_interest(bts[0], rf).returns)
                if noise == noises[0] and name == first:  # the baselines once per fold, on the agents' days
                    prices = _fold_prices(run, data_dir, rep.get("data"))[ctx["tickers"]]
                    index = prices.index
                    for kind in REPORT_BASELINES if prices.shape[1] > 1 else ("buy-and-hold", "sp500"):
                        b = with_cash_interest(baseline(kind, prices, f.test, ctx["window"], ctx["cost_bps"],
                                                        ctx["cost_model"], bench, ctx["fill"], ctx["borrow_bps"]), rf)
                        base_parts.setdefault(b.name, []).append(b.returns)
                        labels.setdefault(b.name, {"configuration": b.name, "seed": None, "group": f"baseline:{kind}"})
    baselines = {n: _join(p, n, index) for n, p in base_parts.items()}
    ref_name = next((n for n, info in labels.items() if info["group"] == f"baseline:{against}"), None)
    if ref_name is None and against == "equal-weight":  # one asset: equal weight is buy & hold
        ref_name = next((n for n, info in labels.items() if info["group"] == "baseline:buy-and-hold"), None)
    if ref_name is None:
        raise ValueError(f"[sweep.report] against = {against!r} is not one of the report's baselines "
                         f"({', '.join(REPORT_BASELINES)})")
    tables, per_fold_rows, all_returns = [], [], {}
    n_conf = ledger.n_configurations(study) + ledger.PRIOR_CONFIGURATIONS
    for noise in noises:
        agents = {k: _join(p, k, index) for (nz, k), p in paths.items() if nz == noise}
        # the configuration's seeds as one book (equal capital in each seed's strategy)
        confs = {}
        for k, r in agents.items():
            confs.setdefault(labels[k]["configuration"], []).append(r)
        means = {f"{c} (mean of {len(v)} seeds)": pd.concat(v, axis=1).mean(axis=1) for c, v in confs.items()}
        frame = pd.DataFrame({**agents, **means, **baselines})
        # every statistic on the returns in excess of the risk-free rate (as backtest and compare)
        excess = frame.sub(rf_daily(rf, frame.index).to_numpy(), axis=0)
        sr_std = trials_sharpe_std([sharpe(excess[c].to_numpy()) for c in means], len(excess))
        t = paired_table(excess, ref_name, n_boot=n_boot, seed=seed, n_trials=max(n_conf, 1), sr_std=sr_std)
        # the probability of backtest overfitting over the configurations (their seeds as one book each)
        t.attrs["pbo"] = pbo(excess[list(means)].to_numpy()) if len(means) > 1 and len(frame) >= 32 else float("nan")
        for c in frame:
            m = metrics(frame[c])
            t.loc[c, "CAGR"], t.loc[c, "Max drawdown"] = m["CAGR"], m["Max drawdown"]
        t.insert(0, "obs_noise", noise)
        tables.append(t)
        for c in frame:
            all_returns[f"{c} @ noise {noise:g}" if len(noises) > 1 else c] = frame[c]
            for f in fs:
                inside = (frame.index >= pd.Timestamp(f.test[0])) & (frame.index <= pd.Timestamp(f.test[1]))
                r = frame[c][inside]
                per_fold_rows.append({"obs_noise": noise, "strategy": c, "year": f.year,
                                      "Sharpe": sharpe(excess[c][inside].to_numpy()),
                                      "return": float(np.prod(1 + r.to_numpy()) - 1), "days": len(r)})
    table = pd.concat(tables)
    table.index.name = "strategy"
    table.attrs.update(tables[0].attrs)
    per_fold = pd.DataFrame(per_fold_rows)
    rets = pd.DataFrame(all_returns)
    rets.index.name = "date"
    atomic_write(out / "returns.parquet", lambda p: rets.to_parquet(p))
    atomic_write(out / "paired.csv", lambda p: table.to_csv(p))
    atomic_write(out / "per_fold.csv", lambda p: per_fold.to_csv(p, index=False))
    _plot_rolling(rets, [c for c in rets if "mean of" in c or c == ref_name or "volatility-managed" in c],
                  out / "rolling_sharpe.png")
    years = per_fold[per_fold["obs_noise"] == noises[0]].pivot(index="strategy", columns="year", values="Sharpe")
    head = (f"Walk-forward study {spec.name}: {len(fs)} yearly folds, test {block} "
            f"({len(rets)} trading days out of sample), each fold trained on {fs[0].train[0] or 'the data start'}.. and "
            f"selected on the {spec.walkforward['valid_years']} year(s) before its test year. Reference: {ref_name}. "
            f"{bootstrap_note(table.attrs)}. Deflated Sharpe: N = {n_conf} configurations "
            f"({n_conf - ledger.PRIOR_CONFIGURATIONS} in this study's ledger + {ledger.PRIOR_CONFIGURATIONS} tried "
            f"while choosing the defaults). Probability of backtest overfitting over the {len(means)} configurations "
            f"(their seeds as one book each; CSCV, 16 blocks; coarse for few configurations): "
            + ", ".join(f"{t.attrs['pbo']:.2f} at noise {nz:g}" for t, nz in zip(tables, noises))
            + f". Risk-free rate {rep.get('rf', 0.0)}.\n\n")
    md = (head + table.to_markdown(floatfmt=".3f") + "\n\nSharpe by test year (noise "
          f"{noises[0]:g}):\n\n" + years.to_markdown(floatfmt=".2f") + "\n")
    atomic_write_bytes(out / "summary.md", md.encode())
    ledger.append(study, read)
    return table


def _fold_prices(run: Path, data_dir, data):
    """The price panel a run's backtest trades (its env's data, or the report's `data`)."""
    from ..agents.checkpoint import read
    from ..backtest.report import run_checkpoint
    from ..data.market import resolve_prices

    state = read(run_checkpoint(run)[0])
    kw = dict(state["env_spec"]["kwargs"])
    prices = resolve_prices(data if data is not None else kw.get("prices"), None if data else kw.get("tickers"),
                            data_dir if data_dir is not None else kw.get("data_dir"), kw.get("align", "inner"))
    return prices


def _plot_rolling(rets, columns: list[str], png: Path, window: int = 252) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for c in columns:
        r = rets[c]
        roll = r.rolling(window).mean() / r.rolling(window).std() * np.sqrt(252)
        ax.plot(roll.index, roll, lw=1.2, label=c)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_title(f"rolling {window}-day Sharpe, walk-forward out-of-sample path")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
