"""Loading price panels by name (bundled, cached, imported), listing datasets, importing files."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
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


def _as_date(name: str, value) -> pd.Timestamp:
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name} {value!r} is not a date: write it as YYYY-MM-DD") from None


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
    if tick is not None and not tick:
        raise ValueError("no tickers given (an empty list): name at least one, or pass tickers=None for the "
                         "whole dataset")
    bounds = {k: _as_date(k, v) for k, v in (("start", start), ("end", end)) if v is not None}
    if len(bounds) == 2 and bounds["start"] > bounds["end"]:
        raise ValueError(f"start {bounds['start']:%Y-%m-%d} is after end {bounds['end']:%Y-%m-%d}")
    if tick is not None:
        keys = [t.upper() if source == "cache" else t for t in tick]  # the cache holds tickers in upper case
        twice = list(dict.fromkeys(t for t in keys if keys.count(t) > 1))
        if twice:
            raise ValueError(f"ticker(s) {', '.join(twice)} given more than once ({' '.join(tick)}); name each ticker "
                             "once (one asset, one column)")
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
        panel = panel.loc[bounds.get("start"): bounds.get("end")]
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
        rows.append(dict(name=name, kind="bundled", tickers=e["tickers"], first=e["first"], last=e["last"], rows=e["rows"],
                         status="ok"))
    store = DataStore(data_dir)
    for e in store.entries():
        rows.append(dict(name=e.name, kind="imported" if e.kind == "dataset" else "cache", tickers=e.tickers,
                         first=e.meta.get("first", ""), last=e.meta.get("last", ""), rows=e.meta.get("rows", 0),
                         status=_file_status(store, e)))
    return rows


def _file_status(store: DataStore, e) -> str:
    """ok, missing (the file is gone), or damaged (a path outside the data dir, or not a parquet
    file: no PAR1 at both ends); cheap: the hash is checked when the data is read."""
    from .errors import CacheCorruptError

    try:
        path = store.entry_path("datasets" if e.kind == "dataset" else "tickers", e.name, e.meta)
    except CacheCorruptError:
        return "damaged"
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(0, 2)
            if f.tell() < 12:
                return "damaged"
            f.seek(-4, 2)
            tail = f.read(4)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "damaged"
    return "ok" if head == tail == b"PAR1" else "damaged"


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
    # a dataset named like a ticker (imported before such names were refused, or a ticker fetched
    # later): say which of the two this is
    if name in manifest["datasets"]:
        clash = _ticker_clash(name, store)
        if clash:
            where += (f" (not the ticker {name.upper()}, {clash}: this dataset takes the name; import it again "
                      f"under another name to show the ticker)")
    else:
        other = [d for d in manifest["datasets"] if d.upper() == name.upper()]
        if other:
            where += f" (not the imported dataset {other[0]!r})"
    return where, prices, validate_prices(prices)


def _ticker_clash(name: str, store: DataStore) -> str | None:
    """Where `name` is also a ticker (compared in upper case, as `data show` does): 'bundled ...',
    'cached in DIR', or None."""
    up = name.upper()
    for ds, e in provenance()["datasets"].items():
        if up in (str(t).upper() for t in e["tickers"]):
            return f"bundled, in {ds}"
    if up in store.read_manifest()["tickers"]:
        return f"cached in {store.root}"
    return None


# -- import ---------------------------------------------------------------------------------
def _find(cols: Iterable[str], wanted: Iterable[str]) -> str | None:
    by_low = {str(c).strip().lower(): c for c in cols}
    for w in wanted:
        if w in by_low:
            return by_low[w]
    return None


#: a time of day after a date, then a UTC offset (Z, UTC, GMT, +01:00, -0500, +09): the offset is
#: dropped, so every timestamp keeps the calendar date written in the file (its local date)
_OFFSET_RE = re.compile(r"^(.*\d:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$", re.I)
_TIME = r"(?:([T ])(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?"
_YMD_RE = re.compile(rf"^(\d{{4}})([-/.])(\d{{1,2}})\2(\d{{1,2}}){_TIME}$")
_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DM_RE = re.compile(rf"^(\d{{1,2}})([-/.])(\d{{1,2}})\2(\d{{4}}|\d{{2}}){_TIME}$")


def _strip_offset(text: str) -> str:
    m = _OFFSET_RE.match(text)
    return m.group(1).rstrip() if m else text


def _iso(y: int, m: int, d: int, t: tuple) -> str:
    sep, hh, mm, ss, frac = t
    return f"{y:04d}-{m:02d}-{d:02d}" + (f"T{int(hh):02d}:{mm}:{ss or '00'}{frac or ''}" if hh else "")


def _format_hint(example: str, day_first: bool) -> str:
    """The --date-format of a d/m or m/d date such as '01/02/2021 10:00'."""
    m = _DM_RE.match(_strip_offset(example))
    sep, year = m.group(2), "%Y" if len(m.group(4)) == 4 else "%y"
    fmt = sep.join(["%d", "%m"] if day_first else ["%m", "%d"]) + sep + year
    if m.group(6):
        fmt += m.group(5) + "%H:%M" + (":%S" if m.group(8) else "") + (".%f" if m.group(9) else "")
    return fmt


def _read_dm(text: list[str], rows: list[int], path: Path) -> tuple[list[str], str | None]:
    """ISO strings of d/m/y or m/d/y dates, and a note on which reading was taken; refuses an
    ambiguous file (no day above 12 anywhere, so both readings are valid) in one line."""
    ms = [_DM_RE.match(text[i]) for i in rows]
    a = [int(m.group(1)) for m in ms]
    b = [int(m.group(3)) for m in ms]
    hi_a = next((k for k, v in enumerate(a) if v > 12), None)
    hi_b = next((k for k, v in enumerate(b) if v > 12), None)
    if hi_a is not None and hi_b is not None:
        i, j = rows[hi_a], rows[hi_b]
        raise ImportFormatError(
            f"{path}: dates are not written one way: row {i + 1} {text[i]!r} has the day first, row {j + 1} "
            f"{text[j]!r} the month first; write every date one way, e.g. 2021-01-04")
    if hi_a is None and hi_b is None and any(x != y for x, y in zip(a, b)):
        k = next(k for k, (x, y) in enumerate(zip(a, b)) if x != y)
        i, m = rows[k], ms[k]
        y = int(m.group(4)) if len(m.group(4)) == 4 else _year2(int(m.group(4)))
        raise ImportFormatError(
            f"{path}: ambiguous dates: row {i + 1} {text[i]!r} reads as {y:04d}-{b[k]:02d}-{a[k]:02d} day first "
            f"or {y:04d}-{a[k]:02d}-{b[k]:02d} month first, and no date in the file has a day above 12; pass "
            f"--date-format {_format_hint(text[i], True)} (day first) or --date-format "
            f"{_format_hint(text[i], False)} (month first)")
    day_first = hi_a is not None or hi_b is None
    out = []
    for m, x, y_ in zip(ms, a, b):
        y = int(m.group(4)) if len(m.group(4)) == 4 else _year2(int(m.group(4)))
        d, mo = (x, y_) if day_first else (y_, x)
        out.append(_iso(y, mo, d, m.groups()[4:]))
    if (hi_a is not None or hi_b is not None) and len(ms) >= 4:
        # a few rows written the other way round in a daily file: read this way the dates are a
        # month apart, the other way (where it can be read) a day or so
        alt = [_iso(int(m.group(4)) if len(m.group(4)) == 4 else _year2(int(m.group(4))),
                    *((x, y_) if day_first else (y_, x)), m.groups()[4:]) for m, x, y_ in zip(ms, a, b)]
        if _median_gap(out) >= 25 and _median_gap(alt) <= 5:
            k = hi_a if hi_a is not None else hi_b
            raise ImportFormatError(
                f"{path}: the dates read {'day' if day_first else 'month'} first (as row {rows[k] + 1} "
                f"{text[rows[k]]!r} demands) are about a month apart, the other way round a day: the file mixes "
                f"both orders? Write every date one way, e.g. 2021-01-04, or pass --date-format")
    note = None
    if hi_a is not None:
        i = rows[hi_a]
        note = f"dates read day first ({_format_hint(text[i], True)}): row {i + 1} {text[i]!r} has a day above 12"
    elif hi_b is not None:
        i = rows[hi_b]
        note = f"dates read month first ({_format_hint(text[i], False)}): row {i + 1} {text[i]!r} has a day above 12"
    return out, note


def _median_gap(iso: list[str]) -> float:
    """Median days between consecutive distinct valid dates (sorted); nan with fewer than 3."""
    d = pd.to_datetime(pd.Series(iso), format="ISO8601", errors="coerce").dropna().drop_duplicates().sort_values()
    return float(d.diff().dt.days.median()) if len(d) >= 3 else float("nan")


def _year2(yy: int) -> int:
    return 2000 + yy if yy < 69 else 1900 + yy  # strptime's %y rule


def _check_parsed(parsed: pd.Series, text: list[str], path: Path, how: str = "") -> None:
    if parsed.isna().any():
        i = int(parsed.isna().to_numpy().argmax())
        raise ImportFormatError(f"{path}: row {i + 1}: cannot read {text[i]!r} as a date{how}")


def _parse_dates(values: pd.Series | pd.Index, path: Path, date_format: str | None = None,
                 notes: list[str] | None = None) -> pd.DatetimeIndex:
    """Calendar dates of a date column. Offsets are dropped (each timestamp keeps the date written
    in the file); d/m/y vs m/d/y is decided by a day above 12, else refused as ambiguous unless
    `date_format` says; dates after today are refused."""
    import warnings

    vals = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(vals):
        idx = pd.DatetimeIndex(vals)
        if idx.tz is not None:
            idx = idx.tz_localize(None)  # the local calendar date, as for offsets in text
        text = [str(v) for v in idx]
        _check_parsed(pd.Series(idx), text, path)
        return _no_future(idx.normalize(), text, path)
    if pd.api.types.is_integer_dtype(vals) and vals.between(19000101, 21001231).all():
        vals = vals.astype(str)  # YYYYMMDD written as a number
    elif pd.api.types.is_numeric_dtype(vals) and not pd.api.types.is_bool_dtype(vals):
        # numbers are not dates (pandas would read them as nanoseconds after 1970)
        hint = next((f"; the file seems to be separated by {c!r}, not ','" for c in ";|\t" if c in str(vals.name)), "")
        raise ImportFormatError(f"{path}: no date column: the first column ({vals.name!r}) holds numbers such as "
                                f"{vals.iloc[0]!r}; put the dates (e.g. 2021-01-04) in a first column named date{hint}")
    text = ["" if (not isinstance(v, str) and pd.isna(v)) else str(v).strip() for v in vals]
    empty = [i for i, t in enumerate(text) if not t]
    if empty:
        raise ImportFormatError(f"{path}: row {empty[0] + 1}: no date (an empty cell)")
    if date_format:
        from datetime import datetime as _dt

        keep_tz = "%z" in date_format or "%Z" in date_format

        def one(t: str):
            try:
                return _dt.strptime(t if keep_tz else _strip_offset(t), date_format).replace(tzinfo=None)
            except ValueError:
                return None

        got = [one(t) for t in text]
        bad = next((i for i, g in enumerate(got) if g is None), None)
        if bad is not None:
            raise ImportFormatError(f"{path}: row {bad + 1}: {text[bad]!r} does not match --date-format {date_format!r}")
        idx = pd.DatetimeIndex(got)
    else:
        plain = [_strip_offset(t) for t in text]
        if notes is not None and plain != text:
            notes.append("time-zone offsets dropped: each timestamp keeps the calendar date written in the file")
        kinds = ["ymd" if (_YMD_RE.match(t) or _COMPACT_RE.match(t)) else "dm" if _DM_RE.match(t) else "other"
                 for t in plain]
        odd = next((i for i, k in enumerate(kinds) if k != kinds[0]), None)
        if odd is not None:
            raise ImportFormatError(f"{path}: row {odd + 1}: {text[odd]!r} is not written like row 1's {text[0]!r}; "
                                    "write every date one way (e.g. 2021-01-04) or pass --date-format")
        if kinds[0] == "ymd":
            iso = []
            for t in plain:
                m = _COMPACT_RE.match(t)
                if m:
                    iso.append(_iso(int(m.group(1)), int(m.group(2)), int(m.group(3)), (None,) * 5))
                else:
                    m = _YMD_RE.match(t)
                    iso.append(_iso(int(m.group(1)), int(m.group(3)), int(m.group(4)), m.groups()[4:]))
            parsed = pd.Series(pd.to_datetime(pd.Series(iso), format="ISO8601", errors="coerce"))
        elif kinds[0] == "dm":
            iso, note = _read_dm(plain, list(range(len(plain))), path)
            if note and notes is not None:
                notes.append(note)
            parsed = pd.Series(pd.to_datetime(pd.Series(iso), format="ISO8601", errors="coerce"))
        else:  # month names and the like: pandas infers one format from the first date
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    parsed = pd.Series(pd.to_datetime(pd.Series(plain), errors="coerce"))
                except (ValueError, TypeError, OverflowError) as exc:
                    raise ImportFormatError(f"{path}: cannot read dates such as {text[0]!r} ({exc}); write them "
                                            "as 2021-01-04 or pass --date-format") from None
            if not pd.api.types.is_datetime64_any_dtype(parsed):
                raise ImportFormatError(f"{path}: cannot read dates such as {text[0]!r}; write them as 2021-01-04 "
                                        "or pass --date-format")
            if parsed.dt.tz is not None:
                parsed = parsed.dt.tz_localize(None)
        _check_parsed(parsed, text, path)
        idx = pd.DatetimeIndex(parsed)
    return _no_future(idx.normalize(), text, path)


def _no_future(idx: pd.DatetimeIndex, text: list[str], path: Path) -> pd.DatetimeIndex:
    today = pd.Timestamp.today().normalize()
    late = np.flatnonzero(idx > today)
    if len(late):
        i = int(late[0])
        raise ImportFormatError(
            f"{path}: row {i + 1}: date {text[i]!r} ({idx[i]:%Y-%m-%d}) is after today ({today:%Y-%m-%d}; "
            f"{len(late)} such row(s)); prices cannot come from the future: check the year, or the day/month "
            "order (--date-format)")
    return idx


_SEPARATORS = (",", ";", "\t", "|")
_COMMA_DECIMAL = re.compile(r"[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+")
_POINT_DECIMAL = re.compile(r"[-+]?\d*\.\d+")
_THOUSANDS_ONLY = re.compile(r"[-+]?\d{1,3}(?:\.\d{3})+")


def _sniff(path: Path, n_lines: int = 200, encoding: str = "utf-8") -> tuple[str, bool]:
    """(separator, decimal comma?) of a text file: the separator is the one of , ; tab | that the
    header line holds most often; decimal commas (782,5 or 1.234,56) only with another separator,
    when cells written that way outnumber cells with a decimal point."""
    import bz2
    import gzip
    import lzma

    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else bz2.open if name.endswith(".bz2") else \
        lzma.open if name.endswith(".xz") else open if not name.endswith(".zip") else None
    if opener is None:
        return ",", False
    try:
        with opener(path, "rt", encoding=encoding, errors="replace") as f:
            lines = [ln.rstrip("\r\n") for _, ln in zip(range(n_lines), f)]
    except (OSError, EOFError, lzma.LZMAError):
        return ",", False  # pandas says what is wrong with the file
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return ",", False
    counts = {c: lines[0].count(c) for c in _SEPARATORS}
    sep = max(_SEPARATORS, key=lambda c: counts[c]) if max(counts.values()) else ","
    if sep == ",":
        return sep, False
    cells = [c.strip().strip('"') for ln in lines[1:] for c in ln.split(sep)]
    comma = sum(bool(_COMMA_DECIMAL.fullmatch(c)) for c in cells)
    point = sum(bool(_POINT_DECIMAL.fullmatch(c)) and not _THOUSANDS_ONLY.fullmatch(c) for c in cells)
    return sep, comma > point


def _numbers(raw: pd.Series, decimal_comma: bool) -> pd.Series:
    """Numbers of a price column; with decimal commas, 1.234,56 is 1234.56 and 782,5 is 782.5
    (anything else is not a number)."""
    if not decimal_comma:
        return pd.to_numeric(raw, errors="coerce")
    s = raw.astype("string").str.strip()
    ok = s.str.fullmatch(r"[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?").fillna(False).astype(bool)
    conv = s.where(ok).str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(conv, errors="coerce").astype(float)


def read_price_file(path: str | Path, ticker: str | None = None, price_column: str | None = None,
                    date_format: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read a user's CSV/parquet price file into a wide adjusted-close panel: (panel, layout).

    CSV: the separator (, ; tab |) and decimal commas are detected (`_sniff`); dates as in
    `_parse_dates`, or read with `date_format` (strptime codes, e.g. %d/%m/%Y)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffixes = "".join(path.suffixes).lower()
    decimal_comma = False
    try:
        if ".parquet" in suffixes or suffixes.endswith(".pq"):
            raw = pd.read_parquet(path)
            if isinstance(raw.index, pd.DatetimeIndex):
                raw = raw.reset_index(names=raw.index.name or "date")
        elif ".csv" in suffixes or ".txt" in suffixes or ".tsv" in suffixes:
            encoding = _text_encoding(path, suffixes)
            sep, decimal_comma = _sniff(path, encoding=encoding)
            raw = pd.read_csv(path, sep=sep, dtype=str if decimal_comma else None, encoding=encoding)
            _no_duplicate_columns(path, sep, encoding)
            if not isinstance(raw.index, pd.RangeIndex):  # pandas took the extra first cells as an index
                raise ImportFormatError(
                    f"{path}: row 1 has more cells than the header has names ({len(raw.columns)}, separated by "
                    f"{sep!r}): a separator inside a value, such as a decimal comma? Use ';' between cells")
        else:
            raise ImportFormatError(f"{path}: unknown file type {suffixes or '(none)'}; use .csv, .tsv, .csv.gz or .parquet")
    except ImportFormatError:
        raise
    except Exception as exc:
        raise ImportFormatError(f"{path}: cannot be read ({' '.join(str(exc).split())})") from exc
    if raw.empty:
        raise ImportFormatError(f"{path}: no rows")
    notes: list[str] = []
    if decimal_comma:
        notes.append("numbers read with decimal commas (1.234,56 is 1234.56)")
    date_col = _find(raw.columns, _DATE_COLS) or raw.columns[0]
    ticker_col = _find(raw.columns, _TICKER_COLS)
    has_ohlc = all(_find(raw.columns, [c]) is not None for c in ("open", "high", "low", "close"))
    if ticker_col is not None or has_ohlc:
        pcol = _find(raw.columns, [price_column.lower()]) if price_column else _find(raw.columns, _PRICE_COLS)
        if pcol is None:
            raise ImportFormatError(f"{path}: no price column ({', '.join(_PRICE_COLS)}) among {list(raw.columns)}")
        if str(pcol).strip().lower() in ("close", "price") and not price_column:
            log.warning("%s: using column %r; if it is not adjusted for splits and dividends, returns will be wrong", path, pcol)
        values = _numbers(raw[pcol], decimal_comma)
        _check_numeric(raw[pcol], values, path, str(pcol))
        dates = _parse_dates(raw[date_col], path, date_format, notes)
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
        if price_column:  # a wide file has one column per ticker: no price column to choose
            raise ImportFormatError(f"{path}: --price-column {price_column!r} applies to long (date, ticker, price) "
                                    f"and OHLCV files; this file is wide (one column per ticker: "
                                    f"{', '.join(map(str, list(raw.columns)[1:4]))}...); leave --price-column out")
        dates = _parse_dates(raw[date_col], path, date_format, notes)
        cols = [c for c in raw.columns if c != date_col]
        if not cols:
            raise ImportFormatError(f"{path}: only a date column, no prices")
        data = {}
        for c in cols:
            v = _numbers(raw[c], decimal_comma)
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
    panel = panel.astype(float)
    panel.attrs["notes"] = notes
    return panel, layout


_COMPRESSED = {b"\x1f\x8b": ("gzip", ".gz"), b"BZh": ("bzip2", ".bz2"), b"\xfd7zXZ\x00": ("xz", ".xz"),
               b"PK\x03\x04": ("zip", ".zip")}
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _text_encoding(path: Path, suffixes: str) -> str:
    """The encoding of a plain text price file from its first bytes: UTF-8, or UTF-8/UTF-16 with a
    byte-order mark; a compressed file whose name does not say so is refused with the name to use."""
    if any(suffixes.endswith(ext) for _, ext in _COMPRESSED.values()):
        return "utf-8"  # pandas decompresses by the name
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, (kind, ext) in _COMPRESSED.items():
        if head.startswith(magic):
            raise ImportFormatError(
                f"{path}: the file is {kind}-compressed (it starts with the bytes {magic[:2].hex(' ')}) but its "
                f"name ends in {path.suffix}; rename it to {path.name}{ext} (or decompress it)")
    return next((enc for bom, enc in _BOMS if head.startswith(bom)), "utf-8")


def _no_duplicate_columns(path: Path, sep: str, encoding: str) -> None:
    """Refuse a header that names a column twice (pandas would rename the second AAA to AAA.1)."""
    header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, encoding=encoding, keep_default_na=False)
    names = [str(c).strip() for c in header.iloc[0]] if len(header) else []
    dup = sorted({n for n in names if n and names.count(n) > 1})
    if dup:
        raise ImportFormatError(
            f"{path}: the header names column(s) {', '.join(repr(d) for d in dup)} more than once; give every column "
            "its own name (one column per ticker)")


#: the fewest dates an imported dataset may have: two returns, the least for a volatility (training
#: needs far more: a window of days plus train, validation and test splits)
MIN_IMPORT_ROWS = 3


def _check_numeric(raw: pd.Series, values: pd.Series, path: Path, col: str) -> None:
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise ImportFormatError(f"{path}: column {col!r}, row {i + 1}: {raw.iloc[i]!r} is not a number")


def import_prices(path, name: str, data_dir=None, force: bool = False, ticker: str | None = None,
                  price_column: str | None = None, allow_jumps: bool = False,
                  date_format: str | None = None) -> tuple[dict[str, Any], ValidationReport]:
    """Validate a user's price file and store it as dataset `name`; refuse it on any validation error.
    A name that is a bundled or cached ticker (in any case) is refused: `data show NAME` and
    `--data NAME` would mean two things."""
    if not _NAME_RE.match(name) or name in _RESERVED or name in bundled_names():
        raise ValueError(
            f"invalid dataset name {name!r}: use letters, digits, '_', '-', '.', and not "
            f"{', '.join(sorted(_RESERVED | set(bundled_names())))}"
        )
    store = DataStore(data_dir)
    clash = _ticker_clash(name, store)
    if clash:
        raise ValueError(f"dataset name {name!r} is a ticker ({clash}): `eqtrade data show {name}` and --data {name} "
                         f"would mean two things; choose another name, e.g. --name {name.lower()}-mine")
    if name in store.read_manifest()["datasets"] and not force:
        raise FileExistsError(f"dataset {name!r} already exists in {store.root}; pass --force to replace it")
    panel, layout = read_price_file(path, ticker=ticker, price_column=price_column, date_format=date_format)
    if len(panel) < MIN_IMPORT_ROWS:
        raise ImportFormatError(
            f"{path}: only {len(panel)} date row(s); a dataset needs at least {MIN_IMPORT_ROWS} (two daily returns) "
            "and training needs far more (hundreds of days: a window plus train, validation and test splits)")
    rep = validate_prices(panel, allow_jumps=allow_jumps)
    from .validate import Issue

    for note in reversed(panel.attrs.get("notes", [])):
        rep.issues.insert(0, Issue("info", "format", "*", "", note))
    if panel.attrs.get("sorted"):
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
