"""The `eqtrade` command: parses arguments, then calls the library. Run `eqtrade --help`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

import pandas as pd

from .envs.factory import PIXELS_PREFIX, DMC_PREFIX, is_pixels
from .symmetry import FAMILIES
from .lock import LOCK_NAME, locked
from .outdirs import check_output_dir, describe, holds_seed_runs, is_seed_dir, output_kind, seed_runs
from .util import OBS_NOISE, Range

log = logging.getLogger("eqtrade")

EPILOG = """examples:
  eqtrade data list                         datasets available (bundled, cached, imported)
  eqtrade data show sp500-20                summary and validation report
  eqtrade fetch --tickers AAPL MSFT         download from Yahoo Finance into data/
  eqtrade data import prices.csv --name my  store your own price file as dataset 'my'
"""


#: `eqtrade train` options that say how to run, not what: --resume may change them (--steps:
#: train longer); every other option is part of the run's configuration
TRAIN_RUNTIME_FLAGS = ("help", "steps", "device", "threads", "out", "resume", "no_progress", "data_dir", "verbose", "seeds")


def _data_dir_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="data directory (default: $EQTRADE_DATA, else ./data)")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `eqtrade` command."""
    ap = argparse.ArgumentParser(
        prog="eqtrade",
        description="Approximately equivariant reinforcement learning for trading, on real prices.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    from . import __version__

    ap.add_argument("--version", action="version", version=f"eqtrade {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    dd = _data_dir_parent()

    f = sub.add_parser(
        "fetch", parents=[dd], help="download daily prices from Yahoo Finance into the cache",
        description="Download daily OHLCV and adjusted closes with yfinance into DIR/yfinance/ "
        "(parquet, one file per ticker, listed with hashes in DIR/manifest.json). A second fetch "
        "asks only for dates after the cached ones; --refresh downloads everything again (adjusted "
        "prices change after splits and dividends). Each ticker succeeds or fails on its own; the "
        "exit code is 1 if any failed. A universe (--tickers-file, or more than 10 tickers) is downloaded in "
        "batches with yfinance's threaded download (--batch-size), then stored ticker by ticker.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  eqtrade fetch --tickers AAPL MSFT ^GSPC\n"
        "  eqtrade fetch --tickers-file universe.txt --start 2005-01-01   (one ticker a line, # comments)\n"
        "then train on it without survivorship bias: [env] prices = \"cache\", align = \"mask\" (README)",
    )
    f.add_argument("--tickers", nargs="+", default=[], metavar="TICKER", help="Yahoo symbols, e.g. AAPL MSFT ^GSPC")
    f.add_argument("--tickers-file", default=None, metavar="FILE",
                   help="a text file of Yahoo symbols, one a line ('#' starts a comment); with --tickers: both")
    f.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="tickers per threaded download (default 50 for more than 10 tickers, else 1: one at a time)")
    f.add_argument("--start", default="2010-01-01", help="first date, YYYY-MM-DD (default 2010-01-01)")
    f.add_argument("--end", default=None, help="last date, inclusive, YYYY-MM-DD (default: today)")
    f.add_argument("--refresh", action="store_true", help="re-download the whole range, replacing the cache")
    f.add_argument("--retries", type=int, default=3, help="retries when rate limited, 0 to 10 (exponential backoff; default 3)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")

    d = sub.add_parser("data", help="list, inspect and import datasets",
                       description="Datasets: bundled (real prices shipped with eqtrade), cached (fetched "
                       "tickers) and imported (your files). Any command's --data NAME takes their names.")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dsub.add_parser("list", parents=[dd], help="every dataset with tickers, date range and rows")
    s = dsub.add_parser("show", parents=[dd], help="summary and validation report of a dataset or ticker")
    s.add_argument("name", metavar="TICKER|DATASET")
    i = dsub.add_parser(
        "import", parents=[dd], help="validate a CSV/parquet price file and store it as a dataset",
        description="Accepted layouts: wide (a date column, then one adjusted-close column per "
        "ticker), long (date, ticker/symbol and a price column) or one ticker's OHLCV (date, open, "
        "high, low, close[, adj close], volume). The price column is the first of adj_close / "
        "'adj close' / adjusted_close / close / price unless --price-column names it. The file is "
        "refused, and nothing stored, if validation finds an error.",
    )
    i.add_argument("path", help="CSV (optionally .gz) or parquet file")
    i.add_argument("--name", required=True, help="dataset name to store it under")
    i.add_argument("--ticker", default=None, help="ticker name for a single-ticker OHLCV file (default: file name)")
    i.add_argument("--price-column", default=None, help="price column of a long/OHLCV file")
    i.add_argument("--force", action="store_true", help="replace an existing dataset of that name")
    i.add_argument("--date-format", default=None, metavar="FORMAT",
                   help="strptime format of the dates, e.g. %%d/%%m/%%Y (needed when day and month could be "
                   "swapped: no day above 12 in the file)")
    i.add_argument("--allow-jumps", action="store_true",
                   help="accept single-day moves beyond x100 (otherwise an error: usually a decimal or unit mistake)")
    pl = dsub.add_parser(
        "planted", parents=[dd], help="store a synthetic market with a known signal (to prove a learner)",
        description="Generates the planted momentum market of eqtrade.data.synthetic (every asset's return is a "
        "slowly varying hidden drift plus noise, so the trailing mean return predicts the next one), stores it "
        "through the ordinary import path as dataset NAME (1999-2022 business days, so the default splits "
        "apply) and prints the known rule's Sharpe and turnover on the valid and test splits: what a learner "
        "should approach. Then: eqtrade train --data NAME ...",
    )
    pl.add_argument("--name", default="planted", help="dataset name (default planted)")
    pl.add_argument("--assets", type=int, default=10, help="number of assets (default 10)")
    pl.add_argument("--seed", type=int, default=0, help="random seed of the market (default 0)")
    pl.add_argument("--force", action="store_true", help="replace an existing dataset of that name")
    g = sub.add_parser(
        "symmetry", parents=[dd], help="how far real returns (or a dm_control task) are from their declared symmetry",
        description="Measures the reflection gap R -> -R of daily returns over a split: drift, skew, "
        "downside/upside volatility, and the sliced 1-Wasserstein distance between W-day return windows "
        "and their reflections, per asset and pooled, with a block-bootstrap interval and the noise level "
        "of an exactly symmetric market of the same length. ε is the excess over that noise.\n\n"
        "With --env dmc/DOMAIN-TASK: checks the task's declared symmetry on the MuJoCo simulator. For states "
        "s visited by a random policy, random actions a and every group element g, it sets the physics to "
        "g·s, steps with g·a and compares with g applied to the outcome of (s, a): ε_P is the mean relative "
        "error of the next observation, ε_R the mean absolute reward error, per break strength.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  eqtrade symmetry --data sp500-20 --split train\n"
        "  eqtrade symmetry --env dmc/cartpole-swingup --break 0,0.5,1\n"
        "  eqtrade symmetry --env dmc-pixels/cartpole-swingup --break 0,0.5 --states 16 --scene symmetric",
    )
    g.add_argument("--data", nargs="*", default=None, metavar="NAME|TICKER",
                   help="a dataset name (default: sp500-20), or tickers from the bundled data")
    g.add_argument("--source", default="bundled", help="where tickers given to --data come from: bundled or cache")
    g.add_argument("--split", default="train", help="train, valid, test, or START:END (default train)")
    g.add_argument("--window", type=int, default=32, help="window length W in days (default 32)")
    g.add_argument("--boot", type=int, default=50, help="bootstrap and null resamples (default 50)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--env", default=None, metavar="dmc/DOMAIN-TASK",
                   help="check a dm_control task's declared symmetry on the simulator instead (see below)")
    g.add_argument("--break", dest="breaks", default="0,0.25,0.5,1", metavar="S1,S2,...",
                   help="with --env: break strengths to check (default 0,0.25,0.5,1)")
    g.add_argument("--states", type=int, default=64, help="with --env: states sampled per variant (default 64)")
    g.add_argument("--scene", default="textured", metavar="textured|symmetric",
                   help="with --env dmc-pixels/...: the rendered scene: textured (dm_control's, default) or "
                   "symmetric (no skybox, floor texture, shadows or reflections)")
    t = sub.add_parser(
        "train", parents=[dd], help="train a DQN or SAC agent with plain, exact or relaxed networks",
        description="Trains an agent and writes runs/NAME/: config.toml (every resolved option), checkpoint.pt, "
        "metrics.csv (step, episode return, losses, alpha/epsilon, eval return, the policy's measured "
        "equivariance error, scale deviation) and learning_curve.png. With no options: a relaxed SAC on the bundled 20-stock "
        "long/short portfolio (train split), evaluated on the valid split, in a few minutes on 2 cores. "
        "Ctrl-C saves a checkpoint; --resume continues it exactly.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  eqtrade train --agent relaxed\n  eqtrade train --agent exact --env trading\n"
        "  eqtrade train --agent plain --env Pendulum-v1 --steps 20000\n"
        "  eqtrade train --config strategies/dqn-relaxed.toml --out runs/my-dqn\n"
        "  eqtrade train --out runs/my-dqn --resume --steps 40000",
    )
    t.add_argument("--agent", choices=list(FAMILIES), default=None,
                   help="network family (default from the config: relaxed)")
    t.add_argument("--assets", choices=["flat", "exact", "relaxed"], default=None,
                   help="portfolio: the asset axis: flat (one MLP over all assets, tied to the universe and its "
                   "order), exact (one head shared by every asset; default), relaxed (shared head + per-asset "
                   "embeddings, regularised toward sharing)")
    t.add_argument("--context", choices=["none", "mean"], default=None,
                   help="portfolio, per-asset networks: each asset also reads the market mean (default none)")
    t.add_argument("--scale", choices=["exact", "relaxed", "plain"], default=None,
                   help="portfolio: the return-scale axis R -> cR: exact (returns over their trailing volatility: "
                   "blind to the volatility level; default), relaxed (plus each asset's and the market's log "
                   "volatility level, read through weights that start at zero), plain (raw returns and the levels)")
    t.add_argument("--horizons", default=None, metavar="default|none|H1,H2,...",
                   help="portfolio: per-asset returns over longer horizons beside the daily window, e.g. "
                   "5,21,63,126,252-21 (252 days skipping the last 21); default = that list")
    t.add_argument("--algo", choices=["sac", "dqn", "drqv2"], default=None,
                   help="default: sac for continuous actions, dqn for discrete, drqv2 for pixel tasks (dmc-pixels/...)")
    t.add_argument("--env", default=None, help="portfolio (default), trading, or a gymnasium id such as Pendulum-v1")
    t.add_argument("--data", default=None, help="dataset name for the trading envs (default: bundled sp500-20)")
    t.add_argument("--steps", type=int, default=None, help="environment steps in total")
    t.add_argument("--break", dest="break_strength", type=float, default=None, metavar="S",
                   help="dm_control envs: symmetry-break strength in [0, 1] (gravity tilted by 30°·S; default 0)")
    t.add_argument("--seed", type=int, default=None,
                   help="the run's random seed (networks, exploration, replay sampling, episode starts; default: the "
                   "config's, 0)")
    t.add_argument("--seeds", default=None, metavar="N|S1,S2,...",
                   help="train several seeds in one process as a stack of runs (SAC or DQN): a count N (seeds 0..N-1) or a "
                   "list; one ordinary run directory per seed: --out DIR/s<SEED> (default runs/ALGO-FAMILY-ENV-sSEED). "
                   "With --resume --out DIR: continue the stack in DIR (every s<SEED>/, or those listed)")
    t.add_argument("--encoder", default=None, metavar="cnn|lift|group|steerable",
                   help="pixel tasks (DrQ-v2): the conv encoder: cnn (plain: the reference), lift (exact/relaxed "
                   "default: the reference CNN shared over the group's images), group (group convolutions, relaxed "
                   "for --agent relaxed) or steerable (escnn steerable convolutions, relaxed for --agent relaxed)")
    t.add_argument("--device", default=None, metavar="auto|cpu|cuda",
                   help="where the networks train: auto (default: CUDA when torch sees one, else the CPU), cpu, "
                   "cuda or cuda:N; a checkpoint continues (--resume) or loads on any device")
    t.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch intra-op threads (default 1: the networks are small, and more threads gain little on "
                   "an idle machine and cost much beside other work; [run] threads in a config)")
    t.add_argument("--config", default=None, metavar="TOML", help="a strategy config, e.g. strategies/sac-relaxed.toml")
    t.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/ALGO-FAMILY-ENV-sSEED)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint (on "
                   "another machine, --device says where: a run saved with --device cuda needs --device cpu or auto "
                   "on a machine without a GPU)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar: one line per evaluation instead (the default when output is not a terminal)")
    # the flags that set the run's configuration: --resume refuses them (the saved config.toml decides)
    t.set_defaults(config_flags=tuple((a.option_strings[-1], a.dest) for a in t._actions
                                      if a.option_strings and a.dest not in TRAIN_RUNTIME_FLAGS))
    m = sub.add_parser(
        "dmc", help="the continuous-control suite: plain/exact/relaxed SAC on dm_control tasks, exact and broken",
        description="Runs SAC for every domain x break strength x agent family x seed (trials of the sweep engine "
        "on Ray Tune: a local Ray instance, --jobs trials at a time, or a cluster with --address), "
        "then prints and saves a table of final returns (mean ± 95% t-interval over seeds) with one column "
        "per test-time observation-noise level, the mean evaluation return over the learning curve (\"curve "
        "mean\": learning speed), and learning curves (OUT/curves-DOMAIN.png). Steps are env "
        "steps; frames = steps x action repeat (cartpole 8, others 4). Giving the same command again reuses "
        "finished runs and resumes interrupted ones.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  eqtrade dmc --quick\n"
        "  eqtrade dmc --pixels --break 0,0.5 --out runs/dmc-pixels   (DrQ-v2 from 84x84 frames, CPU budget preset)\n"
        "  eqtrade dmc --domains cartpole-swingup --break 0,0.5 --seeds 3 --steps 12500 --out runs/dmc-cartpole\n"
        "tasks: cartpole-swingup, cartpole-balance, pendulum-swingup, acrobot-swingup, ball_in_cup-catch, reacher-easy",
    )
    m.add_argument("--domains", default=None, metavar="D1,D2,...", help="tasks (default cartpole-swingup)")
    m.add_argument("--agents", default=None, metavar="F1,F2,...", help="families (default plain,exact,relaxed)")
    m.add_argument("--break", dest="breaks", default=None, metavar="S1,S2,...", help="break strengths (default 0,0.5)")
    m.add_argument("--steps", type=int, default=None, help="env steps per run (default 12500: 100k cartpole frames)")
    m.add_argument("--seeds", type=int, default=None, help="seeds per combination (default 3)")
    m.add_argument("--obs-noise", default=None, metavar="S1,S2,...",
                   help="test-time observation-noise std levels (default 0,0.05,0.1)")
    m.add_argument("--eval-episodes", type=int, default=None, help="final evaluation episodes per noise level (default 5)")
    m.add_argument("--jobs", type=int, default=None, help="trials at a time on the local Ray instance (default: one per core)")
    m.add_argument("--address", default=None, help="run the trials on an existing Ray cluster (host:port; default "
                   "$RAY_ADDRESS, else a local instance); it must share --out with this machine")
    m.add_argument("--out", default=None, metavar="DIR", help="output directory (default runs/dmc, runs/dmc-quick, runs/dmc-pixels, ...)")
    m.add_argument("--quick", action="store_true",
                   help="smoke preset: cartpole-swingup, breaks 0 and 0.5, 1 seed, 1500 steps, 64x64 nets (minutes)")
    m.add_argument("--pixels", action="store_true",
                   help="DrQ-v2 from 84x84 frames (dmc-pixels/...) instead of SAC from states; preset: 1 seed, "
                   "2000 steps, batch 128, DrQ-v2's reference networks (flags override)")
    m.add_argument("--encoder", default=None, metavar="lift|group|steerable",
                   help="--pixels: the exact/relaxed families' conv encoder (default lift; see eqtrade train --help)")
    m.add_argument("--scene", default=None, metavar="textured|symmetric",
                   help="--pixels: the rendered scene (default textured; see eqtrade symmetry --help)")
    m.add_argument("--device", default=None, metavar="auto|cpu|cuda",
                   help="where each run's networks train (default auto: CUDA when torch sees one)")
    m.add_argument("--no-progress", action="store_true")
    w = sub.add_parser(
        "sweep", parents=[dd], help="a study on Ray Tune: a grid (or a search) of training runs, then one table",
        description="Runs every trial of a sweep spec (a strategy config plus a [sweep] table: a grid over any "
        "config field, or an Optuna TPE search with ASHA early stopping for tuning) on Ray Tune, one trial per "
        "CPU, one torch thread each. Each trial is an ordinary run directory (OUT/runs/NAME: backtest and compare "
        "work on it), reports its evaluation on the valid split to Tune at every evaluation and checkpoints "
        "through the agent's checkpoint.pt; then `compare` on the finished runs gives the table, on the split "
        "the spec's [sweep.report] names, once (OUT/report/). Ctrl-C stops within seconds; --resume continues "
        "an interrupted sweep without redoing finished trials. A [sweep.walkforward] table makes it a "
        "walk-forward study: every configuration is trained once per yearly fold (trained up to, and selected "
        "on, the years before its test year), and the report joins the folds' test years into one "
        "out-of-sample path per configuration and seed, with paired statistics against the baselines over the "
        "same days (OUT/report/). OUT/ledger.jsonl records every trial and every read of the test data; "
        "reading the test data again for a changed study is refused without --force-test-read (a resumed, "
        "unchanged study rereads the same numbers and is recorded as a repeat). Default: a local Ray instance sized to the "
        "machine, nothing left running afterwards; --address (or RAY_ADDRESS) runs on an existing cluster, "
        "which must share OUT and the data directory with this machine.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  eqtrade sweep studies/portfolio-families.toml\n"
        "  eqtrade sweep studies/portfolio-families.toml --resume\n"
        "  ray start --head --port 6379   # then on other machines: ray start --address HEAD:6379\n"
        "  eqtrade sweep studies/portfolio-families.toml --address HEAD:6379 --out /shared/sweeps/families",
    )
    w.add_argument("spec", metavar="SPEC.toml", help="a sweep spec (see studies/ and README)")
    w.add_argument("--out", default=None, metavar="DIR", help="sweep directory (default runs/sweeps/NAME)")
    w.add_argument("--address", default=None,
                   help="an existing Ray cluster (host:port, auto, ray://...); default $RAY_ADDRESS, else a local one")
    w.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray instance = trials at a time "
                   "(default: all cores)")
    w.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial where the cluster has them "
                   "(default 0)")
    w.add_argument("--pack", type=int, default=None, metavar="K",
                   help="grid trials that differ only in the seed (or the split) train K at a time as one stacked "
                   "trial of one CPU (eqtrade train --seeds; default 5: a study's usual seeds of one setting; larger "
                   "packs give more steps/s per CPU but fewer trials to spread; 1: one run per trial); on one machine "
                   "the packs are balanced over its CPUs (at most K each: three families of 5 seeds on 2 cores "
                   "train as 5, 5, 3 + 2). Searches (ASHA) keep one run per trial; a resumed sweep keeps its packing")
    w.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --out")
    w.add_argument("--force", action="store_true", help="start afresh in an --out that holds an earlier sweep "
                   "(everything but its ledger is removed: the test reads it records still count)")
    w.add_argument("--force-test-read", action="store_true",
                   help="read the test data for the table although the sweep's ledger (OUT/ledger.jsonl) "
                   "records an earlier read of it by another version of the study (refused by default: each look at the test data is one more "
                   "chance to fool yourself); the forced read is recorded")
    w.add_argument("--no-progress", action="store_true", help="no per-trial progress table")
    b = sub.add_parser(
        "backtest", parents=[dd], help="backtest a trained run or a baseline strategy, with an HTML tearsheet",
        description="Rolls out the run's deterministic policy over a split (full period) next to the baselines "
        "(equal weight rebalanced daily, buy & hold equal weight, the S&P 500 price index excl. dividends or "
        "--benchmark, cash; buy & hold the asset for "
        "single-asset runs), with the environment's costs, and writes backtests/NAME/: returns.parquet, "
        "weights.parquet, metrics.csv, metrics.md, tearsheet.html (quantstats, against the benchmark; offline), "
        "equity.png and config.toml; the strategy and every baseline are compared, paired over the same days, "
        "with the reference baseline (--against, default equal weight): ΔSharpe with a stationary-bootstrap 95%% "
        "interval, the Jobson-Korkie-Memmel p-value, information ratio, correlation, Sharpe standard error, "
        "probabilistic Sharpe, exposure, beta and break-even cost (metrics.md, paired.csv, the tearsheet's title).",
    )
    b.add_argument("target", metavar="RUN_DIR|STRATEGY",
                   help="a run directory (with checkpoint.pt), a baseline name (equal-weight, buy-and-hold, sp500, "
                   "cash, ivol, minvar, meanrisk, hrp, erc, mom, volman) or a strategies/*.toml with a [baseline] table")
    b.add_argument("--split", default="test", help="train, valid, test (default) or START:END; an end left out "
                   "(2019-01-01: or :2015-12-31) is the data's first or last date")
    b.add_argument("--out", default=None, metavar="DIR", help="output directory (default backtests/NAME-SPLIT; "
                   "a run of a --seeds stack, DIR/s<SEED>: backtests/DIR-s<SEED>-SPLIT)")
    b.add_argument("--obs-noise", type=float, default=0.0, metavar="SIGMA",
                   help="market noise during the rollout: SIGMA trailing volatilities on each observed return, the book exact (robustness)")
    b.add_argument("--data", default=None,
                   help="dataset: for a baseline strategy (default bundled sp500-20), or another universe for a run "
                   "whose network is per-asset (zero-shot transfer; a flat network is an error)")
    b.add_argument("--no-html", action="store_true", help="skip the HTML tearsheet")
    b.add_argument("--force", action="store_true", help="replace an earlier backtest in --out (never another kind of output)")
    b.add_argument("--cost-model", choices=["target", "drift"], default=None,
                   help="portfolio costs: 'drift' (default) charges what a broker would, the trades from the "
                   "drifted weights to the new targets, for the agent and the baselines alike, as in training; 'target' "
                   "charges only changes of target weights (exact under the reflection)")
    b.add_argument("--benchmark", default=None, metavar="NAME",
                   help="benchmark series: a one-column dataset, a cached or bundled ticker (e.g. a fetched SPY, "
                   "a total-return series); default: the bundled S&P 500 price index, which excludes dividends")
    b.add_argument("--rf", default="0", metavar="RATE|NAME",
                   help="risk-free rate: an annual rate as a fraction (e.g. 0.02), or a cash-like price series by "
                   "name (a one-column dataset, cached or bundled ticker, e.g. a fetched T-bill ETF such as BIL), "
                   "whose daily returns are used; cash earns it, Sharpe and Sortino are of excess returns (default 0)")
    b.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="which policy of a run: best (best validation return during training, best.pt; default) "
                   "or last (checkpoint.pt)")
    _execution_args(b)
    _paired_args(b)
    c = sub.add_parser(
        "compare", parents=[dd], help="compare several runs (families x seeds) out of sample",
        description="Backtests every run on the split and prints, per network family, the mean and 95%% interval "
        "over seeds of Sharpe, CAGR, max drawdown, turnover and total return, with the baselines, and the train / "
        "valid Sharpe of each run's selected checkpoint (the generalisation gap), then the paired statistics "
        "over the same days against the reference baseline (--against, default equal weight) for each family's "
        "seeds as one book, each baseline and each run: ΔSharpe with a stationary-bootstrap 95%% interval, the "
        "Jobson-Korkie-Memmel p-value, information ratio, correlation, probabilistic and deflated Sharpe; writes "
        "summary.md/csv, runs.csv, paired.csv and equity.png (one curve per seed) to --out.",
    )
    c.add_argument("runs", nargs="+", metavar="RUN_DIR")
    c.add_argument("--split", default="test", help="train, valid, test (default) or START:END, as for backtest")
    c.add_argument("--obs-noise", default="0", metavar="S1,S2,...", help="market-noise levels to sweep, in trailing volatilities as for backtest (default 0)")
    c.add_argument("--out", default=None, metavar="DIR", help="default backtests/compare-SPLIT")
    c.add_argument("--force", action="store_true", help="replace an earlier comparison in --out")
    c.add_argument("--data", default=None, metavar="NAME",
                   help="backtest every run on another universe (per-asset networks only; zero-shot transfer)")
    c.add_argument("--benchmark", default=None, metavar="NAME",
                   help="benchmark series (as for backtest); default: the S&P 500 price index, excl. dividends")
    c.add_argument("--rf", default="0", metavar="RATE|NAME",
                   help="risk-free rate: an annual rate as a fraction or a cash-like price series (as for backtest)")
    c.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="best (validation-selected, default) or last checkpoint of every run")
    _execution_args(c)
    _paired_args(c)
    return ap


