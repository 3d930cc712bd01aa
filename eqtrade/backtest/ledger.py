"""The ledger: what a study trained and every look at its test data, one JSON line per event.

A study directory (`eqtrade sweep`, walk-forward included) keeps `ledger.jsonl`: one "train" line
per trial (its configuration, with the keys that do not make a distinct configuration — seed,
splits — set apart) and one "test_read" line per read of a test block. The deflated Sharpe's
number of trials counts the distinct configurations in it (`n_configurations`) plus those tried
while choosing the defaults (`PRIOR_CONFIGURATIONS`). A read names what it reads (`content`: a
digest of the trials' configurations and the report's settings). Reading the same block again for
the same content (a resumed study rewriting its report) reproduces the same numbers and is
recorded as a repeat; reading it for other content (the study changed after its test data was
seen), or any block overlapping one read before, is refused unless forced, and then recorded as
forced. `eqtrade sweep --force` starts a study afresh but keeps its ledger (what was seen stays
seen) and records the restart: its retrained runs give other numbers, so their first read of a
block seen before is refused too. A read is recorded once it has been used (a report that fails
halfway records none).

A run directory keeps its own ledger of the backtests that read data after its validation split
(out-of-sample looks): they are recorded and counted in the report ("read N times before"), not
refused, since a run is often backtested again while writing a report; the refusal applies where
configurations are compared and chosen, the study.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

LEDGER = "ledger.jsonl"

#: configurations tried on the bundled stocks while choosing the shipped SAC portfolio defaults,
#: from the record in docs/agents.md ("Training cost as a regulariser"): the training costs 10, 20,
#: 30, 50 and 100 bps, compared on the valid split. The other defaults (network size, reward
#: scale, entropy, actor loss) were chosen on the planted market, whose data shares nothing with
#: these stocks, and are not counted
PRIOR_CONFIGURATIONS = 5

#: grid keys that do not make another configuration: a seed, a fold's splits, a data split
NOT_A_CONFIGURATION = ("agent.seed", "env.split", "eval_env.split")


class TestReadRefused(ValueError):
    """A second look at a test block the ledger already records."""


def append(directory, event: dict) -> None:
    """One event appended to DIR/ledger.jsonl (with its time); the line is written in one call."""
    path = Path(directory) / LEDGER
    line = json.dumps(dict(event, time=time.strftime("%Y-%m-%dT%H:%M:%S%z")), sort_keys=True, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)


def read(directory) -> list[dict]:
    """Every event of DIR/ledger.jsonl ([] without one); a damaged line is a one-line error."""
    path = Path(directory) / LEDGER
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(f"{path}:{i} is not a JSON line (a damaged ledger): {line[:80]!r}") from None
    return out


def configuration_key(overrides: dict, base: dict | None = None) -> str:
    """A trial's configuration as a key: its base config (a digest) and its grid values except
    those that make no new configuration (seed, splits)."""
    key = {k: v for k, v in sorted(overrides.items()) if k not in NOT_A_CONFIGURATION}
    if base:
        key["__base__"] = digest(base)
    return json.dumps(key, sort_keys=True, default=str)


def record_trials(directory, trials: list[tuple[str, dict]], base: dict | None = None) -> None:
    """A "train" line for each (trial, configuration) not in the ledger yet (a resumed study adds
    none twice; a study started afresh with another base config adds its configurations)."""
    lines = [e for e in read(directory) if e.get("event") == "train"]
    seen = {(e.get("trial"), e.get("configuration")) for e in lines}
    # a ledger written before configurations carried their base config: its trials count as they are
    legacy = {e.get("trial") for e in lines if "__base__" not in str(e.get("configuration"))}
    for name, over in trials:
        key = configuration_key(over, base)
        if (name, key) not in seen and name not in legacy:
            append(directory, {"event": "train", "trial": name, "configuration": key})


def n_configurations(directory) -> int:
    """Distinct configurations the ledger says this study trained (seeds and folds are not configurations)."""
    return len({e["configuration"] for e in read(directory) if e.get("event") == "train"})


def digest(obj) -> str:
    """A short digest of a JSON-able object (what a test read reads: configurations, settings)."""
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record_restart(directory, what: str = "") -> None:
    """A study started afresh in its directory (`eqtrade sweep --force`): its runs are trained
    again, so a later read of a block seen before is not a repeat of the same numbers."""
    append(directory, {"event": "restart", "what": what})


def _span(block: str):
    """(start, end) dates of a block written "YYYY-MM-DD..YYYY-MM-DD", else None."""
    import datetime as dt

    try:
        a, b = str(block).split("..")
        return dt.date.fromisoformat(a.strip()), dt.date.fromisoformat(b.strip())
    except ValueError:
        return None


def _overlaps(x: str, y: str) -> bool:
    sx, sy = _span(x), _span(y)
    if sx is None or sy is None:
        return x == y
    return sx[0] <= sy[1] and sy[0] <= sx[1]


def plan_test_read(directory, block: str, force: bool = False, what: str = "", content: str = "") -> dict:
    """The ledger line of a read of test block `block` ("YYYY-MM-DD..YYYY-MM-DD") for `content` (a
    `digest` of what is compared), checked but not written (`append` it once the read has been
    used). Refused (TestReadRefused) unless `force` when a block overlapping it was read before
    for other content, or before the study was started afresh; the same content on the same
    block since then is a repeat (the same numbers)."""
    events = read(directory)
    last_restart = max((i for i, e in enumerate(events) if e.get("event") == "restart"), default=-1)
    before = [(i, e) for i, e in enumerate(events) if e.get("event") == "test_read" and _overlaps(e.get("block"), block)]
    repeat = bool(before) and bool(content) and all(
        e.get("content") == content and e.get("block") == block and i > last_restart for i, e in before)
    if before and not repeat and not force:
        first = before[0][1]
        if not all(e.get("block") == block for _, e in before):
            why = f"as an overlapping block ({next(e for _, e in before if e.get('block') != block).get('block')})"
        elif content and all(e.get("content") == content for _, e in before):
            why = "before the study was started afresh"
        else:
            why = "for another study"
        raise TestReadRefused(
            f"the test block {block} of {directory} was read before {why} ({len(before)} time(s), first at "
            f"{first.get('time', '?')}; {Path(directory) / LEDGER}): a second look at the same test data after a "
            "change is refused; --force-test-read reads it again and records that it did")
    return {"event": "test_read", "block": block, "content": content, "what": what,
            "forced": bool(before) and not repeat, "repeat": repeat, "before": len(before)}


def check_test_read(directory, block: str, force: bool = False, what: str = "", content: str = "") -> int:
    """`plan_test_read` and its line written at once. Returns the reads of the block before this one."""
    event = plan_test_read(directory, block, force, what, content)
    append(directory, event)
    return event["before"]


def record_run_read(run_dir, block: str, what: str = "") -> int:
    """A run's out-of-sample read, recorded (not refused); returns how many reads of it came before.
    A run directory that cannot be written (read-only) is not an error: nothing is recorded."""
    try:
        before = sum(1 for e in read(run_dir) if e.get("event") == "test_read" and e.get("block") == block)
        append(run_dir, {"event": "test_read", "block": block, "what": what})
    except (OSError, ValueError):
        return 0
    return before
