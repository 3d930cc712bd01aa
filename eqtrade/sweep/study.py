"""`eqtrade sweep SPEC.toml`: run a sweep spec's trials on Ray Tune, then its table once."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd

from .engine import run_trials, trial_configs
from .spec import SweepSpec

log = logging.getLogger(__name__)


def run_sweep(spec: SweepSpec, out, address: str | None = None, cpus: int | None = None,
              gpus_per_trial: float = 0.0, resume: bool = False, progress: bool = True,
              data_dir=None, pack: int | None = None, force_test_read: bool = False
              ) -> tuple[list[dict], pd.DataFrame | None]:
    """Run every trial (or resume an interrupted sweep), then `compare` the finished runs on the
    report split: (trial rows, summary table or None when no trial finished). OUT is locked while
    the sweep runs (eqtrade.lock; each trial locks its own run directory). pack: grid trials that
    can stack train this many at a time as one trial (default engine.DEFAULT_PACK; a resumed
    sweep keeps the packing it started with). Every trial and the report's read of the test data
    go in OUT/ledger.jsonl; a second read of the same test block is refused unless
    `force_test_read` (eqtrade.backtest.ledger)."""
    from ..lock import locked

    with locked(Path(out).resolve(), "eqtrade sweep"):
        return _run_sweep(spec, out, address, cpus, gpus_per_trial, resume, progress, data_dir, pack, force_test_read)


def _walkforward_of(saved: dict) -> dict | None:
    """A saved sweep's walk-forward table with today's defaults for keys added since (warm_start)."""
    from .walkforward import DEFAULTS

    wf = saved.get("walkforward")
    return dict(DEFAULTS, **wf) if wf else wf


def _run_sweep(spec: SweepSpec, out, address, cpus, gpus_per_trial, resume, progress, data_dir, pack, force):
    from .engine import DEFAULT_PACK

    from ..lock import LOCK_NAME, clear_directory
    from ..util import atomic_write_bytes

    out = Path(out).resolve()
    state = out / "sweep.json"
    if resume:
        if not state.exists():
            raise FileNotFoundError(f"nothing to resume: {state} does not exist (start the sweep without --resume)")
        saved = json.loads(state.read_text())
        if (saved["name"] != spec.name or saved["grid"] != json.loads(json.dumps(spec.grid))
                or _walkforward_of(saved) != spec.walkforward):
            raise ValueError(f"{out} holds sweep {saved['name']!r} with another grid; --resume continues the same "
                             "spec (use another --out for a new one)")
        started = int(saved.get("pack", 1))  # sweeps from before packing ran one trial per run
        if pack is not None and pack != started:
            raise ValueError(f"{out} was started with --pack {started}; --resume continues it with the same packing "
                             f"(leave out --pack, or give --pack {started})")
        pack = started
        slots = saved.get("pack_slots")  # the packs it started with (sweeps from before balancing: none)
    else:
        # packs balanced over this machine's CPUs (engine.pack_trials); not on a cluster, whose
        # size is not known here, nor on GPUs, which bound how many trials run at once
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        slots = None if address or gpus_per_trial else int(cpus or usable or 1)
    search = spec.search
    if search is None:
        trials = trial_configs(spec, data_dir)
        from .walkforward import warm_starts

        for name, path in warm_starts(spec, out).items():  # fold k starts from fold k-1's best.pt
            trials[name]["run"]["init_from"] = path
    else:
        from ..run import merge
        from .engine import check_search_space, resolve_trial_config

        base = merge(spec.base, {"env": {"data_dir": str(Path(data_dir).resolve())}} if data_dir else {})
        resolved = resolve_trial_config(base)  # the base config must be valid before anything is sampled
        check_search_space(base, search["space"])  # and so must the ends of every range
        trials = {"__base__": base}
        search = dict(search, max_steps=int(resolved["run"]["steps"]))  # ASHA's horizon: a trial's whole run
    created = not any(p.name != LOCK_NAME for p in out.iterdir())  # (the lock made the folder)
    atomic_write_bytes(state, json.dumps({
        "name": spec.name, "source": spec.source, "grid": spec.grid, "metric": spec.metric, "mode": spec.mode,
        "search": search, "pack": pack if pack is not None else DEFAULT_PACK, "pack_slots": slots,
        "walkforward": spec.walkforward,
        "report": spec.report, "trials": trials}, indent=1, default=str).encode())
    if spec.walkforward:
        from .walkforward import write_folds

        write_folds(out, spec.folds())
    if search is None:
        from ..backtest.ledger import record_trials

        record_trials(out, spec.trials(), base=spec.base)
    try:
        rows = run_trials(trials, out, metric=spec.metric, mode=spec.mode, address=address, cpus=cpus,
                          gpus_per_trial=gpus_per_trial, resume=resume, max_failures=spec.max_failures,
                          search=search, progress=progress, pack=pack if pack is not None else DEFAULT_PACK,
                          pack_slots=slots)
    except Exception:
        if created and not (out / "runs").exists():  # a sweep that never started a trial leaves nothing
            clear_directory(out)  # (and the lock's release removes the folder it made)
        raise
    finished = [r["run"] for r in rows if r["status"] == "finished"]  # status "finished": trial.json says so
    table = None
    # the table is computed once every trial has an outcome: an interrupted sweep has none yet
    if finished and spec.search is None and not any(r["status"] == "unfinished" for r in rows):
        if spec.walkforward:
            if len(finished) < len(rows):
                log.warning("walk-forward report skipped: %d of %d trials did not finish (every fold of every "
                            "configuration is needed to join the out-of-sample paths)", len(rows) - len(finished),
                            len(rows))
            else:
                from .walkforward import walkforward_report

                table = walkforward_report(spec, out, out / "report", data_dir, force=force)
        else:
            table = report(spec, finished, out / "report", data_dir, force=force)
    return rows, table


def report(spec: SweepSpec, runs: list[str], out: Path, data_dir=None, force: bool = False) -> pd.DataFrame:
    """The sweep's table: `eqtrade compare` on its finished runs, on the report split (read once:
    the study's ledger refuses a second read unless `force`)."""
    from ..backtest import compare_runs, ledger
    from ..backtest.report import parse_rf
    from ..data.market import parse_split, split_range
    from ..outdirs import check_output_dir

    rep = spec.report
    split = parse_split(rep["split"]) if isinstance(rep["split"], str) else rep["split"]
    a, b = split_range(split)
    # the read is checked now and recorded once the table is computed (a failed report reads nothing)
    read = ledger.plan_test_read(out.parent, f"{a:%Y-%m-%d}..{b:%Y-%m-%d}", force, what="sweep report",
                                 content=spec.read_content(runs))
    check_output_dir(out, "compare", force=True)
    table = compare_runs(sorted(runs), split, tuple(float(x) for x in rep["obs_noise"]), out,
                         benchmark=rep.get("benchmark"), rf=parse_rf(rep.get("rf", 0.0), data_dir), data_dir=data_dir,
                         data=rep.get("data"), baselines=rep.get("baselines"), against=rep.get("against", "equal-weight"),
                         n_trials=ledger.n_configurations(out.parent) + ledger.PRIOR_CONFIGURATIONS)
    ledger.append(out.parent, read)
    return table