def _paired_args(p) -> None:
    """--baselines and --against, as backtest and compare take them."""
    from .backtest.baselines import BASELINE_KINDS
    from .backtest.report import DEFAULT_AGAINST, DEFAULT_BASELINES

    p.add_argument("--baselines", default=None, metavar="LIST",
                   help="rules traded beside equal weight, buy & hold, the index and cash, on the same days and "
                   f"costs: a comma list of {', '.join(BASELINE_KINDS)}, 'all' or 'none' (default "
                   f"{','.join(DEFAULT_BASELINES)}: the cheap ones; minvar, meanrisk, hrp and erc are skfolio "
                   "optimisers refitted monthly, a few seconds each; see docs/backtests.md)")
    p.add_argument("--against", default=DEFAULT_AGAINST, metavar="NAME",
                   help=f"the reference of the paired statistics: one of the baselines (default {DEFAULT_AGAINST}; "
                   "e.g. volman, sp500)")
    p.add_argument("--n-boot", type=int, default=2000, metavar="N",
                   help="stationary-bootstrap resamples of the ΔSharpe interval (default 2000; seed 0)")


def _check_paired_args(args) -> None:
    """--baselines names known rules and --against one that will be traded: before any backtest."""
    from .backtest.report import traded_reference
    from .util import Range

    Range(100, 1_000_000, note="bootstrap resamples").check("--n-boot", args.n_boot)
    traded_reference(args.against, args.baselines)


