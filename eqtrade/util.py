"""Small helpers below every package (data, agents, backtest, sweep import them; they import
nothing of eqtrade): atomic file writes (a temporary file in the same folder, fsync, then
rename), the mean ± 95% interval over seeds that every comparison table reports, and the TOML
writer of run and backtest configs."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Create or replace `path` with what `write(tmp_path)` produces, all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Atomically write raw bytes."""
    atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write an object as indented JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def mean_ci(x) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t interval over seeds (NaN for one seed)."""
    import numpy as np
    from scipy import stats

    x = np.asarray(x, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else float("nan")
    return float(x.mean()), float(half)


def dump_toml(cfg: dict) -> str:
    """TOML text of a run config (tables of scalars, lists and inline tables)."""

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items() if x is not None) + " }"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    lines = []
    for table, body in cfg.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {val(v)}" for k, v in body.items() if v is not None]
        lines.append("")
    return "\n".join(lines)


#: the largest number of environment steps a run, a suite or a sweep trial accepts: at the few
#: hundred to few thousand steps per second these networks train at, 10**9 steps is weeks to years
#: of compute; a larger number is a typo, not a plan
MAX_STEPS = 10**9
MAX_STEPS_WHY = ("10**9 environment steps is weeks to years of compute at a few hundred to a few thousand steps/s; "
                 "a larger number is a typo")


def _fmt_bound(x) -> str:
    if isinstance(x, int) and x >= 10**6 and str(x).rstrip("0") == "1":
        return f"10**{len(str(x)) - 1}"
    return f"{x:g}" if isinstance(x, float) else str(x)


class Range:
    """The allowed values of a numeric option: lo..hi (None: unbounded), each end closed unless
    `lo_open` / `hi_open`; `note` says why, in a few words. Values must be finite numbers."""

    def __init__(self, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False, note: str = ""):
        self.lo, self.hi, self.lo_open, self.hi_open, self.note = lo, hi, lo_open, hi_open, note

    def __contains__(self, v) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return (f"in {'(' if self.lo_open else '['}{_fmt_bound(self.lo)}, {_fmt_bound(self.hi)}"
                    f"{')' if self.hi_open else ']'}")
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_fmt_bound(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_fmt_bound(self.hi)}"
        return "a finite number"

    def check(self, name: str, value) -> None:
        """A ValueError naming the option, the value and the range when `value` is out of it."""
        if value not in self:  # a flag reads "--window 0", a config key "gamma = 5.0"
            raise ValueError(f"{name}{' ' if name.startswith('-') else ' = '}{value!r} is out of range: it must be {self}"
                             + (f" ({self.note})" if self.note else ""))


#: observation noise levels (--obs-noise, [env] obs_noise, [sweep.report] obs_noise)
OBS_NOISE = Range(0, note="the standard deviation of the Gaussian noise added to each observation entry; 0: none")
