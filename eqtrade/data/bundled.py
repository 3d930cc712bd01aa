"""The real dataset shipped inside the package (see bundled/PROVENANCE.md)."""

from __future__ import annotations

import functools
import hashlib
import io
import json
from importlib import resources
from typing import Any

import pandas as pd

from .errors import CacheCorruptError, DatasetNotFoundError

DEFAULT_DATASET = "sp500-20"
BENCHMARK_DATASET = "sp500-index"


@functools.lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """Source, licence and hashes of the bundled data (bundled/provenance.json)."""
    return json.loads(resources.files(__package__).joinpath("bundled/provenance.json").read_text())


def bundled_names() -> list[str]:
    """Names of the bundled datasets."""
    return list(provenance()["datasets"])


@functools.lru_cache(maxsize=8)
def _load(name: str) -> pd.DataFrame:
    entry = provenance()["datasets"][name]
    data = resources.files(__package__).joinpath("bundled", entry["file"]).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["parquet_sha256"]:
        raise CacheCorruptError(
            f"bundled dataset {name!r} ({entry['file']}) has sha256 {digest[:12]}…, expected "
            f"{entry['parquet_sha256'][:12]}…: the installation is damaged; reinstall eqtrade."
        )
    df = pd.read_parquet(io.BytesIO(data))
    df.index.name = "date"
    return df


def load_bundled(name: str = DEFAULT_DATASET) -> pd.DataFrame:
    """A bundled dataset as a wide frame of adjusted closes (a fresh copy, verified by hash)."""
    if name not in provenance()["datasets"]:
        raise DatasetNotFoundError(f"no bundled dataset {name!r}; bundled: {', '.join(bundled_names())}")
    return _load(name).copy()
