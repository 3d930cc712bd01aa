"""Sweep specs: a strategy config plus a [sweep] table, expanded into trials.

    # studies/portfolio-families.toml
    [sweep]
    name = "portfolio-families"
    config = "sac-plain"                     # a strategy config (path or shipped name); optional
    metric = "eval_return"                   # reported to Ray Tune at every evaluation (valid split)
    mode = "max"
    [sweep.grid]                             # every combination is a trial (an ordinary run directory)
    "agent.family" = ["plain", "exact", "relaxed"]
    "agent.seed" = [0, 1, 2, 3, 4]
    [sweep.report]                           # the final table, computed once after the sweep
    split = "test"
    obs_noise = [0.0, 0.05]

    [run]                                    # any strategy table overrides the config's
    steps = 30000

Keys of the grid (and of a search) are dotted config fields: "run.steps", "env.prices",
"agent.lr", ... An optional [sweep.search] samples ranges with Optuna's TPE and stops poor trials
early with ASHA, for tuning on the valid split:

    [sweep.search]
    samples = 20                             # trials drawn
    grace = 4000                             # ASHA: steps every trial gets before it can be stopped
    "agent.lr" = { loguniform = [1e-4, 1e-2] }
    "agent.reward_scale" = { choice = [10.0, 100.0] }

A grid of seeds in a final comparison is never early-stopped: stopping drops unlucky seeds, and
the mean ± interval over seeds would then describe the lucky ones (a search is for tuning, whose
result is then run as a plain grid).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STRATEGY_TABLES = ("run", "env", "eval_env", "agent")
SWEEP_KEYS = ("name", "config", "metric", "mode", "grid", "search", "report", "max_failures", "walkforward")
REPORT_KEYS = ("split", "obs_noise", "data", "benchmark", "rf", "against", "baselines")
DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint")


@dataclass
class SweepSpec:
    """A parsed sweep spec (see the module docstring)."""

    name: str
    base: dict  # strategy tables: the config's, then this file's
    grid: dict[str, list] = field(default_factory=dict)
    search: dict | None = None  # {"samples": int, "grace": int, "space": {key: (dist, args)}}
    metric: str = "eval_return"
    mode: str = "max"
    report: dict = field(default_factory=lambda: {"split": "test", "obs_noise": [0.0]})
    max_failures: int = 1
    source: str = ""
    walkforward: dict | None = None  # a parsed [sweep.walkforward] table (eqtrade.sweep.walkforward)

    def configurations(self) -> list[tuple[str, dict[str, Any]]]:
        """The grid's combinations: (name, {dotted key: value}) for every one, in order."""
        keys = list(self.grid)
        out = []
        for values in itertools.product(*(self.grid[k] for k in keys)) if keys else [()]:
            over = dict(zip(keys, values))
            out.append((trial_name(over), over))
        return out

    def read_content(self, runs) -> str:
        """What the study's report reads, as a ledger digest (`eqtrade.backtest.ledger`): the
        configurations (base and grid), the folds, the report's settings and the runs compared."""
        from pathlib import Path

        from ..backtest.ledger import digest

        wf = self.walkforward
        if wf and not wf.get("warm_start"):  # (the default, as studies read before the key existed)
            wf = {k: v for k, v in wf.items() if k != "warm_start"}
        return digest({"base": self.base, "grid": self.grid, "walkforward": wf, "report": self.report,
                       "runs": sorted(Path(str(r)).name for r in runs)})

    def folds(self) -> list:
        """The walk-forward folds (eqtrade.sweep.walkforward.Fold), or [] for a plain sweep."""
        from .walkforward import folds

        return folds(self.walkforward) if self.walkforward else []

    def trials(self) -> list[tuple[str, dict[str, Any]]]:
        """The trials: every grid combination, and in a walk-forward study every combination once
        per fold ("NAME,fold=2011", with the fold's train and validation splits), in order."""
        from .walkforward import fold_overrides

        fs = self.folds()
        if not fs:
            return self.configurations()
        return [(f"{name},{f.name}" if name != "trial" else f.name, dict(over, **fold_overrides(f)))
                for name, over in self.configurations() for f in fs]


#: the most trials a grid may make: each is a training run (minutes of a core); more is a typo
MAX_TRIALS = 10_000


def _value_key(x) -> tuple[str, str]:
    """A grid value as a comparable key: equal values of the same type (0 and 0.0 differ) are one trial."""
    import json

    return type(x).__name__, json.dumps(x, sort_keys=True, default=str)