def _print_paired(table) -> None:
    from .backtest.stats import bootstrap_note

    cols = ["Sharpe", "Sharpe SE", "ΔSharpe", "ΔSharpe lo", "ΔSharpe hi", "JKM p", "IR t", "corr", "PSR",
            "break-even bps"]
    print(f"\npaired against {table.attrs['against']} over the same days. {bootstrap_note(table.attrs)}; "
          "JKM p: Jobson-Korkie-Memmel; break-even bps: the cost per unit traded at which the Sharpe would equal "
          "the reference's:")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[[c for c in cols if c in table]].to_string(float_format=lambda x: f"{x:.3f}"))


def cmd_backtest(args) -> int:
    from pathlib import Path

    from .backtest import backtest_run, backtest_strategy, write_report

    split = _split_arg(args.split)
    OBS_NOISE.check("--obs-noise", args.obs_noise)
    _check_borrow(args)
    if args.out:  # before a minute of backtesting: refuse an --out that holds other results
        check_output_dir(Path(args.out), "backtest", args.force)
    _check_paired_args(args)
    target = Path(args.target)
    if target.is_dir() and not (target / "checkpoint.pt").is_file():
        raise ValueError(_not_a_run(target))
    if (target / "checkpoint.pt").exists():
        bts, ctx = backtest_run(args.target, split, obs_noise=args.obs_noise, cost_model=args.cost_model,
                                checkpoint=args.checkpoint, benchmark=args.benchmark, data_dir=args.data_dir,
                                data=args.data, baselines=args.baselines, fill=args.fill, borrow_bps=args.borrow_bps)
        run = Path(os.path.abspath(args.target))  # not resolve(): a link names the folder as the user does
        # a run of a --seeds stack (DIR/s<SEED>) by its folder too: runs/a/s0 and runs/b/s0 apart
        name = f"{run.parent.name}-{run.name}" if is_seed_dir(run.name) else run.name
        print(f"policy: {ctx['checkpoint']} checkpoint of {args.target} "
              f"({'best validation return during training' if ctx['checkpoint'] == 'best' else 'end of training'})")
    else:
        if args.obs_noise:
            raise ValueError("--obs-noise applies to agents (a run directory), not to baseline strategies")
        bts, ctx = backtest_strategy(args.target, split, data=args.data, cost_model=args.cost_model,
                                     benchmark=args.benchmark, data_dir=args.data_dir, baselines=args.baselines,
                                     fill=args.fill or "close",
                                     borrow_bps=0.0 if args.borrow_bps is None else args.borrow_bps)
        name = Path(args.target).stem
    for note in ctx.get("notes", []):
        print(f"note: {note}")
    split_name = _split_name(split)
    out = Path(args.out) if args.out else Path("backtests") / f"{name}-{split_name}"
    check_output_dir(out, "backtest", args.force)
    from .backtest.metrics import rf_label

    rf = _rf_arg(args.rf, args.data_dir)
    with locked(out, "eqtrade backtest"):  # a default --out (a given one is locked by main)
        table = write_report(bts, ctx, out, html=not args.no_html, rf=rf, against=args.against, n_boot=args.n_boot)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    _print_paired(table.attrs["paired"])
    from .backtest.report import fill_text

    print(f"benchmark: {ctx.get('benchmark')}; costs {ctx['cost_bps']} bps, {ctx['cost_model']} model, "
          f"{fill_text(ctx['fill'], ctx['borrow_bps'])}; "
          f"risk-free rate {rf_label(rf)} (cash earns it; Sharpe and Sortino of excess returns)")
    print(f"\nwrote {out}/ ({'tearsheet.html, ' if not args.no_html else ''}metrics.md, paired.csv, equity.png, "
          "returns.parquet)")
    if set(ctx.get("tickers", [])) <= _bundled_tickers():
        print("note: survivorship bias in the bundled stocks flatters every long strategy.")
    return 0


