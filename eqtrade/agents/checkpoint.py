"""Checkpoint files (checkpoint.pt, best.pt): the agent's state and the env's spec, never a
pickled env; a format version and provenance; clear one-line errors for a missing, damaged or
old file."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: the checkpoint layout. 3: env spec + episode state + interface (no pickled env), provenance.
#: Formats 1-2 (eqtrade 0.1.x) pickled the env and are not read.
FORMAT = 3


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, unreadable, not a checkpoint, or too old.
    `problem`: what is wrong with the file, without the way out (callers with another way out,
    e.g. a resume, word their own)."""

    def __init__(self, message: str, problem: str | None = None):
        super().__init__(message)
        self.problem = problem or message


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The git commit of the eqtrade source tree, when it runs from a checkout (else None)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                           cwd=here.parent, capture_output=True, text=True, timeout=5)
    return out.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def provenance(device: torch.device, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """What made a checkpoint: versions, commit, threads, device, and what the run adds
    (`run`: e.g. the dataset's sha256, from the orchestration)."""
    from .. import __version__

    return {"eqtrade": __version__, "git_commit": git_commit(), "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "device": str(device), "run": dict(run or {})}


def write(path, state: dict, prov: dict) -> None:
    """Write a checkpoint atomically (a crash leaves the previous file intact)."""
    from ..util import atomic_write

    def save(p: Path) -> None:
        # straight into the temporary file (no in-memory copy of a replay of hundreds of MB), through a
        # file object: given a path, torch.save names the archive's records after the (random) file name
        with open(p, "wb") as f:
            torch.save({**state, "format": FORMAT, "provenance": prov}, f)

    atomic_write(Path(path), save)


def checkpoint_file(path) -> Path:
    """The checkpoint file `path` names: the file itself, or for a run directory its checkpoint.pt
    (the run's last state; its best.pt is named explicitly: RUN/best.pt)."""
    path = Path(path)
    if path.is_dir() and (path / "checkpoint.pt").is_file():
        return path / "checkpoint.pt"
    return path


def read(path) -> dict:
    """A checkpoint's state, or a CheckpointError naming the file and the way out."""
    path = Path(path)

    def fail(problem: str):
        return CheckpointError(f"{problem}; {_way_out(path)}", problem)

    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if not path.is_file():
        what = f"{path} is a {'directory' if path.is_dir() else 'special file'}, not a checkpoint file"
        if path.is_dir() and _way_out(path) == "retrain the run":  # not a run's damaged checkpoint: a wrong path
            raise CheckpointError(f"{what}; pass a checkpoint file (RUN/checkpoint.pt or RUN/best.pt) or a run "
                                  "directory (one with checkpoint.pt)", what)
        raise fail(what)
    if path.stat().st_size == 0:
        raise fail(f"{path} is empty (a write that never finished?)")
    if _truncated_zip(path):
        raise fail(f"{path} is not a readable eqtrade checkpoint (truncated: a write that never finished, or a "
                   "partial copy?)")
    try:
        state = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as e:  # EOF, a file of another kind, a pickle of a removed class
        why = str(e).splitlines()[0].split(". ")[0][:120] if str(e) else type(e).__name__
        raise fail(f"{path} is not a readable eqtrade checkpoint ({why})") from None
    if not isinstance(state, dict) or "algo" not in state:
        raise fail(f"{path} is not an eqtrade checkpoint")
    fmt = state.get("format", 1)
    if fmt != FORMAT:
        made = "an older eqtrade (0.1.x)" if fmt < FORMAT else "a newer eqtrade"
        raise CheckpointError(f"{path} has checkpoint format {fmt}, written by {made}; this eqtrade reads format "
                              f"{FORMAT} only: retrain the run (or use the eqtrade version that wrote it)")
    return state


def _truncated_zip(path: Path) -> bool:
    """A file that starts as a zip archive (torch.save's format) but lacks its end (the directory)."""
    import zipfile

    with open(path, "rb") as f:
        head = f.read(4)
    return head == b"PK\x03\x04" and not zipfile.is_zipfile(path)


def looks_intact(path) -> bool:
    """A cheap check (no unpickling): a non-empty file that is a complete zip archive."""
    import zipfile

    path = Path(path)
    return path.is_file() and path.stat().st_size > 0 and zipfile.is_zipfile(path)


def _way_out(path: Path) -> str:
    other = {"best.pt": "checkpoint.pt", "checkpoint.pt": "best.pt"}.get(path.name)
    if other and looks_intact(path.parent / other):
        hint = ("use --checkpoint last (checkpoint.pt)" if path.name == "best.pt"
                else "the run's best.pt looks intact (--checkpoint best), or retrain the run")
        return hint
    return "retrain the run"
