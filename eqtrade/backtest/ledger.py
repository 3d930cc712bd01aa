"""The ledger: what a study trained and every look at its test data, one JSON line per event.

A study directory (`eqtrade sweep`, walk-forward included) keeps `ledger.jsonl`: one "train" line
per trial (its configuration, with the keys that do not make a distinct configuration — seed,
splits — set apart) and one "test_read" line per read of a test block. The deflated Sharpe's
number of trials counts the distinct configurations in it (`n_configurations`) plus those tried
while choosing the defaults (`PRIOR_CONFIGURATIONS`). A read names what it reads (`content`: a
digest of the trials' configurations and the report's settings). Reading the same block again for
the same content (a resumed study rewriting its report) reproduces the same numbers and is
recorded as a repeat; reading it for other content (the study changed after its test data was
seen) is refused unless forced, and then recorded as forced. `eqtrade sweep --force` starts a
study afresh but keeps its ledger: what was seen stays seen.

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


def configuration_key(overrides: dict) -> str:
    """A trial's configuration as a key: its grid values except those that make no new configuration."""
    return json.dumps({k: v for k, v in sorted(overrides.items()) if k not in NOT_A_CONFIGURATION},
                      sort_keys=True, default=str)


def record_trials(directory, trials: list[tuple[str, dict]]) -> None:
    """A "train" line for each trial not in the ledger yet (a resumed study adds none twice)."""
    seen = {e.get("trial") for e in read(directory) if e.get("event") == "train"}
    for name, over in trials:
        if name not in seen:
            append(directory, {"event": "train", "trial": name, "configuration": configuration_key(over)})


def n_configurations(directory) -> int:
    """Distinct configurations the ledger says this study trained (seeds and folds are not configurations)."""
    return len({e["configuration"] for e in read(directory) if e.get("event") == "train"})


def digest(obj) -> str:
    """A short digest of a JSON-able object (what a test read reads: configurations, settings)."""
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_test_read(directory, block: str, force: bool = False, what: str = "", content: str = "") -> int:
    """Record a read of test block `block` (e.g. "2011-01-01..2022-12-31") for `content` (a
    `digest` of what is compared). A read of a block seen before for other content is refused
    (TestReadRefused) unless `force`, and then recorded as forced; the same content again is a
    repeat (the same numbers) and recorded as one. Returns the reads of the block before this one."""
    before = [e for e in read(directory) if e.get("event") == "test_read" and e.get("block") == block]
    repeat = bool(before) and all(e.get("content") == content for e in before) and bool(content)
    if before and not repeat and not force:
        raise TestReadRefused(
            f"the test block {block} of {directory} was read before for another study ({len(before)} time(s), "
            f"first at {before[0].get('time', '?')}; {Path(directory) / LEDGER}): a second look at the same test data "
            "after a change is refused; --force-test-read reads it again and records that it did")
    append(directory, {"event": "test_read", "block": block, "content": content, "what": what,
                       "forced": bool(before) and not repeat, "repeat": repeat})
    return len(before)


def record_run_read(run_dir, block: str, what: str = "") -> int:
    """A run's out-of-sample read, recorded (not refused); returns how many reads of it came before.
    A run directory that cannot be written (read-only) is not an error: nothing is recorded."""
    try:
        before = sum(1 for e in read(run_dir) if e.get("event") == "test_read" and e.get("block") == block)
        append(run_dir, {"event": "test_read", "block": block, "what": what})
    except (OSError, ValueError):
        return 0
    return before
