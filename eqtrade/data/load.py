"""Loading price panels by name (bundled, cached, imported), listing datasets, importing files."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .bundled import DEFAULT_DATASET, bundled_names, load_bundled, provenance
from .errors import DataError, DatasetNotFoundError, ImportFormatError
from .store import DataStore
from .validate import ValidationReport, validate_prices

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RESERVED = {"bundled", "cache"}
_DATE_COLS = ("date", "datetime", "timestamp", "time", "day")
_TICKER_COLS = ("ticker", "symbol")
_PRICE_COLS = ("adj_close", "adj close", "adjclose", "adjusted_close", "adjusted close", "close", "price")


def _align(panel: pd.DataFrame, align: str) -> pd.DataFrame:
    if align == "outer":
        return panel
    if align != "inner":
        raise ValueError(f"align must be 'inner' or 'outer', got {align!r}")
    kept = panel.dropna(how="any")
    dropped = len(panel) - len(kept)
    if dropped:
        log.info("inner alignment dropped %d of %d dates where some ticker had no price", dropped, len(panel))
    return kept


def _select(panel: pd.DataFrame, tickers: Iterable[str] | None, where: str) -> pd.DataFrame:
    if tickers is None:
        return panel
    tickers = [str(t) for t in tickers]
    missing = [t for t in tickers if t not in panel.columns]
    if missing:
        raise DatasetNotFoundError(
            f"ticker(s) {', '.join(missing)} not in {where}; it has {', '.join(map(str, panel.columns))}"
        )
    return panel[tickers]


def _bundled_union(tickers: list[str]) -> pd.DataFrame:
    """Bundled columns for tickers that may live in different bundled datasets (e.g. SP500)."""
    frames, found = [], set()
    for name in bundled_names():
        df = load_bundled(name)
        cols = [t for t in tickers if t in df.columns and t not in found]
        if cols:
            frames.append(df[cols])
            found.update(cols)
    missing = [t for t in tickers if t not in found]
    if missing:
        import difflib

        have = sorted({c for n in bundled_names() for c in provenance()["datasets"][n]["tickers"]})
        close = sorted({m for t in missing for m in difflib.get_close_matches(t, have + bundled_names(), n=2)})
        raise DatasetNotFoundError(
            f"{', '.join(missing)}: no such bundled ticker or dataset"
            + (f" (did you mean {' or '.join(close)}?)" if close else "")
            + f"; bundled tickers: {', '.join(have)}. Other tickers: `eqtrade fetch --tickers {' '.join(missing)}`,"
            " then they are in the cache; your own files: `eqtrade data import`"
        )
    return pd.concat(frames, axis=1)[tickers]


def _cache_panel(store: DataStore, tickers: list[str] | None) -> pd.DataFrame:
    cached = [e.name for e in store.entries() if e.kind == "ticker"]
    tickers = cached if tickers is None else [t.upper() for t in tickers]
    if not tickers:
        raise DatasetNotFoundError(f"the cache in {store.root} is empty; run `eqtrade fetch --tickers ...` first")
    missing = [t for t in tickers if t not in cached]
    if missing:
        raise DatasetNotFoundError(
            f"ticker(s) {', '.join(missing)} not cached in {store.root}; "
            f"run `eqtrade fetch --tickers {' '.join(missing)} --data-dir {store.root}`"
        )
    return pd.concat({t: store.get_ticker(t)["adj_close"] for t in tickers}, axis=1)


def load_prices(
    tickers: Iterable[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    source: str = "bundled",
    data_dir=None,
    align: str = "inner",
    validate: bool = True,
) -> pd.DataFrame:
    """A validated wide frame of adjusted closes (DatetimeIndex 'date' x one column per ticker).

    source: "bundled" (the 20-stock panel, or any bundled ticker such as SP500 or MTUM),
    "cache" (tickers fetched with `eqtrade fetch`), or a dataset name from `eqtrade data list`
    (bundled or imported).

    Alignment rule for tickers with different histories: align="inner" (default) keeps only
    the dates on which every selected ticker has a price (nothing is filled); align="outer"
    keeps the union of dates with NaN where a ticker has no price.
    start/end are inclusive dates. Validation errors (NaN inside a ticker's history, prices
    <= 0, duplicate dates) raise DataValidationError naming ticker and date; warnings (jumps,
    zero-return runs, sub-$1 periods) are logged, never fixed.
    """
    tick = None if tickers is None else [str(t) for t in tickers]
    allow_jumps = False  # an imported dataset may have been stored with --allow-jumps
    if source == "bundled":
        panel = load_bundled(DEFAULT_DATASET) if tick is None else _bundled_union(tick)
        where = "bundled data"
    elif source == "cache":
        panel, where = _cache_panel(DataStore(data_dir), tick), "cache"
        tick = None
    elif source in bundled_names():
        panel, where = _select(load_bundled(source), tick, f"bundled dataset {source!r}"), source
    else:
        store = DataStore(data_dir)
        if source not in store.read_manifest()["datasets"]:
            raise DatasetNotFoundError(
                f"no dataset {source!r}: not bundled ({', '.join(bundled_names())}) and not imported in "
                f"{store.root}; see `eqtrade data list`"
            )
        panel, where = _select(store.get_dataset(source), tick, f"dataset {source!r}"), source
        allow_jumps = bool(store.read_manifest()["datasets"][source].get("allow_jumps", False))
    if start is not None or end is not None:
        panel = panel.loc[pd.Timestamp(start) if start else None : pd.Timestamp(end) if end else None]
    panel = _align(panel, align)
    if panel.empty:
        raise DataError(f"no prices in {where} for {start or 'start'}..{end or 'end'} with align={align!r}")
    panel.index.name = "date"
    if validate:
        rep = validate_prices(panel, allow_jumps=allow_jumps)
        rep.raise_if_errors(f"prices from {where}")
        if rep.warnings:
            log.info("%s: %d validation warning(s); see `eqtrade data show`", where, len(rep.warnings))
    return panel


def list_datasets(data_dir=None) -> list[dict[str, Any]]:
    """Every dataset available: bundled, imported, and each cached ticker."""
    rows = []
    for name, e in provenance()["datasets"].items():
        rows.append(dict(name=name, kind="bundled", tickers=e["tickers"], first=e["first"], last=e["last"], rows=e["rows"]))
    store = DataStore(data_dir)
    for e in store.entries():
        rows.append(dict(name=e.name, kind="imported" if e.kind == "dataset" else "cache", tickers=e.tickers,
                         first=e.meta.get("first", ""), last=e.meta.get("last", ""), rows=e.meta.get("rows", 0)))
    return rows


def describe(prices: pd.DataFrame) -> pd.DataFrame:
    """Per-ticker summary: history, last price, annualised return and volatility, zero-return share."""
    rows = {}
    for t in prices.columns:
        s = prices[t].dropna()
        r = s.pct_change().dropna()
        rows[t] = {
            "first": s.index[0].strftime("%Y-%m-%d") if len(s) else "",
            "last": s.index[-1].strftime("%Y-%m-%d") if len(s) else "",
            "rows": len(s),
            "last_price": s.iloc[-1] if len(s) else float("nan"),
            "ann_return": (1 + r).prod() ** (252 / max(len(r), 1)) - 1 if len(r) else float("nan"),
            "ann_vol": r.std() * 252**0.5 if len(r) > 1 else float("nan"),
            "zero_days": (r == 0).mean() if len(r) else float("nan"),
        }
    return pd.DataFrame(rows).T


def show(name: str, data_dir=None) -> tuple[str, pd.DataFrame, ValidationReport]:
    """(where, prices, report) for a dataset name or a single ticker (cache first, then bundled)."""
    store = DataStore(data_dir)
    manifest = store.read_manifest()
    if name in bundled_names() or name in manifest["datasets"]:
        prices = load_prices(source=name, data_dir=data_dir, align="outer", validate=False)
        where = f"bundled dataset {name}" if name in bundled_names() else f"imported dataset {name}"
    elif name.upper() in manifest["tickers"]:
        prices = store.get_ticker(name.upper())[["adj_close"]].rename(columns={"adj_close": name.upper()})
        where = f"cached ticker {name.upper()} ({store.root})"
    else:
        prices = load_prices([name.upper()], source="bundled", align="outer", validate=False)
        where = f"ticker {name.upper()} (bundled data)"
    return where, prices, validate_prices(prices)


# -- import ---------------------------------------------------------------------------------
def _find(cols: Iterable[str], wanted: Iterable[str]) -> str | None:
    by_low = {str(c).strip().lower(): c for c in cols}
    for w in wanted:
        if w in by_low:
            return by_low[w]
    return None


def _parse_dates(values: pd.Series | pd.Index, path: Path) -> pd.DatetimeIndex:
    vals = pd.Series(values)
    if pd.api.types.is_integer_dtype(vals) and vals.between(19000101, 21001231).all():
        vals = vals.astype(str)  # YYYYMMDD written as a number
    elif pd.api.types.is_numeric_dtype(vals) and not pd.api.types.is_bool_dtype(vals):
        # numbers are not dates (pandas would read them as nanoseconds after 1970)
        raise ImportFormatError(f"{path}: no date column: the first column ({vals.name!r}) holds numbers such as "
                                f"{vals.iloc[0]!r}; put the dates (e.g. 2021-01-04) in a first column named date")
    parsed = pd.to_datetime(vals, errors="coerce", utc=False)
    bad = parsed.isna() & pd.Series(values).notna()
    if bad.any() or parsed.isna().any():
        i = int(bad.to_numpy().argmax()) if bad.any() else int(parsed.isna().to_numpy().argmax())
        raise ImportFormatError(f"{path}: row {i + 1}: cannot read {pd.Series(values).iloc[i]!r} as a date")
    idx = pd.DatetimeIndex(parsed)
    if idx.tz is not None:
        idx = idx.tz_convert(None)
    return idx.normalize()


def read_price_file(path: str | Path, ticker: str | None = None, price_column: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read a user's CSV/parquet price file into a wide adjusted-close panel: (panel, layout)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes or suffixes.endswith(".pq"):
            raw = pd.read_parquet(path)
            if isinstance(raw.index, pd.DatetimeIndex):
                raw = raw.reset_index(names=raw.index.name or "date")
        elif ".csv" in suffixes or ".txt" in suffixes:
            raw = pd.read_csv(path)
        else:
            raise ImportFormatError(f"{path}: unknown file type {suffixes or '(none)'}; use .csv, .csv.gz or .parquet")
    except ImportFormatError:
        raise
    except Exception as exc:
        raise ImportFormatError(f"{path}: cannot be read ({exc})") from exc
    if raw.empty:
        raise ImportFormatError(f"{path}: no rows")
    date_col = _find(raw.columns, _DATE_COLS) or raw.columns[0]
    ticker_col = _find(raw.columns, _TICKER_COLS)
    has_ohlc = all(_find(raw.columns, [c]) is not None for c in ("open", "high", "low", "close"))
    if ticker_col is not None or has_ohlc:
        pcol = _find(raw.columns, [price_column.lower()]) if price_column else _find(raw.columns, _PRICE_COLS)
        if pcol is None:
            raise ImportFormatError(f"{path}: no price column ({', '.join(_PRICE_COLS)}) among {list(raw.columns)}")
        if str(pcol).strip().lower() in ("close", "price") and not price_column:
            log.warning("%s: using column %r; if it is not adjusted for splits and dividends, returns will be wrong", path, pcol)
        values = pd.to_numeric(raw[pcol], errors="coerce")
        _check_numeric(raw[pcol], values, path, str(pcol))
        dates = _parse_dates(raw[date_col], path)
        if ticker_col is not None:
            long = pd.DataFrame({"date": dates, "ticker": raw[ticker_col].astype(str).str.strip().to_numpy(), "v": values.to_numpy()})
            dup = long.duplicated(["date", "ticker"])
            if dup.any():
                r = long[dup].iloc[0]
                raise ImportFormatError(f"{path}: ticker {r.ticker} has two rows for {r.date:%Y-%m-%d}")
            panel = long.pivot(index="date", columns="ticker", values="v")
            layout = "long"
        else:
            tk = (ticker or path.name.split(".")[0]).upper()
            panel = pd.DataFrame({tk: values.to_numpy()}, index=dates)
            layout = "ohlcv"
    else:
        dates = _parse_dates(raw[date_col], path)
        cols = [c for c in raw.columns if c != date_col]
        if not cols:
            raise ImportFormatError(f"{path}: only a date column, no prices")
        data = {}
        for c in cols:
            v = pd.to_numeric(raw[c], errors="coerce")
            _check_numeric(raw[c], v, path, str(c))
            data[str(c).strip()] = v.to_numpy()
        panel = pd.DataFrame(data, index=dates)
        layout = "wide"
    panel.index.name = "date"
    panel.columns.name = None
    if not panel.index.is_monotonic_increasing and not panel.index.has_duplicates:
        # sorted, never silently: the warning is printed (README: "Importing your own prices")
        log.warning("%s: rows were not in date order; sorted by date before validation", path)
        panel = panel.sort_index()
        panel.attrs["sorted"] = True
    return panel.astype(float), layout


def _check_numeric(raw: pd.Series, values: pd.Series, path: Path, col: str) -> None:
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise ImportFormatError(f"{path}: column {col!r}, row {i + 1}: {raw.iloc[i]!r} is not a number")


def import_prices(path, name: str, data_dir=None, force: bool = False, ticker: str | None = None,
                  price_column: str | None = None, allow_jumps: bool = False) -> tuple[dict[str, Any], ValidationReport]:
    """Validate a user's price file and store it as dataset `name`; refuse it on any validation error."""
    if not _NAME_RE.match(name) or name in _RESERVED or name in bundled_names():
        raise ValueError(
            f"invalid dataset name {name!r}: use letters, digits, '_', '-', '.', and not "
            f"{', '.join(sorted(_RESERVED | set(bundled_names())))}"
        )
    store = DataStore(data_dir)
    if name in store.read_manifest()["datasets"] and not force:
        raise FileExistsError(f"dataset {name!r} already exists in {store.root}; pass --force to replace it")
    panel, layout = read_price_file(path, ticker=ticker, price_column=price_column)
    rep = validate_prices(panel, allow_jumps=allow_jumps)
    if panel.attrs.get("sorted"):
        from .validate import Issue

        rep.issues.insert(0, Issue("warning", "order", "*", "", "rows were not in date order; sorted by date"))
    rep.raise_if_errors(f"{path}")
    meta = {
        "allow_jumps": bool(allow_jumps),
        "source": f"import:{Path(path).resolve()}",
        "source_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "layout": layout,
        "imported_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return store.put_dataset(name, panel, meta), rep
