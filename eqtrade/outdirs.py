"""What kind of output a directory holds, so that no command writes over another's results."""

from __future__ import annotations

import tomllib
from pathlib import Path

from .lock import LOCK_NAME

#: the file that marks each kind of output directory
MARKERS = {"run": "checkpoint.pt", "compare": "summary.csv", "sweep": "sweep.json", "walkforward": "per_fold.csv"}


def output_kind(path: Path) -> str | None:
    """"run", "backtest", "compare", "sweep", "walkforward" (a walk-forward report), "other" (files of another origin) or None (absent or empty)."""
    path = Path(path)
    if not path.exists() or not any(not p.name.startswith(LOCK_NAME) for p in path.iterdir()):
        return None  # the lock of the command that writes it is not output
    for kind, marker in MARKERS.items():
        if (path / marker).exists():
            return kind
    cfg = path / "config.toml"
    if cfg.exists():
        try:
            tables = tomllib.loads(cfg.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return "other"
        if "backtest" in tables:
            return "backtest"
        if "run" in tables:
            return "run"
    return "other"


def is_seed_dir(name: str) -> bool:
    """Whether a folder's name is that of a run of a --seeds stack: s<SEED> (`eqtrade train --seeds
    N --out DIR` writes DIR/s0, DIR/s1, ...)."""
    digits = name[1:]
    return name[:1] == "s" and digits.isascii() and digits.isdigit() and (digits == "0" or digits[0] != "0")


def seed_runs(path: Path, marker: str = "config.toml") -> list[Path]:
    """The runs of a --seeds stack in `path`: its s<SEED>/ folders that hold `marker`, by seed."""
    return sorted((p.parent for p in Path(path).glob(f"s*/{marker}") if is_seed_dir(p.parent.name)),
                  key=lambda p: int(p.name[1:]))


def holds_seed_runs(path: Path) -> bool:
    """Whether `path` holds runs of a --seeds stack with checkpoints (s<SEED>/checkpoint.pt)."""
    return bool(seed_runs(path, "checkpoint.pt"))


def describe(path: Path, held: str) -> str:
    """What a directory of kind `held` (`output_kind`) holds, for an error: "a run directory", the
    folder of a --seeds stack (its runs named), or files of another kind (the first few named)."""
    if held != "other":
        return f"a {held} directory"
    path = Path(path)
    names = sorted(p.name for p in path.iterdir() if not p.name.startswith(LOCK_NAME))
    runs = [p.name for p in seed_runs(path)]
    if runs and len(runs) == len(names):
        return f"the folder of a --seeds stack (its runs {', '.join(n + '/' for n in runs[:3])}{', ...' * (len(runs) > 3)})"
    shown = ", ".join(n + "/" * (path / n).is_dir() for n in names[:3])
    return f"files of another kind ({shown}{f' and {len(names) - 3} more' if len(names) > 3 else ''})"


def check_output_dir(path: Path, kind: str, force: bool = False) -> None:
    """Refuse to write `kind` output into a directory that holds another kind of output (never),
    or earlier output of the same kind (unless `force`)."""
    held = output_kind(Path(path))
    if held is None:
        return
    if held != kind:
        raise ValueError(f"--out {path} holds {describe(path, held)}; writing {kind} results there would overwrite them. "
                         "Choose another --out")
    if not force:
        raise ValueError(f"--out {path} already holds {kind} results; use --force to replace them or another --out")
