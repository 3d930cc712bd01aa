"""Shared fixtures. yfinance is mocked at its boundary (`yfinance.download`) with frames of its
real shape: MultiIndex columns (Price, Ticker), a tz-naive 'Date' index, failures logged on the
'yfinance' logger and an empty frame returned, exactly as yfinance 1.x does."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# pixel tasks render through EGL (Mesa, software, on these machines); MuJoCo reads MUJOCO_GL once, at
# its first import, so the whole session uses it (the state tasks do not render and work with it too)
import ctypes.util  # noqa: E402
import os  # noqa: E402

if ctypes.util.find_library("EGL"):
    os.environ.setdefault("MUJOCO_GL", "egl")

# one torch intra-op thread, as `eqtrade train` runs (run.threads = 1): the networks are small, and the
# suite's processes (pytest-xdist workers, Ray trials, subprocesses) share the cores; more threads per
# process only contend (bench/bench_threads.py). Set before torch is imported, and again after.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
PRICE_FIELDS = ["Adj Close", "Close", "High", "Low", "Open", "Volume"]


def yf_frame(ticker: str, adj: pd.Series) -> pd.DataFrame:
    """A frame shaped like `yf.download(ticker, auto_adjust=False, multi_level_index=True)`."""
    rng = np.random.default_rng(sum(map(ord, ticker)))
    close = adj * 1.25  # unadjusted close above the adjusted one (dividends)
    cols = {
        "Adj Close": adj.to_numpy(),
        "Close": close.to_numpy(),
        "High": (close * 1.01).to_numpy(),
        "Low": (close * 0.99).to_numpy(),
        "Open": close.to_numpy() * (1 + rng.normal(0, 0.002, len(adj))),
        "Volume": rng.integers(1e6, 1e7, len(adj)).astype(float),
    }
    df = pd.DataFrame(cols, index=pd.DatetimeIndex(adj.index, name="Date"))
    df.columns = pd.MultiIndex.from_product([PRICE_FIELDS, [ticker]], names=["Price", "Ticker"])
    return df


def yf_empty(ticker: str) -> pd.DataFrame:
    """What yf.download returns for a failed ticker: no rows, the usual columns."""
    df = pd.DataFrame(columns=pd.MultiIndex.from_product([PRICE_FIELDS, [ticker]], names=["Price", "Ticker"]),
                      index=pd.DatetimeIndex([], name="Date"), dtype=float)
    return df


class FakeYahoo:
    """Replaces yfinance.download. Real prices come from the bundled panel (AAPL, MSFT, ...)."""

    def __init__(self):
        from eqtrade.data import load_bundled

        self.panel = load_bundled("sp500-20")
        self.calls: list[dict] = []
        self.unknown: set[str] = set()
        self.rate_limited: dict[str, int] = {}  # ticker -> number of calls that are rate limited
        self.offline = False
        self.price_scale: dict[str, float] = {}

    def download(self, tickers, start=None, end=None, **kw):
        if not isinstance(tickers, str) and len(tickers) > 1:
            return self._download_many(list(tickers), start, end, **kw)
        ticker = tickers if isinstance(tickers, str) else tickers[0]
        self.calls.append(dict(ticker=ticker, start=start, end=end, **kw))
        ylog = logging.getLogger("yfinance")
        if self.offline:
            ylog.error("\n1 Failed download:")
            ylog.error(f"['{ticker}']: YFTzMissingError('possibly delisted; no timezone found')")
            return yf_empty(ticker)
        if self.rate_limited.get(ticker, 0) > 0:
            self.rate_limited[ticker] -= 1
            ylog.error("\n1 Failed download:")
            ylog.error(f"['{ticker}']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')")
            return yf_empty(ticker)
        if ticker in self.unknown or ticker not in self.panel.columns:
            ylog.error("\n1 Failed download:")
            ylog.error(f"['{ticker}']: YFPricesMissingError('possibly delisted; no price data found  (1d {start} -> {end})')")
            return yf_empty(ticker)
        s = self.panel[ticker] * self.price_scale.get(ticker, 1.0)
        s = s.loc[pd.Timestamp(start) if start else None:]
        if end is not None:
            s = s.loc[s.index < pd.Timestamp(end)]  # yfinance's end is exclusive
        if s.empty:
            ylog.error(f"['{ticker}']: YFPricesMissingError('possibly delisted; no price data found')")
            return yf_empty(ticker)
        return yf_frame(ticker, s)

    def _download_many(self, tickers, start, end, **kw):
        """yfinance's multi-ticker shape: one (Price, Ticker) frame over the union of dates, a failed
        ticker's columns all NaN, failures logged together ("N Failed downloads:")."""
        self.calls.append(dict(ticker=list(tickers), start=start, end=end, **kw))
        self.batch_calls = getattr(self, "batch_calls", 0) + 1
        ylog = logging.getLogger("yfinance")
        if self.offline or getattr(self, "batch_rate_limited", 0) > 0:
            if not self.offline:
                self.batch_rate_limited -= 1
            ylog.error(f"\n{len(tickers)} Failed downloads:")
            why = "YFTzMissingError('possibly delisted; no timezone found')" if self.offline else \
                "YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"
            ylog.error(f"{tickers}: {why}")
            frames = [yf_empty(t) for t in tickers]
            return pd.concat(frames, axis=1)
        frames, failed = [], []
        for t in tickers:
            s = self.panel[t] * self.price_scale.get(t, 1.0) if t in self.panel.columns and t not in self.unknown else None
            if s is not None:
                s = s.loc[pd.Timestamp(start) if start else None:]
                if end is not None:
                    s = s.loc[s.index < pd.Timestamp(end)]
            if s is None or s.empty:
                failed.append(t)
                frames.append(yf_empty(t))
            else:
                frames.append(yf_frame(t, s))
        if failed:
            ylog.error(f"\n{len(failed)} Failed download{'s' if len(failed) > 1 else ''}:")
            ylog.error(f"{failed}: YFPricesMissingError('possibly delisted; no price data found')")
        out = pd.concat(frames, axis=1).sort_index()
        return out.reindex(columns=pd.MultiIndex.from_product([PRICE_FIELDS, tickers], names=["Price", "Ticker"]))


