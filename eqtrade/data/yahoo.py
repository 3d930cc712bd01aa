"""Download daily prices with yfinance into the parquet cache, incrementally and atomically.

yfinance does not raise on most failures: `yf.download` catches them per ticker, logs them on the
"yfinance" logger and returns an empty (or all-NaN) frame. We therefore download one ticker per
call, capture that logger's messages, and classify an empty result:

- rate-limited   the message names YFRateLimitError / "Too Many Requests": retried with
                 exponential backoff, then reported;
- no-network     Yahoo's host cannot be resolved/reached (checked directly, since on a DNS
                 failure yfinance may only say "possibly delisted");
- unknown-ticker Yahoo answered but has no data: unknown or delisted symbol;
- no-data        no rows in the requested range (e.g. a range before the listing).

A large universe (`fetch --tickers-file`) is first downloaded in batches of `batch_size` tickers
with yfinance's threaded multi-ticker download (one request per ticker, in parallel threads);
a batch that is rate limited as a whole waits and retries with exponential backoff. Every ticker
the batch did not deliver (and every incremental update of a cached ticker, whose dates differ
per ticker) then goes through the one-ticker path above, with its retries and its classified
error, so a batch changes the speed and nothing else.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd

from .errors import CacheCorruptError, DataError
from .store import OHLCV_COLUMNS, DataStore

log = logging.getLogger(__name__)

YAHOO_HOST = "query1.finance.yahoo.com"
DEFAULT_START = "2010-01-01"
#: calendar days of the cache fetched again by an incremental fetch, to detect a re-based history
OVERLAP_DAYS = 10
_RENAME = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Adj Close": "adj_close", "Volume": "volume"}
_RATE_WORDS = ("ratelimit", "rate limit", "too many requests", "429")
_NET_WORDS = ("resolve", "connection", "network", "timed out", "timeout", "curl: (6)", "curl: (7)")
_sleep = time.sleep  # replaced in tests


@dataclass
class FetchResult:
    """Outcome of fetching one ticker."""

    ticker: str
    status: str  # "ok" | "up-to-date" | "failed"
    rows: int = 0
    rows_added: int = 0
    first: str = ""
    last: str = ""
    cause: str = ""  # for failures: rate-limited | no-network | unknown-ticker | no-data | corrupt-cache | error
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


class _Capture(logging.Handler):
    """Collects what yfinance logs at WARNING and above during one download."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def network_ok(host: str = YAHOO_HOST, timeout: float = 3.0) -> bool:
    """True when Yahoo Finance's API host resolves and accepts a TCP connection."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _normalise(raw: pd.DataFrame | None, ticker: str) -> pd.DataFrame:
    """yfinance's frame (MultiIndex (Price, Ticker) or flat columns) -> our OHLCV columns."""
    if raw is None or raw.empty:
        return pd.DataFrame(columns=OHLCV_COLUMNS, index=pd.DatetimeIndex([], name="date"), dtype=float)
    df = raw
    if isinstance(df.columns, pd.MultiIndex):
        names = list(df.columns.names)
        level = names.index("Ticker") if "Ticker" in names else 1
        keys = df.columns.get_level_values(level)
        if ticker not in set(keys):
            if len(set(keys)) != 1:
                raise DataError(f"{ticker}: yfinance returned tickers {sorted(set(keys))}, not {ticker}")
            ticker = keys[0]
        df = df.xs(ticker, axis=1, level=level)
    df = df.rename(columns=_RENAME)
    if "adj_close" not in df.columns:
        raise DataError(
            f"{ticker}: yfinance returned columns {list(df.columns)} without 'Adj Close' "
            "(was auto_adjust=True?); eqtrade stores raw OHLC plus the adjusted close"
        )
    df = df.reindex(columns=OHLCV_COLUMNS).astype(float)
    idx = pd.DatetimeIndex(df.index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    df.index = idx.normalize().rename("date")
    df = df.dropna(how="all")
    return df[~df.index.duplicated(keep="last")].sort_index()


def _classify(messages: list[str], exc: BaseException | None, tickers=()) -> tuple[str, str]:
    text = " | ".join(messages + ([f"{type(exc).__name__}: {exc}"] if exc else []))
    low = text.lower()
    for t in sorted((str(t).lower() for t in tickers), key=len, reverse=True):
        low = low.replace(t, " ")  # a symbol such as T429 is not an HTTP status 429
    low = low.replace(" ", "")
    if (exc is not None and type(exc).__name__ == "YFRateLimitError") or any(w.replace(" ", "") in low for w in _RATE_WORDS):
        return "rate-limited", text
    if any(w.replace(" ", "") in low for w in _NET_WORDS) or not network_ok():
        return "no-network", text
    if text:
        return "unknown-ticker", text
    return "no-data", text


def _download_once(ticker, start: pd.Timestamp | None, end_excl: pd.Timestamp | None, timeout: float,
                   threads: bool = False):
    """One yf.download call for a ticker (or a list of tickers, threaded): (frame, messages, exception)."""
    import yfinance as yf

    cap = _Capture()
    ylog = logging.getLogger("yfinance")
    ylog.addHandler(cap)
    # yfinance's own messages (three curl errors per ticker when offline) are captured and
    # summarised in one line per ticker; they reach the terminal only with --verbose
    propagate = ylog.propagate
    ylog.propagate = log.isEnabledFor(logging.DEBUG)
    exc: BaseException | None = None
    raw = None
    try:
        raw = yf.download(
            ticker,
            start=None if start is None else start.strftime("%Y-%m-%d"),
            end=None if end_excl is None else end_excl.strftime("%Y-%m-%d"),
            interval="1d",
            auto_adjust=False,  # keep raw OHLC and the 'Adj Close' column
            actions=False,
            repair=False,
            keepna=False,
            progress=False,
            threads=threads,
            group_by="column",
            multi_level_index=True,
            timeout=timeout,
        )
    except Exception as e:  # older yfinance versions raise some errors (rate limit) directly
        exc = e
    finally:
        ylog.removeHandler(cap)
        ylog.propagate = propagate
    return raw, cap.messages, exc


def _download(ticker, start, end_excl, retries, backoff, timeout) -> tuple[pd.DataFrame, str, str]:
    """Download with retries on rate limiting: (frame, cause, message); cause '' on success."""
    for attempt in range(retries + 1):
        raw, messages, exc = _download_once(ticker, start, end_excl, timeout)
        df = _normalise(raw, ticker) if exc is None else _normalise(None, ticker)
        if not df.empty:
            return df, "", ""
        cause, text = _classify(messages, exc, [ticker])
        if cause == "rate-limited" and attempt < retries:
            wait = backoff * 2**attempt
            log.warning("%s: rate limited by Yahoo, retry %d/%d in %.0fs", ticker, attempt + 1, retries, wait)
            _sleep(wait)
            continue
        if cause == "rate-limited":
            text = f"rate limited by Yahoo Finance after {retries + 1} attempts; try again later ({text})"
        elif cause == "no-network":
            log.debug("%s: yfinance said: %s", ticker, text)
            text = f"cannot reach Yahoo Finance ({YAHOO_HOST}): no network or DNS; details with --verbose"
        return df, cause, text
    raise ValueError(f"retries must be >= 0, got {retries}")


def _download_batch(tickers: list[str], start, end_excl, retries: int, backoff: float,
                    timeout: float) -> dict[str, pd.DataFrame]:
    """One threaded download of several tickers: {ticker: frame} for those it delivered (maybe none).
    A batch rate limited as a whole is retried with exponential backoff."""
    for attempt in range(retries + 1):
        raw, messages, exc = _download_once(list(tickers), start, end_excl, timeout, threads=True)
        got = {}
        if exc is None and raw is not None and not raw.empty:
            for t in tickers:
                try:
                    df = _normalise(raw, t)
                except DataError:
                    continue  # not in the frame: the one-ticker path will say why
                if not df.empty:
                    got[t] = df
        if got:
            return got
        cause, _ = _classify(messages, exc, tickers)
        if cause != "rate-limited" or attempt == retries:
            return {}
        wait = backoff * 2**attempt
        log.warning("batch of %d tickers rate limited by Yahoo, retry %d/%d in %.0fs", len(tickers), attempt + 1,
                    retries, wait)
        _sleep(wait)
    return {}


def fetch_ticker(
    store: DataStore,
    ticker: str,
    start: str | None = DEFAULT_START,
    end: str | None = None,
    refresh: bool = False,
    retries: int = 3,
    backoff: float = 2.0,
    timeout: float = 10.0,
    prefetched: pd.DataFrame | None = None,
) -> FetchResult:
    """Fetch one ticker into the cache: only dates after the cached ones unless `refresh`.
    `prefetched`: its full history from `start` already downloaded (by a batch), used when the
    ticker has no cache to extend."""
    import yfinance as yf

    ticker = ticker.strip().upper()
    start_ts = pd.Timestamp(start) if start else None
    end_ts = pd.Timestamp(end) if end else None
    end_excl = end_ts + pd.Timedelta(days=1) if end_ts is not None else None  # --end is inclusive
    cached = None
    if not refresh and store.ticker_entry(ticker) is not None:
        try:
            cached = store.get_ticker(ticker)
        except CacheCorruptError as e:
            return FetchResult(ticker, "failed", cause="corrupt-cache",
                               message=f"{e} (or run the same fetch with --refresh)")
        if start_ts is not None and len(cached) and start_ts < cached.index[0] - pd.Timedelta(days=7):
            log.info("%s: --start %s is before the cache (%s): fetching everything", ticker, start, cached.index[0].date())
            cached = None
    today = pd.Timestamp(datetime.now(timezone.utc).date())
    req_start = start_ts
    if cached is not None and len(cached):
        if (end_excl is not None and cached.index[-1] + pd.Timedelta(days=1) >= end_excl) or \
                cached.index[-1] + pd.Timedelta(days=1) >= today:
            return _result(ticker, "up-to-date", cached, 0)
        # ask again for the last few cached days: Yahoo re-bases the whole adjusted history after
        # every dividend and split, and the overlap shows whether it did since the cache was written
        req_start = cached.index[-1] - pd.Timedelta(days=OVERLAP_DAYS)
    if cached is None and prefetched is not None and not prefetched.empty:
        new, cause, text = prefetched, "", ""
    else:
        new, cause, text = _download(ticker, req_start, end_excl, retries, backoff, timeout)
    if cause:
        if cached is not None and cause in ("no-data", "unknown-ticker"):
            # yfinance says "possibly delisted; no price data found" for an empty new range too
            res = _result(ticker, "up-to-date", cached, 0)
            res.message = f"no rows after {res.last} ({text})" if text else ""
            return res
        return FetchResult(ticker, "failed", cause=cause, message=f"{ticker}: {cause}: {text}".rstrip(": "))
    new = new.loc[new.index < today]  # a bar dated today is not final: never cached
    rebased = False
    if cached is not None and len(cached) and _adjustment_changed(cached, new):
        # the adjusted closes are on a new basis: appending would leave a false return at the join
        # (about minus the dividend yield; -50% for a 2:1 split). Rebuild the history instead.
        log.warning("%s: Yahoo re-based the adjusted history since the last fetch; downloading it again", ticker)
        full_start = min(cached.index[0], start_ts) if start_ts is not None else cached.index[0]
        new, cause, text = _download(ticker, full_start, end_excl, retries, backoff, timeout)
        if cause:
            return FetchResult(ticker, "failed", cause=cause,
                               message=f"{ticker}: adjusted history re-based; full download failed: {cause}: {text}")
        new = new.loc[new.index < today]
        cached, rebased = None, True
    if new.empty and cached is not None:
        return _result(ticker, "up-to-date", cached, 0)
    merged = new if cached is None else pd.concat([cached, new])
    merged = merged[~merged.index.duplicated(keep="last")].sort_index()
    meta = {
        "source": "Yahoo Finance via yfinance",
        "yfinance_version": getattr(yf, "__version__", "unknown"),
        "fetched_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "auto_adjust": False,
        "columns": OHLCV_COLUMNS,
    }
    store.put_ticker(ticker, merged, meta)
    res = _result(ticker, "ok", merged, len(merged) - (0 if cached is None else len(cached)))
    if rebased:
        res.message = "adjusted history re-based by Yahoo since the last fetch (dividend or split): rebuilt"
    return res


def _adjustment_changed(cached: pd.DataFrame, new: pd.DataFrame, tol: float = 1e-6) -> bool:
    """Whether the adjusted closes of the days both frames hold differ (a new adjustment basis)."""
    both = cached.index.intersection(new.index)
    if len(both) == 0:
        return False
    a, b = cached.loc[both, "adj_close"].to_numpy(), new.loc[both, "adj_close"].to_numpy()
    return bool((abs(a - b) > tol * abs(a)).any())


def _result(ticker: str, status: str, df: pd.DataFrame, added: int) -> FetchResult:
    return FetchResult(ticker, status, rows=len(df), rows_added=added,
                       first=df.index[0].strftime("%Y-%m-%d") if len(df) else "",
                       last=df.index[-1].strftime("%Y-%m-%d") if len(df) else "")


def fetch(
    tickers: list[str],
    start: str | None = DEFAULT_START,
    end: str | None = None,
    data_dir=None,
    refresh: bool = False,
    retries: int = 3,
    backoff: float = 2.0,
    progress: bool = True,
    batch_size: int = 1,
) -> list[FetchResult]:
    """Fetch several tickers; each succeeds or fails on its own (see FetchResult.cause).
    batch_size > 1: tickers without a cache are first downloaded that many at a time with
    yfinance's threaded download (see the module docstring); 1 (default): one request per ticker."""
    from ..util import progress_bar

    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if isinstance(tickers, str):
        tickers = [tickers]
    empty = [repr(t) for t in tickers if not str(t).strip()]
    if empty:
        raise ValueError(f"an empty ticker symbol ({empty[0]}) among the tickers; give Yahoo symbols such as AAPL")
    s_ts, e_ts = check_date("start", start), check_date("end", end)
    if s_ts is not None and e_ts is not None and s_ts > e_ts:
        raise ValueError(f"start {start} is after end {end}; give start <= end")
    store = DataStore(data_dir)
    store.read_manifest()  # a corrupt manifest stops everything before any download
    tickers = list(dict.fromkeys(t.strip().upper() for t in tickers if t.strip()))  # in order, once each
    if not tickers:
        raise ValueError("no tickers to fetch")
    offline = False  # Yahoo Finance unreachable: the tickers not yet tried are not tried
    batch_tried: set[str] = set()  # the tickers of the batch that found no network
    prefetched: dict[str, pd.DataFrame] = {}
    fresh = [t for t in tickers if refresh or store.ticker_entry(t) is None]
    if batch_size > 1 and len(fresh) > 1:
        start_ts = pd.Timestamp(start) if start else None
        end_excl = pd.Timestamp(end) + pd.Timedelta(days=1) if end else None
        bar = progress_bar(total=len(fresh), desc="download", unit="ticker", progress=progress)
        n_batches = -(-len(fresh) // batch_size)
        for k, i in enumerate(range(0, len(fresh), batch_size), 1):
            batch = fresh[i : i + batch_size]
            got = _download_batch(batch, start_ts, end_excl, retries, backoff, 10.0)
            prefetched.update(got)
            bar.update(len(batch))
            bar.set_postfix_str(f"{len(prefetched)} delivered")
            if not got:
                if not prefetched and not network_ok():
                    log.warning("batch %d/%d (%d tickers): nothing delivered: cannot reach Yahoo Finance (%s); "
                                "stopping the download", k, n_batches, len(batch), YAHOO_HOST)
                    offline, batch_tried = True, set(batch)
                    break
                log.warning("batch %d/%d (%d tickers): nothing delivered; each is tried again on its own",
                            k, n_batches, len(batch))
        bar.close()
    results = []
    bar = progress_bar(tickers, desc="fetch" if not prefetched else "store", unit="ticker", progress=progress)
    for t in bar:
        bar.set_postfix_str(t)
        if offline and t not in prefetched:
            why = NOT_TRIED if t in batch_tried else f"not tried: {NOT_TRIED}"
            results.append(FetchResult(t, "failed", cause="no-network", message=f"{t}: no-network: {why}"))
            continue
        try:
            res = fetch_ticker(store, t, start=start, end=end, refresh=refresh, retries=retries, backoff=backoff,
                               prefetched=prefetched.pop(t, None))
        except DataError as e:
            res = FetchResult(t.upper(), "failed", cause="error", message=str(e))
        if res.failed:
            log.debug(res.message)  # the command prints one line per failed ticker at the end
        results.append(res)
        if len(results) == OFFLINE_AFTER and all(r.cause == "no-network" for r in results) and len(tickers) > len(results):
            offline = True  # the first few all failed for want of a network: the rest would too
            log.warning("the first %d tickers failed: cannot reach Yahoo Finance (%s); the other %d are not tried",
                        len(results), YAHOO_HOST, len(tickers) - len(results))
    return results


#: consecutive no-network failures, from the first ticker on, after which fetch stops trying
OFFLINE_AFTER = 3
NOT_TRIED = f"cannot reach Yahoo Finance ({YAHOO_HOST}): no network or DNS"


def check_date(what: str, text) -> pd.Timestamp | None:
    """A --start/--end date written YYYY-MM-DD (None: open), or a ValueError naming it."""
    if text is None or text == "":
        return None
    import re

    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValueError(f"--{what} {text!r}: write the date as YYYY-MM-DD, e.g. 2010-01-01")
    try:
        return pd.Timestamp(text.strip())
    except ValueError:
        raise ValueError(f"--{what} {text!r} is not a calendar date; write it as YYYY-MM-DD, e.g. 2010-01-01") from None


def read_tickers_file(path) -> list[str]:
    """Tickers from a text file: one a line (commas and spaces also separate); '#' starts a comment."""
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise DataError(f"--tickers-file {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"--tickers-file {p}: cannot read it ({e})") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for tok in line.split("#", 1)[0].replace(",", " ").split():
            if not all(c.isalnum() or c in ".-^=_" for c in tok):
                raise DataError(f"--tickers-file {p}, line {n}: {tok!r} is not a ticker symbol")
            out.append(tok.upper())
    if not out:
        raise DataError(f"--tickers-file {p}: no tickers in it (one a line; '#' starts a comment)")
    return out