def trial_name(overrides: dict[str, Any]) -> str:
    """A directory name for a trial: "family=plain,seed=0" (the last part of each key)."""
    if not overrides:
        return "trial"
    parts = []
    for k, v in overrides.items():
        if isinstance(v, dict):  # an inline table, e.g. an encoder: its values
            text = "-".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v.values())
        elif isinstance(v, list):
            text = "-".join(map(str, v))
        else:
            text = f"{v:g}" if isinstance(v, float) else str(v)
        parts.append(f"{k.split('.')[-1]}={text}".replace("/", "-").replace(" ", ""))
    return ",".join(parts)


def set_dotted(cfg: dict, key: str, value: Any) -> None:
    """cfg["agent"]["lr"] = value for key "agent.lr" (tables created as needed)."""
    table, _, name = key.partition(".")
    if table not in STRATEGY_TABLES or not name:
        raise ValueError(f"sweep key {key!r}: use TABLE.FIELD with TABLE one of {', '.join(STRATEGY_TABLES)} "
                         "(e.g. agent.seed, env.prices, run.steps)")
    node = cfg.setdefault(table, {})
    parts = name.split(".")
    for p in parts[:-1]:  # e.g. agent.encoder.assets
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"sweep key {key!r}: {p} is not a table")
    node[parts[-1]] = copy.deepcopy(value)


def _check_report_baselines(path, report: dict, walkforward: bool) -> None:
    """[sweep.report] against / baselines name known baselines, the reference one that is traded."""
    from ..backtest.report import DEFAULT_AGAINST, traded_reference

    traded = None
    if walkforward:
        from .walkforward import REPORT_BASELINES

        if "baselines" in report:
            raise ValueError(f"{path}: [sweep.report] baselines: a walk-forward report trades every baseline "
                             f"({', '.join(REPORT_BASELINES)}); leave it out")
        traded = REPORT_BASELINES
    try:
        traded_reference(str(report.get("against", DEFAULT_AGAINST)), report.get("baselines"), traded)
    except ValueError as e:
        raise ValueError(f"{path}: [sweep.report] {e}") from None


