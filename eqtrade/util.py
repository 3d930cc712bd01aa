"""Small helpers below every package (data, agents, backtest, sweep import them; they import
nothing of eqtrade): atomic file writes (a temporary file in the same folder, fsync, then
rename), the mean ± 95% interval over seeds that every comparison table reports, the TOML
writer of run and backtest configs, and the progress display of every command (a bar on a
terminal, plain lines in logs)."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore it (threads of this process write files too)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


#: the most seeds one --seeds may name
MAX_SEEDS = 10_000
#: the largest seed (an agent's config refuses larger; numpy and torch take seeds up to 2**64 - 1)
SEED_MAX = 2**63 - 1


def parse_seeds(text, flag: str = "--seeds") -> list[int]:
    """`--seeds`: a count N (seeds 0..N-1) or a comma-separated list of distinct seeds."""
    raw = str(text).strip()
    parts = [p.strip() for p in raw.split(",")]
    listed = len(parts) > 1  # "5," is the list of the one seed 5; "0,1," the list 0, 1
    if listed and parts[-1] == "":
        parts = parts[:-1]
    if not raw or not all(p.isdigit() for p in parts):
        raise ValueError(f"{flag} {text!r} is not a count N (seeds 0..N-1) or a list of seeds such as 0,1,2 "
                         "(non-negative whole numbers; one seed S as a list: S,)")
    if not listed:
        n = int(parts[0])
        if not 1 <= n <= MAX_SEEDS:
            alone = (f": for seed {n} alone write '{flag} {n},' (with a trailing comma) or --seed {n}" if n <= SEED_MAX
                     else f"; seeds are whole numbers from 0 to {SEED_MAX}")
            raise ValueError(f"{flag} {n}: the count of seeds must be between 1 and {MAX_SEEDS} (a single number is a "
                             f"count, seeds 0..N-1){alone}")
        return list(range(n))
    seeds = [int(p) for p in parts]
    if len(set(seeds)) < len(seeds):
        dup = sorted({s for s in seeds if seeds.count(s) > 1})
        raise ValueError(f"{flag} {text!r} names seed {dup[0]} twice: each seed trains one run")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"{flag}: {len(seeds)} seeds is more than {MAX_SEEDS}")
    big = [s for s in seeds if s > SEED_MAX]
    if big:
        raise ValueError(f"{flag}: seed {big[0]} is out of range (seeds are whole numbers from 0 to {SEED_MAX})")
    return seeds


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse instead of handing it back to the
    system and faulting it in again: blocks under 64 MB come from the heap (not a fresh mmap
    each time) and the heap is trimmed only past 1 GB free. A training step allocates and frees
    the same few-MB tensors thousands of times; returning and re-faulting them made a stack of 5
    runs' update 1.05-1.23x slower on the 2-core development machine (`bench/bench_stack.py malloc`).
    Replay buffers (larger) stay lazily mapped. Once per process; `EQTRADE_KEEP_FREED_MEMORY=0`
    leaves the allocator alone; False where it is left alone or the C library is not glibc."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if os.environ.get("EQTRADE_KEEP_FREED_MEMORY", "1").strip() == "0":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 64 << 20) == 1 and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):
        ok = False
    _MALLOC_TUNED = ok
    return ok


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Create or replace `path` with what `write(tmp_path)` produces, all or nothing; the file
    gets the mode of any new file (0o666 less the umask), not mkstemp's private 0o600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~current_umask())
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def progress_mode(progress: bool | str = True) -> str | None:
    """How a command shows progress: "bar" (a live bar, when stdout and stderr are terminals),
    "lines" (plain lines, no carriage returns: logs, pipes, or progress="lines") or None (off)."""
    if not progress:
        return None
    if progress == "lines" or not (sys.stderr.isatty() and sys.stdout.isatty()):
        return "lines"
    return "bar"


class LineProgress:
    """A tqdm stand-in for logs and pipes: one plain line on stderr at every twentieth of the way
    (and at least once a minute), and one at the end."""

    def __init__(self, iterable=None, total: int | None = None, desc: str = "", unit: str = "it",
                 initial: int = 0, quiet: bool = False):
        self.iterable, self.desc, self.unit, self.quiet = iterable, desc, unit, quiet
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.postfix = total, initial, ""
        self.every = max(1, math.ceil(total / 20)) if total else 1
        self.t0 = self.t_last = time.perf_counter()
        self.n_last = initial

    def __iter__(self):
        for x in self.iterable:
            yield x
            self.update(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _line(self) -> None:
        self.n_last, self.t_last = self.n, time.perf_counter()
        if self.quiet:
            return
        of = f"/{self.total} {self.unit}s ({100 * self.n / self.total:.0f}%)" if self.total else f" {self.unit}s"
        text = f"{self.desc}: {self.n}{of}, {self.t_last - self.t0:.0f} s" + (f" | {self.postfix}" if self.postfix else "")
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def update(self, n: int = 1) -> None:
        """Count n more items; a line at each twentieth of the total (or after a minute)."""
        self.n += n
        if (self.n // self.every > self.n_last // self.every or self.n == self.total
                or time.perf_counter() - self.t_last > 60):
            self._line()

    def set_postfix_str(self, s: str = "", refresh: bool = False) -> None:
        self.postfix = s

    def set_postfix(self, ordered_dict=None, refresh: bool = False, **kw) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kw}.items())

    def close(self) -> None:
        if self.n != self.n_last:
            self._line()
        self.n_last = self.n


def progress_bar(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 progress: bool | str = True, lines: bool = True):
    """The progress display of every command (see `progress_mode`): a tqdm bar on a terminal,
    plain lines (`LineProgress`) when redirected, nothing when off. lines=False: the caller
    writes its own lines when redirected (training: one per evaluation), so none here."""
    mode = progress_mode(progress)
    if mode == "bar":
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial,
                        quiet=mode is None or not lines)


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
OBS_NOISE = Range(0, note="the standard deviation of the Gaussian noise: in units of each asset's trailing "
                           "volatility on the trading envs' returns, on each observation entry elsewhere; 0: none")