def _not_a_run(path) -> str:
    """Why a directory given as a run cannot be backtested: what is missing or wrong in it."""
    from .outdirs import output_kind

    ck = path / "checkpoint.pt"
    if ck.exists():  # not a file: a directory, a socket, ...
        return (f"{path} is not a usable run directory: its checkpoint.pt is a {'directory' if ck.is_dir() else 'special file'}, "
                "not a checkpoint file; retrain the run (eqtrade train --out DIR)")
    if output_kind(path) == "run":
        have = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        return (f"{path} is a run directory without checkpoint.pt (it holds {have}: a run stopped before its first "
                f"checkpoint?); train it again: eqtrade train --config {path}/config.toml --out {path}")
    if holds_seed_runs(path):
        return (f"{path} is the folder of a --seeds stack, not a run directory: backtest one of its runs "
                f"({path}/s<SEED>), or compare them all: eqtrade compare {path}/s*")
    return (f"{path} is a directory but not a run directory (no checkpoint.pt, no config.toml of a run); "
            "backtest a run directory, a baseline name or a strategies/*.toml file")


def _split_name(split) -> str:
    """A split in a default output directory's name (an open end as "start"/"end")."""
    if isinstance(split, str):
        return split
    return "-".join(s or d for s, d in zip(split, ("start", "end")))


def _bundled_tickers() -> set[str]:
    from .data import DEFAULT_DATASET, provenance

    return set(provenance()["datasets"][DEFAULT_DATASET]["tickers"])


def _execution_args(p) -> None:
    """--fill and --borrow-bps (backtest, compare): for the agents' envs and the baselines alike."""
    p.add_argument("--fill", choices=["close", "next_close"], default=None,
                   help="when orders fill: close (decided on the close of t and filled at it, a market-on-close "
                   "order; the default, or a run's own env option) or next_close (one day of lag: decided on the data "
                   "up to t-1, filled at the close of t; the conservative check of same-close execution)")
    p.add_argument("--borrow-bps", type=float, default=None, metavar="BPS",
                   help="annual fee on the short weights held, in basis points, charged daily (BPS/1e4/252 per "
                   "unit short); long-only baselines pay nothing (default 0, or a run's own env option)")


def _check_borrow(args) -> None:
    if args.borrow_bps is not None:
        from .backtest.engine import BORROW_BPS

        BORROW_BPS.check("--borrow-bps", args.borrow_bps)