def load_spec(path) -> SweepSpec:
    """Read and check a sweep spec; every error names the offending key and value."""
    from ..run import merge
    from ..strategies import load_toml

    path = Path(path)
    raw = load_toml(path)
    sw = raw.get("sweep")
    if not isinstance(sw, dict):
        raise ValueError(f"{path}: no [sweep] table; a sweep spec is a strategy config plus a [sweep] table "
                         "(see `eqtrade sweep --help`)")
    unknown = sorted(set(raw) - set(STRATEGY_TABLES) - {"sweep"})
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {', '.join(f'[{t}]' for t in unknown)}; a sweep spec has "
                         f"[sweep] and the strategy tables {', '.join(f'[{t}]' for t in STRATEGY_TABLES)}")
    bad = sorted(set(sw) - set(SWEEP_KEYS))
    if bad:
        raise ValueError(f"{path}: unknown [sweep] option(s) {bad}; known: {', '.join(SWEEP_KEYS)}")
    base: dict = {}
    if sw.get("config"):
        base = load_toml(sw["config"])
        if "sweep" in base or "baseline" in base:
            raise ValueError(f"{path}: config = {sw['config']!r} is not a strategy config of an agent")
    base = merge(base, {k: v for k, v in raw.items() if k in STRATEGY_TABLES})
    grid = sw.get("grid", {})
    if not isinstance(grid, dict):
        raise ValueError(f"{path}: [sweep.grid] must be a table of KEY = [values], got {grid!r}")
    if "grid" in sw and not grid and "search" not in sw:
        raise ValueError(f"{path}: [sweep.grid] is empty: give at least one KEY = [values] (e.g. \"agent.seed\" = "
                         "[0, 1, 2]), or a [sweep.search]; one run is `eqtrade train`")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ValueError(f"{path}: [sweep.grid] {k!r} must be a non-empty list of values, got {v!r}")
        set_dotted({}, k, None)  # checks the key
    n_trials = math.prod(len(v) for v in grid.values())  # counted, not expanded
    if n_trials > MAX_TRIALS:
        sizes = " x ".join(str(len(v)) for v in grid.values())
        raise ValueError(f"{path}: [sweep.grid] makes {n_trials:,} trials ({sizes}), more than {MAX_TRIALS:,}: "
                         "each trial is a training run; grid fewer values, or sample ranges with a [sweep.search]")
    for k, v in grid.items():
        seen, dup = set(), []
        for x in v:
            key = _value_key(x)
            if key in seen:
                dup.append(repr(x))
            seen.add(key)
        if dup:
            raise ValueError(f"{path}: [sweep.grid] {k!r} gives {', '.join(dict.fromkeys(dup))} more than once; "
                             f"each value is one trial: give it once (e.g. \"agent.seed\" = [0, 1, 2])")
    search = None
    if "search" in sw:
        search = _parse_search(path, sw["search"])
        multi = [k for k, v in grid.items() if len(v) > 1]
        if multi:
            raise ValueError(f"{path}: a search samples its trials; [sweep.grid] {multi} has several values "
                             "(fix them, or put them in [sweep.search] as {{ choice = [...] }})")
    mode = sw.get("mode", "max")
    if mode not in ("max", "min"):
        raise ValueError(f"{path}: [sweep] mode must be 'max' or 'min', got {mode!r}")
    report = dict({"split": "test", "obs_noise": [0.0]}, **sw.get("report", {}))
    bad = sorted(set(report) - set(REPORT_KEYS))
    if bad:
        raise ValueError(f"{path}: unknown [sweep.report] option(s) {bad}; known: {', '.join(REPORT_KEYS)}")
    if not isinstance(report["obs_noise"], list):
        report["obs_noise"] = [report["obs_noise"]]
    from ..util import OBS_NOISE

    if not report["obs_noise"]:
        raise ValueError(f"{path}: [sweep.report] obs_noise = [] gives no noise level for the table: give at least one "
                         "(e.g. [0.0, 0.05]), or leave the key out for 0")
    for s in report["obs_noise"]:  # the table comes after every trial: refuse a bad level before them
        OBS_NOISE.check(f"{path}: [sweep.report] obs_noise", s)
    _check_report_baselines(path, report, "walkforward" in sw)
    walkforward = None
    if "walkforward" in sw:
        if "split" in sw.get("report", {}):
            raise ValueError(f"{path}: [sweep.report] split with [sweep.walkforward]: a walk-forward study trades each "
                             "fold's own test year; leave split out")
        from .walkforward import FOLD_KEYS, parse_walkforward

        walkforward = parse_walkforward(path, sw["walkforward"])
        clash = [k for k in grid if k in FOLD_KEYS]
        if clash:
            raise ValueError(f"{path}: [sweep.grid] {clash} is set by [sweep.walkforward] in every fold (the train "
                             "and validation splits of each test year): leave it out of the grid")
        if "search" in sw:
            raise ValueError(f"{path}: [sweep.walkforward] with a [sweep.search]: tune on the valid split first (a "
                             "search), then run its result as a walk-forward grid")
        n_trials *= len(range(walkforward["first_test_year"], walkforward["last_test_year"] + 1))
        if n_trials > MAX_TRIALS:
            raise ValueError(f"{path}: the walk-forward study makes {n_trials:,} trials (grid x folds), more than "
                             f"{MAX_TRIALS:,}")
    max_failures = sw.get("max_failures", 1)
    if not isinstance(max_failures, int) or max_failures < 0:
        raise ValueError(f"{path}: [sweep] max_failures must be an integer >= 0, got {max_failures!r}")
    name = str(sw.get("name") or path.stem)
    spec = SweepSpec(name, base, grid, search, str(sw.get("metric", "eval_return")), mode, report,
                     max_failures, str(path), walkforward)
    names: dict[str, dict] = {}
    for trial, over in spec.trials():  # distinct values whose names collide would share a run directory
        if trial in names:
            raise ValueError(f"{path}: [sweep.grid] values {names[trial]} and {over} both make the trial name "
                             f"{trial!r} (one run directory); give values that differ in their names")
        names[trial] = over
    return spec


def _parse_search(path, table) -> dict:
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [sweep.search] must be a table")
    samples, grace = table.get("samples", 10), table.get("grace", 0)
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"{path}: [sweep.search] samples must be a positive integer, got {samples!r}")
    if not isinstance(grace, int) or grace < 0:
        raise ValueError(f"{path}: [sweep.search] grace must be an integer >= 0 (steps), got {grace!r}")
    space = {}
    for k, v in table.items():
        if k in ("samples", "grace"):
            continue
        set_dotted({}, k, None)
        if not isinstance(v, dict) or len(v) != 1 or next(iter(v)) not in DISTRIBUTIONS:
            raise ValueError(f"{path}: [sweep.search] {k!r} must be one of "
                             f"{', '.join(f'{{ {d} = [...] }}' for d in DISTRIBUTIONS)}, got {v!r}")
        dist, args = next(iter(v.items()))
        if not isinstance(args, list) or (dist != "choice" and len(args) != 2):
            raise ValueError(f"{path}: [sweep.search] {k!r}: {dist} takes "
                             f"{'a list of values' if dist == 'choice' else '[low, high]'}, got {args!r}")
        space[k] = (dist, args)
    if not space:
        raise ValueError(f"{path}: [sweep.search] has no ranges to search")
    return {"samples": samples, "grace": grace, "space": space}
