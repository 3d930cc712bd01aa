"""The on-disk data directory: per-ticker yfinance cache, imported datasets, and their manifest.

Layout of a data dir (default ./data, or $EQTRADE_DATA, or --data-dir):

    manifest.json                       what is here, with a sha256 per file
    yfinance/<TICKER>.<sha8>.parquet    daily OHLCV + adj_close of one ticker
    datasets/<NAME>.<sha8>.parquet      a wide panel of adjusted closes imported by the user

Files are content-addressed (the hash prefix is in the name) so that replacing one is atomic
as a whole: the new file is written first, then the manifest is switched to it atomically, then
the old file is deleted. An interruption at any point leaves a manifest that points at an
intact file; at worst an orphan file remains, which the next write removes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..util import atomic_write_bytes, atomic_write_json
from .errors import CacheCorruptError, DataError, DatasetNotFoundError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
#: the subdirectory of the data dir that holds each manifest section's files
_SUBDIRS = {"tickers": "yfinance", "datasets": "datasets"}
OHLCV_COLUMNS = ["open", "high", "low", "close", "adj_close", "volume"]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data dir: the argument, else $EQTRADE_DATA, else ./data."""
    env = os.environ.get("EQTRADE_DATA")
    path = Path(data_dir) if data_dir is not None else Path(env) if env else Path.cwd() / "data"
    if path.exists() and not path.is_dir():
        where = "--data-dir" if data_dir is not None else "$EQTRADE_DATA" if env else "./data"
        raise DataError(f"the data dir {path} ({where}) is a file, not a directory; give a directory (it is made "
                        "when first needed)")
    return path


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def frame_to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Serialise a frame to parquet in memory (so its hash is known before it is written)."""
    buf = io.BytesIO()
    df.to_parquet(buf, compression="zstd")
    return buf.getvalue()


@dataclass
class Entry:
    """One manifest entry: a stored file and what it holds."""

    kind: str  # "ticker" or "dataset"
    name: str
    meta: dict[str, Any]

    @property
    def tickers(self) -> list[str]:
        return list(self.meta.get("tickers", [self.name]))


class DataStore:
    """Reads and writes one data dir; every read checks the file against its manifest hash."""

    def __init__(self, data_dir: str | os.PathLike | None = None):
        self.root = resolve_data_dir(data_dir)

    # -- manifest ---------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def read_manifest(self) -> dict[str, Any]:
        """The manifest, or an empty one if the data dir has none yet."""
        path = self.manifest_path
        if not path.exists():
            return {"version": MANIFEST_VERSION, "tickers": {}, "datasets": {}}
        try:
            manifest = json.loads(path.read_text())
            if not isinstance(manifest, dict) or "tickers" not in manifest or "datasets" not in manifest:
                raise ValueError("missing 'tickers' or 'datasets'")
        except (ValueError, OSError) as exc:
            raise CacheCorruptError(
                f"{path}: the cache manifest is unreadable ({exc}). Nothing was changed. "
                f"Move it aside and re-download with `eqtrade fetch --tickers ... --refresh "
                f"--data-dir {self.root}` (imported datasets must be imported again)."
            ) from exc
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["version"] = MANIFEST_VERSION
        atomic_write_json(self.manifest_path, manifest)

    def entry_path(self, section: str, name: str, entry: dict[str, Any]) -> Path:
        """The file of a manifest entry, which must lie inside its subdirectory of the data dir
        (yfinance/ or datasets/): a manifest naming any other path ('../x.parquet', '/etc/passwd')
        is refused as corrupt before anything is read or deleted."""
        subdir = _SUBDIRS[section]
        label = "ticker" if section == "tickers" else "dataset"
        rel = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not rel:
            raise CacheCorruptError(f"{self.manifest_path}: {label} {name!r} has no file name in the manifest; "
                                    f"the manifest is damaged. Nothing was read or deleted. {self._fix(section, name)}")
        base = (self.root / subdir).resolve()
        path = (self.root / rel).resolve()
        if path.parent != base:
            raise CacheCorruptError(
                f"{self.manifest_path}: {label} {name!r} names the file {rel!r}, outside {self.root / subdir}; "
                f"the manifest is damaged or was edited. Nothing was read or deleted. {self._fix(section, name)}")
        return self.root / rel

    def _fix(self, section: str, name: str) -> str:
        again = (f"`eqtrade fetch --tickers {name} --refresh --data-dir {self.root}`" if section == "tickers" else
                 f"`eqtrade data import PATH --name {name} --data-dir {self.root}`")
        return (f"Fix: delete the entry {name!r} from the {section!r} of {self.manifest_path} (no file is touched), "
                f"then {again}")

    # -- generic put/get --------------------------------------------------------------------
    def _put(self, section: str, subdir: str, name: str, df: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
        old = self.read_manifest()[section].get(name)
        if old:
            self.entry_path(section, name, old)  # a damaged entry is refused before anything is written
        data = frame_to_parquet_bytes(df)
        digest = sha256_bytes(data)
        rel = f"{subdir}/{name}.{digest[:8]}.parquet"
        atomic_write_bytes(self.root / rel, data)  # 1. new file, under a new name
        manifest = self.read_manifest()
        old = manifest[section].get(name)
        old_path = self.entry_path(section, name, old) if old else None
        entry = dict(meta, file=rel, sha256=digest, rows=int(len(df)))
        if len(df):
            entry["first"] = df.index[0].strftime("%Y-%m-%d")
            entry["last"] = df.index[-1].strftime("%Y-%m-%d")
        manifest[section][name] = entry
        self._write_manifest(manifest)  # 2. switch atomically
        if old and old_path is not None and old.get("file") != rel:  # 3. drop the old file (an orphan if we die here)
            old_path.unlink(missing_ok=True)
        self._remove_orphans(subdir, name, keep=rel)
        return entry

    def _remove_orphans(self, subdir: str, name: str, keep: str) -> None:
        for p in (self.root / subdir).glob(f"{name}.*.parquet"):
            rel = f"{subdir}/{p.name}"
            if rel != keep and p.name.count(".") == name.count(".") + 2:
                p.unlink(missing_ok=True)

    def _get(self, section: str, name: str, fix: str) -> pd.DataFrame:
        manifest = self.read_manifest()
        entry = manifest[section].get(name)
        if entry is None:
            raise DatasetNotFoundError(f"{name!r} is not in {self.manifest_path}")
        path = self.entry_path(section, name, entry)
        if not path.exists():
            raise CacheCorruptError(f"{path}: listed in the manifest but missing. Fix: {fix}")
        data = path.read_bytes()
        digest = sha256_bytes(data)
        if digest != entry["sha256"]:
            raise CacheCorruptError(
                f"{path}: sha256 {digest[:12]}… does not match the manifest ({entry['sha256'][:12]}…); "
                f"the file was truncated or altered and will not be used. Fix: {fix}"
            )
        try:
            df = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several types for bad files
            raise CacheCorruptError(f"{path}: not a readable parquet file ({exc}). Fix: {fix}") from exc
        if not isinstance(df.index, pd.DatetimeIndex):
            raise CacheCorruptError(f"{path}: index is {type(df.index).__name__}, expected dates. Fix: {fix}")
        return df

    # -- tickers (yfinance cache) ------------------------------------------------------------
    def put_ticker(self, ticker: str, df: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
        """Store one ticker's OHLCV frame (columns OHLCV_COLUMNS, DatetimeIndex 'date')."""
        missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{ticker}: frame lacks columns {missing}")
        return self._put("tickers", "yfinance", ticker, df[OHLCV_COLUMNS], meta)

    def get_ticker(self, ticker: str) -> pd.DataFrame:
        """One cached ticker's OHLCV frame, verified against the manifest."""
        fix = f"re-download it with `eqtrade fetch --tickers {ticker} --refresh --data-dir {self.root}`"
        df = self._get("tickers", ticker, fix)
        missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
        if missing:
            raise CacheCorruptError(f"{ticker}: cached file lacks columns {missing}. Fix: {fix}")
        return df

    def ticker_entry(self, ticker: str) -> dict[str, Any] | None:
        """The manifest entry of a cached ticker, or None."""
        return self.read_manifest()["tickers"].get(ticker)

    # -- imported datasets -----------------------------------------------------------------
    def put_dataset(self, name: str, df: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
        """Store a wide panel of adjusted closes under a dataset name."""
        meta = dict(meta, tickers=[str(c) for c in df.columns])
        return self._put("datasets", "datasets", name, df, meta)

    def get_dataset(self, name: str) -> pd.DataFrame:
        """An imported dataset, verified against the manifest."""
        fix = f"import it again with `eqtrade data import PATH --name {name} --force --data-dir {self.root}`"
        return self._get("datasets", name, fix)

    def entries(self) -> list[Entry]:
        """Everything the manifest lists."""
        m = self.read_manifest()
        return [Entry("ticker", k, v) for k, v in sorted(m["tickers"].items())] + [
            Entry("dataset", k, v) for k, v in sorted(m["datasets"].items())
        ]