def cmd_compare(args) -> int:
    from pathlib import Path

    from .backtest import compare_runs

    from .backtest.report import check_runs

    split = _split_arg(args.split)
    split_name = _split_name(split)
    out = Path(args.out) if args.out else Path("backtests") / f"compare-{split_name}"
    check_runs(args.runs)  # the inputs first: a missing run is the error to show, whatever --out holds
    _check_paired_args(args)
    _check_borrow(args)
    check_output_dir(out, "compare", args.force)
    levels = _floats(args.obs_noise, "--obs-noise")
    if not levels:
        raise ValueError(f"--obs-noise {args.obs_noise!r} gives no noise level: give comma-separated levels, e.g. "
                         "--obs-noise 0,0.05 (or leave the flag out for 0)")
    for s in levels:
        OBS_NOISE.check("--obs-noise", s)
    with locked(out, "eqtrade compare"):  # a default --out (a given one is locked by main)
        summary = compare_runs(args.runs, split, tuple(levels), out, checkpoint=args.checkpoint,
                               benchmark=args.benchmark, rf=(rf := _rf_arg(args.rf, args.data_dir)),
                               data_dir=args.data_dir, data=args.data, baselines=args.baselines,
                               against=args.against, n_boot=args.n_boot, fill=args.fill, borrow_bps=args.borrow_bps)
    from .backtest.engine import SP500_LABEL
    from .backtest.metrics import rf_label

    print(f"risk-free rate {rf_label(rf)}; benchmark: {args.benchmark or SP500_LABEL}; "
          "costs: drift model")
    for note in summary.attrs.get("notes", []):
        print(f"note: {note}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    _print_paired(summary.attrs["paired"])
    print(f"\nwrote {out}/ (summary.md, runs.csv, paired.csv, equity.png)")
    return 0


def cmd_train(args) -> int:
    from pathlib import Path

    from .agents import TrainingDiverged
    from .run import default_run_dir, train_many

    out = Path(args.out) if args.out else None
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be a positive number of environment steps, got {args.steps}")
    from .util import MAX_STEPS, MAX_STEPS_WHY, parse_seeds

    if args.steps is not None and args.steps > MAX_STEPS:
        raise ValueError(f"--steps {args.steps} is more than the limit of {MAX_STEPS:_} steps ({MAX_STEPS_WHY})")
    seeds = parse_seeds(args.seeds, "--seeds") if args.seeds is not None else None
    if seeds is not None and args.seed is not None:
        raise ValueError("give --seed (one run) or --seeds (several runs in one process), not both")
    if args.resume:
        if out is None:
            raise ValueError("--resume needs --out DIR (the run to continue, or the folder of a --seeds stack)")
        outs = _stack_dirs(out, seeds) if seeds is not None or _is_stack_dir(out) else [out]
        cfgs = [_resume_check(args, o) for o in outs]
        held = [int(c.get("agent", {}).get("seed", 0)) for c in cfgs]
        for o, c_seed in zip(outs, held):
            if held.count(c_seed) > 1:
                twins = [str(p) for p, s in zip(outs, held) if s == c_seed]
                raise ValueError(f"{' and '.join(twins)} both hold seed {c_seed} (their config.toml): a stack trains each "
                                 "seed once; resume them one at a time, or remove the copy")
    else:
        if out is not None:  # the output is checked before the config (a refused --out writes nothing)
            if seeds is not None:
                _check_new_run_dir(out, stack=True)
            for o in [out] if seeds is None else [out / f"s{s}" for s in seeds]:
                _check_new_run_dir(o)
        cfgs = [_train_cfg(args, s) for s in (seeds if seeds is not None else [args.seed])]
        if out is not None:
            outs = [out] if seeds is None else [out / f"s{s}" for s in seeds]
        else:
            outs = [default_run_dir(cfg) for cfg in cfgs]  # ...-s<SEED>: distinct per seed
    from .agents import resolve_device

    resolve_device(cfgs[0]["agent"].get("device", "auto"))  # a one-line error before anything is written
    try:
        results = train_many(cfgs, outs, resume=args.resume, progress="lines" if args.no_progress else True)
    except TrainingDiverged as e:
        print(f"eqtrade train: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        if not any((o / "checkpoint.pt").exists() for o in outs):  # stopped while it was being built
            print("eqtrade train: interrupted before training began; no checkpoint was written, so there is nothing "
                  "to resume: give the same command again to start", file=sys.stderr)
            return 130
        if out is not None or len(outs) == 1:
            how = f"continue with --resume --out {out if out is not None else outs[0]}"
        else:  # a stack without --out: each run in its own default directory, resumed one at a time
            how = ("continue each run with --resume --out " + ", ".join(map(str, outs))
                   + " (one at a time; a stack trained with --out DIR resumes as one: --resume --out DIR)")
        print(f"eqtrade train: interrupted; {how}", file=sys.stderr)
        return 130
    args.trained = True  # an interrupt from here on (main's handler) comes after training
    for agent, run_dir in results:
        print(_trained_line(agent, run_dir, seed=len(results) > 1))
    return 0


def _train_cfg(args, seed):
    """The run config of the command line for one seed (None: the config's)."""
    from .run import resolve_config

    return resolve_config(args.config, agent=args.agent, algo=args.algo, env=args.env, steps=args.steps,
                          seed=seed, data=args.data, break_strength=args.break_strength,
                          data_dir=args.data_dir, assets=args.assets, context=args.context,
                          device=args.device, encoder=args.encoder, threads=args.threads,
                          scale=args.scale, horizons=args.horizons)


def _check_new_run_dir(out, stack: bool = False) -> None:
    """A new run may go into `out`: empty or absent, or a run killed before its first checkpoint.
    stack: `out` is the folder of a --seeds stack (its runs in s<SEED>/): no run of its own."""
    if stack:
        if output_kind(out) not in (None, "run", "other"):  # ("other": also a stack folder's s<SEED>/ alone)
            check_output_dir(out, "run")  # a backtest's, a comparison's...: named as such
        if (out / "config.toml").exists():
            raise ValueError(f"--out {out} holds a run; --seeds writes one run per seed into a folder of its own "
                             "(DIR/s<SEED>): give another --out")
        if out.exists() and any(p.name != LOCK_NAME and not (p.is_dir() and is_seed_dir(p.name))
                                for p in out.iterdir()):
            check_output_dir(out, "run")
        return
    if (out / "checkpoint.pt").exists():
        raise ValueError(f"--out {out} already holds a run; use --resume to continue it or another --out")
    if out.exists() and not (output_kind(out) == "run" and set(p.name for p in out.iterdir()) <= {
            "config.toml", "metrics.csv", "learning_curve.png", LOCK_NAME}):
        check_output_dir(out, "run")


def _is_stack_dir(out) -> bool:
    """A folder written by `train --seeds --out DIR`: no run of its own, runs in s<SEED>/."""
    return not (out / "config.toml").exists() and bool(seed_runs(out))


def _stack_dirs(out, seeds) -> list:
    """The run directories of a --seeds stack in `out` (those of `seeds`, or every s<SEED>/)."""
    found = seed_runs(out)
    if seeds is not None:
        if (out / "config.toml").exists():
            raise ValueError(f"--out {out} is a run of its own, not the folder of a --seeds stack: resume it without "
                             f"--seeds (--resume --out {out})")
        missing = [s for s in seeds if not (out / f"s{s}" / "config.toml").exists()]
        if missing:
            held = ",".join(p.name[1:] for p in found)
            raise FileNotFoundError(f"nothing to resume for seed{'s' * (len(missing) > 1)} "
                                    f"{','.join(map(str, missing))}: {out} holds "
                                    + (f"the runs of seeds {held} (s<SEED>/)" if found else "no s<SEED>/ run directories"))
        return [out / f"s{s}" for s in seeds]
    if not found:
        raise FileNotFoundError(f"nothing to resume: {out} holds no s<SEED>/ run directories")
    return found


def _resume_check(args, out):
    """The config of a run to resume from `out`, checked (what a resume may and may not change)."""
    held = output_kind(out)
    if held not in (None, "run"):
        raise ValueError(f"nothing to resume: --out {out} holds {describe(out, held)}, not a training run; give --out the run "
                         "directory to continue (the one with config.toml and checkpoint.pt)")
    given = [flag for flag, dest in args.config_flags if getattr(args, dest) is not None]
    if not (out / "config.toml").exists():
        raise FileNotFoundError(f"nothing to resume: {out}/config.toml does not exist" + (
            f"; --resume continues a run as configured in its config.toml, so {', '.join(given)} cannot change "
            "it: to start a new run, leave out --resume" if given else ""))
    if given:
        raise ValueError(f"--resume continues {out} as configured in its config.toml; {', '.join(given)} cannot "
                         "change it (only --steps can: train longer)")
    cfg = _resume_cfg(out, args.steps)
    if args.device is not None:
        cfg["agent"]["device"] = args.device
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
        cfg["run"]["threads"] = args.threads
    return cfg


def _trained_line(agent, out, seed: bool = False) -> str:
    """What `train` prints for a finished run: its steps and directory (its seed, in a stack),
    its last and best evaluation."""
    last = [m for m in agent.metrics if "eval_return" in m]
    msg = f"trained {agent.algo} {agent.config.family}{f' (seed {agent.config.seed})' if seed else ''} for {agent.step} steps -> {out}"
    if last:
        err = last[-1].get("equivariance_error")
        serr = last[-1].get("scale_error")
        msg += (f"; last eval return {last[-1]['eval_return']:.4g}" + (f", equivariance error {err:.2e}" if err is not None else "")
                + (f", scale deviation {serr:.2e}" if serr is not None else ""))
        best = max(last, key=lambda m: m["eval_return"])
        if "eval_sharpe" in best:
            train = best.get("train_sharpe")
            msg += (f"\nbest validation checkpoint (best.pt): step {best['step']}, valid Sharpe {best['eval_sharpe']:.2f}, "
                    + (f"train Sharpe {train:.2f}, " if train is not None else "")
                    + f"valid turnover {best['eval_turnover']:.3f}/day")
    return msg


def _resume_cfg(out, steps):
    from .strategies import load_toml

    if not (out / "config.toml").exists():
        raise FileNotFoundError(f"nothing to resume: {out}/config.toml does not exist")
    cfg = load_toml(out / "config.toml")
    if steps:
        if (out / "checkpoint.pt").exists():
            from .agents.checkpoint import CheckpointError, read
            from .run import resume_error

            try:
                done = read(out / "checkpoint.pt")["step"]
            except CheckpointError as e:
                raise CheckpointError(resume_error(out, e)) from None
            if steps < done:
                raise ValueError(f"--steps {steps} is below the {done} steps {out} has done; give a larger total")
        cfg["run"]["steps"] = steps
    return cfg


def _rf_arg(text, data_dir=None):
    """--rf: an annual rate (a number) or the name of a cash-like price series."""
    from .backtest.report import parse_rf

    return parse_rf(text, data_dir)


def _split_arg(text: str):
    from .data.market import DEFAULT_SPLITS, parse_split, split_range

    split = parse_split(text)
    try:
        split_range(split)
    except ValueError as e:
        detail = "" if "(start, end) pair" in str(e) else f" ({e})"  # the Python API's wording, not the CLI's
        raise ValueError(f"--split {text!r}: use {', '.join(DEFAULT_SPLITS)} or START:END, e.g. "
                         f"2019-01-01:2020-12-31{detail}") from None
    return split


def _prices_arg(data, source: str, data_dir):
    """Prices for --data: one dataset name, or tickers (from `source`)."""
    from .data import bundled_names, load_prices
    from .data.store import DataStore

    if not data:
        return load_prices(data_dir=data_dir)
    if len(data) == 1 and (data[0] in bundled_names() or data[0] in DataStore(data_dir).read_manifest()["datasets"]):
        return load_prices(source=data[0], data_dir=data_dir)
    tickers = [t.upper() for t in data]
    twice = list(dict.fromkeys(t for t in tickers if tickers.count(t) > 1))
    if twice:
        raise ValueError(f"--data {' '.join(data)}: {', '.join(twice)} given more than once; name each ticker once "
                         "(one asset, one column)")
    return load_prices(tickers, source=source, data_dir=data_dir)


def _table(rows: list[dict], cols: list[str]) -> str:
    df = pd.DataFrame(rows, columns=cols)
    return df.to_string(index=False) if len(df) else "(none)"


def cmd_fetch(args) -> int:
    from .data import fetch

    from .data.yahoo import NOT_TRIED, check_date, read_tickers_file

    # every flag is checked before the tickers file is read and anything is downloaded
    for flag, rng in FETCH_RANGES.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            rng.check(flag, value)
    start, end = check_date("start", args.start), check_date("end", args.end)
    if start is not None and end is not None and start > end:
        raise ValueError(f"--start {args.start} is after --end {args.end}; give --start <= --end")
    tickers = list(args.tickers) + (read_tickers_file(args.tickers_file) if args.tickers_file else [])
    if not tickers:
        raise ValueError("fetch needs --tickers SYMBOL ... or --tickers-file FILE")
    batch = args.batch_size or (50 if len(tickers) > 10 else 1)
    results = fetch(tickers, start=args.start, end=args.end, data_dir=args.data_dir, refresh=args.refresh,
                    retries=args.retries, progress=not args.no_progress, batch_size=batch)
    failed = [r for r in results if r.failed]
    if len(results) >= 3 and len(failed) == len(results) and all(r.cause == "no-network" for r in failed):
        tried = sum("not tried" not in r.message for r in failed)
        print(f"no network: {len(failed)} of {len(results)} tickers failed: {NOT_TRIED} ({tried} tried, the other "
              f"{len(failed) - tried} not); nothing written. Check the connection and run the same fetch again",
              file=sys.stderr)
        return 1
    print(_table([r.__dict__ for r in results], ["ticker", "status", "rows", "rows_added", "first", "last", "cause"]))
    # one line per failure; the same failure of many tickers in one line with their count
    groups: dict[tuple[str, str], list[str]] = {}
    for r in failed:
        text = r.message[len(r.ticker) + 2:] if r.message.startswith(f"{r.ticker}: ") else r.message
        groups.setdefault((r.cause, text), []).append(r.ticker)
    for (cause, text), names in groups.items():
        if len(names) < 3:
            for t in names:
                print(f"FAILED {t}: {text}", file=sys.stderr)
        else:
            shown = " ".join(names[:5]) + (f" ... (+{len(names) - 5})" if len(names) > 5 else "")
            print(f"FAILED {len(names)} tickers ({shown}): {text}", file=sys.stderr)
    return 1 if failed else 0


#: the numeric flags of `eqtrade fetch` (retries double the wait each time: 2 s, 4 s, ... 1024 s)
FETCH_RANGES = {
    "--retries": Range(0, 10, note="retries when rate limited, each waiting twice as long"),
    "--batch-size": Range(1, 1000, note="tickers per threaded download"),
}


def cmd_data(args) -> int:
    from . import data

    if args.data_command == "list":
        rows = data.list_datasets(args.data_dir)
        for r in rows:
            t = r["tickers"]
            r["tickers"] = " ".join(t) if len(t) <= 6 else f"{' '.join(t[:5])} ... (+{len(t) - 5})"
        print(f"data dir: {data.resolve_data_dir(args.data_dir)}")
        print(_table(rows, ["name", "kind", "first", "last", "rows", "status", "tickers"]))
        bad = [r for r in rows if r["status"] != "ok"]
        if bad:
            print(f"{len(bad)} dataset(s) not usable ({', '.join(r['name'] + ': ' + r['status'] for r in bad[:5])}"
                  f"{', ...' if len(bad) > 5 else ''}): `eqtrade data show NAME` says why and how to fix it",
                  file=sys.stderr)
        return 0
    if args.data_command == "show":
        where, prices, rep = data.show(args.name, args.data_dir)
        print(f"{where}: {prices.shape[1]} ticker(s), {len(prices)} rows, "
              f"{prices.index[0]:%Y-%m-%d} .. {prices.index[-1]:%Y-%m-%d}")
        with pd.option_context("display.width", 160, "display.max_rows", 200):
            print(data.describe(prices).to_string(float_format=lambda x: f"{x:.4g}"))
        print(rep)
        if args.name in data.bundled_names():
            print("note: bundled data has survivorship bias (constituents picked with hindsight) and ends in 2022.")
        return 0
    if args.data_command == "import":
        entry, rep = data.import_prices(args.path, args.name, data_dir=args.data_dir, force=args.force,
                                        ticker=args.ticker, price_column=args.price_column,
                                        allow_jumps=args.allow_jumps, date_format=args.date_format)
        print(f"imported {args.path} as dataset {args.name!r} ({entry['layout']} layout): "
              f"{len(entry['tickers'])} ticker(s), {entry['rows']} rows, {entry['first']} .. {entry['last']}")
        print(rep)
        return 0
    if args.data_command == "planted":
        import tempfile
        from pathlib import Path

        from .backtest.planted import rule_sharpe
        from .data.synthetic import planted_market

        prices = planted_market(args.assets, seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{args.name}.csv"
            prices.to_csv(path, index_label="date")
            entry, _ = data.import_prices(path, args.name, data_dir=args.data_dir, force=args.force)
        print(f"stored the planted market as dataset {args.name!r}: {len(entry['tickers'])} assets, "
              f"{entry['rows']} rows, {entry['first']} .. {entry['last']}")
        for split in ("valid", "test"):
            r = rule_sharpe(prices, split)
            print(f"known rule (sign of the trailing 32-day mean return), {split} split: Sharpe {r['sharpe']:.2f}, "
                  f"turnover {r['turnover']:.3f}/day")
        return 0
    raise AssertionError(args.data_command)


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _check_scene(args) -> None:
    if args.scene != "textured" and not is_pixels(args.env or ""):
        raise ValueError(f"--scene applies to pixel tasks (--env dmc-pixels/...), not {args.env or 'returns'}")


def cmd_symmetry_pixels(args) -> int:
    from .envs.dmc import MAX_TILT_DEG
    from .envs.dmc_pixels import image_symmetry_check, make_pixels

    rows = []
    for b in _floats(args.breaks, "--break"):
        env = make_pixels(args.env, break_strength=b, scene=args.scene).unwrapped
        r = image_symmetry_check(env, n_states=args.states, seed=args.seed)
        rows.append({"break": b, "tilt °": MAX_TILT_DEG * b, "ε_img (mean rel. L1)": r["eps_img"],
                     "ε_img max": r["eps_img_max"], "pixels off (> 8/255)": r["pixels_off"], "states": r["states"]})
    what = ("the horizontal mirror" if env.symmetry.order == 2 else
            f"{env.symmetry.name} (quarter turns{' and flips' if env.symmetry.group_kind == 'D' else ''})")
    print(f"declared image symmetry of {args.env}: {what} of {env.size}x{env.size} frames from camera "
          f"{env.camera} (MUJOCO_GL={env.backend}, scene {env.scene}), actions as {env.symmetry.name}")
    print("checked on the renderer: ‖render(g·s) − g·render(s)‖₁ / ‖render(s) − mean‖₁ over states from a "
          "random policy, every g ≠ e (0: an exactly symmetric scene)")
    with pd.option_context("display.width", 160):
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print("the dynamics' own gap: eqtrade symmetry --env " + args.env.replace(PIXELS_PREFIX, DMC_PREFIX))
    return 0


def cmd_symmetry_env(args) -> int:
    if is_pixels(args.env):
        return cmd_symmetry_pixels(args)
    from .envs.dmc import MAX_TILT_DEG, make, symmetry_check

    rows = []
    for b in _floats(args.breaks, "--break"):
        env = make(args.env, break_strength=b)
        r = symmetry_check(env, n_states=args.states, seed=args.seed)
        rows.append({"break": b, "tilt °": MAX_TILT_DEG * b, "ε_P (mean rel.)": r["eps_P"], "ε_P max |Δ|": r["eps_P_max"],
                     "ε_R (mean |Δr|)": r["eps_R"], "ε_R max": r["eps_R_max"], "pairs (s, g)": r["pairs"]})
    print(f"declared symmetry of {args.env}: {env.symmetry}")
    print(f"checked on the simulator: {args.states} states from a random policy, every g != e, one env step "
          f"({env.action_repeat} control steps)")
    with pd.option_context("display.width", 160):
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    exact = rows[0]["break"] == 0 and rows[0]["ε_P max |Δ|"] < 1e-6 and rows[0]["ε_R max"] < 1e-6
    if rows[0]["break"] == 0:
        print("break 0: " + ("exact to machine precision" if exact else "NOT exact: the declared symmetry is wrong"))
    return 0


def cmd_dmc(args) -> int:
    from pathlib import Path

    from .sweep.dmc import PIXELS, PIXELS_QUICK, QUICK, SuiteConfig, run_suite

    if args.pixels:
        kw = dict(PIXELS_QUICK if args.quick else PIXELS, pixels=True)
    else:
        kw = dict(QUICK) if args.quick else {}
    for name in ("encoder", "scene", "device"):
        if getattr(args, name):
            kw[name] = getattr(args, name)
    if args.domains:
        kw["domains"] = [d.strip() for d in args.domains.split(",") if d.strip()]
    if args.agents:
        kw["agents"] = [a.strip() for a in args.agents.split(",") if a.strip()]
    if args.breaks:
        kw["breaks"] = _floats(args.breaks, "--break")
    if args.obs_noise:
        kw["obs_noise"] = _floats(args.obs_noise, "--obs-noise")
        for s in kw["obs_noise"]:
            OBS_NOISE.check("--obs-noise", s)
    for name in ("steps", "seeds", "eval_episodes", "jobs"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    sc = SuiteConfig(**kw)
    out = Path(args.out or ("runs/dmc" + ("-pixels" if args.pixels else "") + ("-quick" if args.quick else "")))
    import os

    try:
        _, table = run_suite(sc, out, progress=not args.no_progress,
                             address=args.address or os.environ.get("RAY_ADDRESS") or None)
    except KeyboardInterrupt:
        print(f"eqtrade dmc: interrupted; give the same command again to resume ({out})", file=sys.stderr)
        return 130
    print(table.to_markdown(index=False, floatfmt=".2f"))
    print(f"\nresults: {out}/summary.md, {out}/results.csv; learning curves: "
          + ", ".join(str(p) for p in sorted(out.glob("curves-*.png"))))
    return 0


def cmd_sweep(args) -> int:
    import os
    from pathlib import Path

    from .sweep import load_spec, run_sweep

    spec = load_spec(args.spec)
    out = Path(args.out) if args.out else Path("runs/sweeps") / spec.name
    if not args.out:  # the default --out: locked as main locks a given one, before its checks
        args.out = str(out)
        with locked(out, "eqtrade sweep"):
            return cmd_sweep(args)
    if args.cpus is not None and args.cpus < 1:
        raise ValueError(f"--cpus must be >= 1, got {args.cpus}")
    if args.pack is not None:
        from .util import MAX_SEEDS, Range

        Range(1, MAX_SEEDS, note="runs per stacked trial, as many as --seeds may name").check("--pack", args.pack)
    if args.resume and args.force:
        raise ValueError("--resume continues the sweep in --out; --force starts it afresh: give one")
    if not args.resume:
        kind = output_kind(out)
        if kind == "sweep" and args.force:
            from .lock import clear_directory

            from .backtest.ledger import LEDGER

            clear_directory(out, keep=(LEDGER,))  # all but the lock this command holds and the ledger
            if (out / LEDGER).exists():
                from .backtest.ledger import record_restart

                record_restart(out, what="eqtrade sweep --force")
        elif kind == "sweep":
            raise ValueError(f"--out {out} already holds a sweep; --resume continues it, --force starts afresh")
        else:
            check_output_dir(out, "sweep")
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    try:
        rows, table = run_sweep(spec, out, address=address, cpus=args.cpus, gpus_per_trial=args.gpus_per_trial,
                                resume=args.resume, progress=not args.no_progress, data_dir=args.data_dir,
                                pack=args.pack, force_test_read=args.force_test_read)
    except KeyboardInterrupt:
        print(f"eqtrade sweep: interrupted; continue with eqtrade sweep {args.spec} --out {out} --resume ({RESUMED})",
              file=sys.stderr)
        return 130
    failed = [r for r in rows if r["status"] == "error"]
    unfinished = [r for r in rows if r["status"] == "unfinished"]
    stopped = [r for r in rows if r["status"] == "stopped"]
    print(f"sweep {spec.name}: {len(rows) - len(failed) - len(unfinished) - len(stopped)} of {len(rows)} trial(s) "
          f"finished" + (f", {len(stopped)} stopped early by ASHA" if stopped else "") + f" -> {out}/runs/")
    if spec.search is not None:  # a search: the trials by their last reported metric (valid split)
        tab = pd.DataFrame([{"trial": r["trial"], "status": r["status"], "step": r["step"], spec.metric: r[spec.metric],
                             **r["params"]} for r in rows])
        tab = tab.sort_values(spec.metric, ascending=spec.mode == "min", na_position="last")
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(tab.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        print("run the best values as a plain grid of seeds for a comparison (see README)")
    for r in failed:
        print(f"FAILED trial {r['trial']}: {_last_error_line(r['error'])} (log: {out}/tune/)", file=sys.stderr)
    if table is not None and spec.walkforward:
        from .backtest.stats import bootstrap_note

        with pd.option_context("display.width", 220, "display.max_columns", 30):
            print(table.to_string(float_format=lambda x: f"{x:.3f}"))
        print(f"{bootstrap_note(table.attrs)}\nwrote {out}/report/ (summary.md, paired.csv, per_fold.csv, "
              f"returns.parquet, rolling_sharpe.png); folds in {out}/folds.json")
    elif table is not None:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        print(f"\nwrote {out}/report/ (summary.md, runs.csv, equity.png), split {spec.report['split']}")
    if unfinished:
        print(f"eqtrade sweep: interrupted with {len(unfinished)} trial(s) unfinished; continue with eqtrade sweep "
              f"{args.spec} --out {out} --resume ({RESUMED})", file=sys.stderr)
        return 130
    return 1 if failed else 0


#: what `eqtrade sweep --resume` does with an interrupted sweep's trials
RESUMED = ("finished trials are not run again; each run of the others continues from its last checkpoint, and one "
           "without a checkpoint yet starts again")


def _last_error_line(text: str) -> str:
    """The exception line of a trial's error (Ray wraps it in its own traceback)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errs = [ln for ln in lines if "Error:" in ln or "Exception:" in ln]
    return (errs[-1] if errs else lines[-1]) if lines else "error"


#: the numeric arguments of `eqtrade symmetry` and their ranges (the bounds on --boot and --states
#: keep a typo from running for days; the defaults are 50 and 64)
SYMMETRY_RANGES = {
    "window": ("--window", Range(1, 100_000, note="days per return window")),
    "boot": ("--boot", Range(1, 100_000, note="bootstrap and null resamples")),
    "states": ("--states", Range(1, 100_000, note="states sampled per break strength")),
    "seed": ("--seed", Range(0, 2**32 - 1)),
}


def _check_symmetry_args(args) -> list[float] | None:
    """Every numeric argument of `eqtrade symmetry` in range, before any data is read; the --break
    strengths (with --env)."""
    for dest, (flag, rng) in SYMMETRY_RANGES.items():
        rng.check(flag, getattr(args, dest))
    if not args.env:
        return None
    breaks = _floats(args.breaks, "--break")
    if not breaks:
        raise ValueError(f"--break {args.breaks!r}: give at least one break strength in [0, 1], e.g. 0,0.5")
    for b in breaks:
        Range(0, 1, note="0: the exact symmetry, 1: the strongest break").check("--break", b)
    return breaks


def cmd_symmetry(args) -> int:
    _check_scene(args)
    _check_symmetry_args(args)
    if args.env:
        return cmd_symmetry_env(args)
    from .data.market import split_range
    from .symmetry.gap import reflection_gap

    prices = _prices_arg(args.data, args.source, args.data_dir)
    start, end = split_range(_split_arg(args.split))
    start, end = max(start, prices.index[0]), min(end, prices.index[-1])  # an open end: the data's
    hist = prices.loc[:end]
    hist = hist.iloc[max(0, hist.index.searchsorted(start) - 1):]  # one day before: the first return
    rows = reflection_gap(hist, window=args.window, n_boot=args.boot, seed=args.seed, progress=True)
    print(f"reflection gap of daily returns, {start:%Y-%m-%d}..{end:%Y-%m-%d}, {args.window}-day windows")
    table = pd.DataFrame([{k: v for k, v in r.__dict__.items()} for r in rows])
    with pd.option_context("display.width", 160):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print()
    for r in rows:
        print(r.reading)
    if hist.shape[1] > 1:
        from .envs.reflection import reflection_cost_gap

        split = _split_arg(args.split)
        gaps = [reflection_cost_gap(prices, split, window=args.window, cost_model=cm, seed=args.seed)
                for cm in ("target", "drift")]
        print(f"\nreflection of the portfolio env's accounting (10 bps) on mirrored data: reward gap "
              f"|r(s, a) − r(g·s, g·a)| for {gaps[0]['steps']} random long/short targets")
        with pd.option_context("display.width", 160):
            print(pd.DataFrame(gaps).to_string(index=False, float_format=lambda x: f"{x:.3g}"))
        print(f"the 'drift' model (the default: what a broker charges) trades from the drifted weights, which do not "
              f"negate: the reflection holds to {gaps[1]['mean |Δr| / mean |r|']:.2%} of the mean |reward| "
              f"({gaps[1]['mean |Δr|'] / max(gaps[1]['mean cost per step'], 1e-300):.1%} of the mean cost); "
              "'target' keeps it exact")
    from .symmetry.gap import scale_gap

    srows = scale_gap(hist, window=args.window, n_boot=args.boot, seed=args.seed)
    print(f"\nreturn-scale gap of the normalised observations (returns / trailing 63-day volatility), "
          f"{args.window}-day windows: calm vs volatile half of the days")
    with pd.option_context("display.width", 160):
        print(pd.DataFrame([r.__dict__ for r in srows]).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print()
    for r in srows:
        print(r.reading)
    if hist.shape[1] > 1:
        from .symmetry.gap import exchangeability_gap

        erows = exchangeability_gap(hist, window=args.window, n_boot=args.boot, seed=args.seed)
        print(f"\nexchangeability of the assets (permutation symmetry): each asset's normalised {args.window}-day "
              "windows against all the other assets'")
        with pd.option_context("display.width", 160):
            print(pd.DataFrame([r.__dict__ for r in erows]).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
        print()
        for r in erows:
            print(r.reading)
    return 0


#: the commands whose --out directory is locked while they run (eqtrade.lock; `dmc` locks its
#: --out in the suite, which has no checks before it)
LOCKED_COMMANDS = ("train", "sweep", "backtest", "compare")


def _empty_argument(parser: argparse.ArgumentParser, args) -> str | None:
    """The first option (or positional) given as an empty string (or with an empty item), as the
    user wrote it; None when there is none."""
    flags: dict[str, str] = {}

    def collect(p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    collect(sub)
            elif action.option_strings:
                flags.setdefault(action.dest, max(action.option_strings, key=len))
            else:
                flags.setdefault(action.dest, action.metavar if isinstance(action.metavar, str) else action.dest)

    collect(parser)
    for dest, value in vars(args).items():
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in items):
            return flags.get(dest, dest)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `eqtrade` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    empty = _empty_argument(parser, args)
    if empty:  # `--data ""` would silently mean the default, `--out ""` the current directory
        print(f"eqtrade {args.command}: error: {empty} is empty: give a value or leave the option out", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from .data import DataError

    handlers = {"fetch": cmd_fetch, "data": cmd_data, "symmetry": cmd_symmetry, "train": cmd_train,
                "dmc": cmd_dmc, "sweep": cmd_sweep,
                "backtest": cmd_backtest, "compare": cmd_compare}
    try:
        if getattr(args, "out", None) and args.command in LOCKED_COMMANDS:
            from pathlib import Path

            out = Path(args.out)
            blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
            if blocked is not None:
                raise ValueError(f"--out {out}: {blocked} is a file, not a directory; give --out a directory")
            # one command at a time writes an --out: the second one stops here, before its checks
            with locked(args.out, f"eqtrade {args.command}"):
                return handlers[args.command](args)
        return handlers[args.command](args)
    except (DataError, OSError, ValueError) as exc:
        print(f"eqtrade {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside the commands' own handlers (train's: while it trains)
        if getattr(args, "trained", False):
            train = "training had finished; the run directories are complete"
        elif getattr(args, "resume", False):
            train = "before training resumed; nothing changed: give the same command again to continue"
        else:
            train = "before training began; nothing was written: give the same command again to start"
        why = {"fetch": "the cache is unchanged for tickers not yet written", "train": train}
        print(f"eqtrade {args.command}: interrupted" + (f"; {why[args.command]}" if args.command in why else ""),
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
