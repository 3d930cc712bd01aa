"""Advisory locks of output directories: one command writes a run, sweep, suite or backtest
directory at a time.

A lock is the file DIR/.eqtrade.lock, created atomically (O_CREAT | O_EXCL), holding its owner as
JSON (pid, host, command, start time). It is removed when the command ends (normally, by an error
or by Ctrl-C). A lock left by a process that died (kill -9, a crash) is stale: on the same host,
a pid that is no longer alive (or now belongs to a younger process) is taken over with a warning;
a lock of another host is refused (its pid cannot be checked from here), naming the host, unless
both are trials of one sweep (`tag`): Ray Tune runs a trial once at a time, and restarts it on
another node when its node is lost. Locks nest within one process: a command that holds its
--out may call library functions that lock it again."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

#: the lock file in a locked directory (not output: output checks and readers ignore it)
LOCK_NAME = ".eqtrade.lock"

#: directories this process holds -> how many times (locks nest within a process)
_held: dict[str, int] = {}


class DirectoryLocked(ValueError):
    """The directory is being written by another command (a one-line error of the CLI)."""


def _owner(command: str, tag: str | None) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "started_unix": time.time(), "tag": tag}


def read_lock(directory: Path) -> dict | None:
    """The owner recorded in DIR's lock file; None if there is none; {} if it cannot be read."""
    path = Path(directory) / LOCK_NAME
    for _ in range(20):  # a lock being created is empty for a moment
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            info = json.loads(text)
            return info if isinstance(info, dict) else {}
        except json.JSONDecodeError:
            time.sleep(0.05)
    return {}


def _pid_alive(pid: int, since: float | None) -> bool:
    """Whether `pid` runs here and is not a younger process that reuses the pid of a dead one."""
    if os.name == "nt":  # os.kill would end the process there: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    except OSError:
        return True
    if since is None:
        return True
    try:  # Linux: the process's start time, from boot time and its start in clock ticks
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        btime = next(int(ln.split()[1]) for ln in Path("/proc/stat").read_text().splitlines()
                     if ln.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK") <= since + 2.0
    except (OSError, ValueError, IndexError, StopIteration):
        return True


def _describe(directory: Path, info: dict) -> str:
    return (f"{directory} is in use by {info.get('command', 'an eqtrade command')} (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, since {info.get('started', '?')})")


def _take_over(path: Path, seen: dict, why: str) -> None:
    """Remove the stale lock file `path` if it still holds `seen` (another taker may have been first)."""
    aside = path.with_name(f"{LOCK_NAME}.{os.getpid()}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another process took it over first
    try:
        if json.loads(aside.read_text()) != seen:  # a fresh lock of whoever was first: put it back
            try:
                os.link(aside, path)
            except FileExistsError:
                pass
            return
    except (OSError, json.JSONDecodeError):
        pass
    log.warning("%s: taking over the stale lock of %s (pid %s on %s, since %s): %s", path.parent,
                seen.get("command"), seen.get("pid"), seen.get("host"), seen.get("started"), why)
    aside.unlink(missing_ok=True)


def acquire(directory: Path, command: str, tag: str | None = None) -> list[Path]:
    """Lock `directory` (created if absent) for `command`; returns the folders created for it.
    Raises DirectoryLocked when another live command holds it."""
    directory = Path(directory)
    created = []
    for d in [directory, *directory.parents]:
        if d.exists():
            break
        created.append(d)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    me = _owner(command, tag)
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            info = read_lock(directory)
            if info is None:
                continue  # released meanwhile: try again
            if not info:
                raise DirectoryLocked(f"{directory} holds a lock file that cannot be read ({path}); if no eqtrade "
                                      f"command is writing there, remove it (rm {path}) and try again") from None
            host, pid = info.get("host"), info.get("pid")
            if tag is not None and info.get("tag") == tag and host != me["host"]:
                _take_over(path, info, f"a trial restarted on {me['host']}")
                continue
            if host != me["host"]:
                raise DirectoryLocked(f"{_describe(directory, info)}; its process cannot be checked from "
                                      f"{me['host']}: if it is no longer running there, remove {path}; else wait "
                                      "for it or use another --out") from None
            if isinstance(pid, int) and not _pid_alive(pid, info.get("started_unix")):
                _take_over(path, info, f"pid {pid} is no longer running")
                continue
            raise DirectoryLocked(f"{_describe(directory, info)}; wait for it or use another --out") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return created
    raise DirectoryLocked(f"{directory}: could not take its lock ({path}); try again")


def release(directory: Path, created: list[Path] = ()) -> None:
    """Remove this process's lock of `directory`, and the folders made for it if they are still empty."""
    directory = Path(directory)
    info = read_lock(directory)
    if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
        (directory / LOCK_NAME).unlink(missing_ok=True)
    for d in created:  # deepest first: a command that failed before writing leaves no folder behind
        try:
            d.rmdir()
        except OSError:
            break


@contextmanager
def locked(directory: Path, command: str | None = None, tag: str | None = None):
    """Hold the lock of `directory` while the block runs (nested locks of one process are free).
    command: how the owner is named to others, e.g. "eqtrade train"."""
    key = os.path.realpath(directory)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    created = acquire(directory, command or "an eqtrade command", tag)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        release(directory, created)


def clear_directory(directory: Path, keep: tuple[str, ...] = ()) -> None:
    """Remove everything in `directory` but its lock file (and the names in `keep`)."""
    import shutil

    for p in Path(directory).iterdir():
        if p.name == LOCK_NAME or p.name in keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