@pytest.fixture
def fake_yahoo(monkeypatch):
    import yfinance

    import eqtrade.data.yahoo as fetch_mod

    fake = FakeYahoo()
    monkeypatch.setattr(yfinance, "download", fake.download)
    monkeypatch.setattr(fetch_mod, "network_ok", lambda *a, **k: not fake.offline)
    sleeps: list[float] = []
    monkeypatch.setattr(fetch_mod, "_sleep", sleeps.append)
    fake.sleeps = sleeps
    return fake


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("EQTRADE_DATA", str(d))
    return d


# -- one Ray instance for the session --------------------------------------------------------------
class SharedRay:
    """The session's local Ray instance, started the way the sweep engine starts one (its own
    `_init_ray`: the same runtime env, OMP_NUM_THREADS=1 and MUJOCO_GL for the trials) at the first
    test that asks for it, and reused by every later one: the engine joins a running instance
    instead of starting its own (about 12 s for each ray.init and shutdown on these machines).
    A test that needs Ray not running in this process (the slow one that joins a separate cluster)
    stops it first; the next test that asks for it starts it again. That a sweep stops an instance
    it started is tested with Ray's init and shutdown replaced (test_sweep.py): one start per session."""

    cpus = 2  # two trials at a time, as `--cpus 2` / `--jobs 2` (and 0 = one per core) run here

    def start(self) -> None:
        import ray

        from eqtrade.sweep.engine import _init_ray

        if not ray.is_initialized():
            _init_ray(None, self.cpus, 0.0)

    def stop(self) -> None:
        import sys

        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()


@pytest.fixture(scope="session")
def shared_ray():
    control = SharedRay()
    yield control
    control.stop()


@pytest.fixture
def ray_instance(shared_ray):
    """A running local Ray instance (the session's), which sweeps and suites in this test join."""
    shared_ray.start()
    yield


@pytest.fixture
def no_ray(shared_ray):
    """No Ray instance in this process: the test starts (and must stop) its own."""
    shared_ray.stop()
    yield


# -- pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) ---------------------------------------
#: files whose module-scoped fixtures train or render something: their tests stay on one worker
#: (so that the fixture is built once); every other test is scheduled on its own
SHARED_FIXTURE_FILES = {"test_backtest.py", "test_guards.py", "test_pixels.py"}
RAY_FIXTURES = {"shared_ray", "ray_instance", "no_ray"}
#: files of long single tests (a learning check of ~30 s, a kill -9 loop, the stacked = alone
#: comparisons), scheduled before the short ones
LONG_FILES = {"test_volatility_market.py", "test_kill.py", "test_stack.py"}


def xdist_group(item) -> str | None:
    """The tests that run Ray in this process share one worker (its one Ray instance, in the
    order test_sweep.py needs); tests of SHARED_FIXTURE_FILES stay with their file."""
    if RAY_FIXTURES & set(item.fixturenames):
        return "ray"
    if item.path.name in SHARED_FIXTURE_FILES:
        return item.path.name
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # before xdist's own hook, which appends the group to each test id. The Ray tests first, as
    # they are the longest chain on one worker (the rest balance around them); test_sweep's first
    # of them (its module fixture, a sweep on the shared instance, is the longest of their units)
    loadgroup = bool(config.getvalue("loadgroup")) if hasattr(config.option, "loadgroup") else False
    for item in items:
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            # the worker-side "@group" suffix of the test id that xdist's loadgroup schedules by:
            # pytest-xdist 3.8 writes it to item._nodeid, which pytest 9 no longer reads (ids
            # live in item._id), so the Ray tests were spread over both workers, each building
            # the sweep fixture and its own Ray instance
            if loadgroup and not item.nodeid.endswith("@" + group):
                if hasattr(item, "_id"):
                    from _pytest.nodeid import coerce_node_id

                    item._id = coerce_node_id(f"{item.nodeid}@{group}")
                else:
                    item._nodeid = f"{item.nodeid}@{group}"
    # then the other groups (each a single unit of work: the pixel tests ~70 s), then the
    # longest single tests, then the rest: the long units first, the short ones balance the tail
    def order(item) -> int:
        group = xdist_group(item)
        if group == "ray":
            return 0 if item.path.name == "test_sweep.py" else 1
        return 2 if group is not None else 3 if item.path.name in LONG_FILES else 4

    items.sort(key=order)
