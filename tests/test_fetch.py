"""Fetch and cache: success, partial failure, no network, rate limit, incremental, corrupt, atomic."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import eqtrade.util as atomic_mod
import eqtrade.data.store as store_mod
from eqtrade.cli import main
from eqtrade.data import CacheCorruptError, DataStore, fetch, load_prices


def test_fetch_many_tickers_stores_ohlcv_and_manifest(fake_yahoo, data_dir):
    res = fetch(["AAPL", "msft"], start="2015-01-01", end="2016-12-31", progress=False)
    assert [r.status for r in res] == ["ok", "ok"]
    assert [r.ticker for r in res] == ["AAPL", "MSFT"]
    # yfinance was asked explicitly for unadjusted OHLC plus Adj Close, end exclusive
    call = fake_yahoo.calls[0]
    assert call["auto_adjust"] is False and call["end"] == "2017-01-01" and call["start"] == "2015-01-01"
    man = json.loads((data_dir / "manifest.json").read_text())
    e = man["tickers"]["AAPL"]
    assert e["first"] == "2015-01-02" and e["last"] == "2016-12-30"
    assert e["rows"] == res[0].rows == 504
    assert e["yfinance_version"] and e["fetched_at"].endswith("Z") and e["source"].startswith("Yahoo")
    assert (data_dir / e["file"]).exists() and len(e["sha256"]) == 64
    cached = DataStore().get_ticker("AAPL")
    assert list(cached.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    real = load_prices(["AAPL", "MSFT"], start="2015-01-01", end="2016-12-31")
    pd.testing.assert_frame_equal(load_prices(["AAPL", "MSFT"], source="cache"), real, check_freq=False)


def test_partial_failure_other_tickers_land_and_exit_code(fake_yahoo, data_dir, capsys):
    rc = main(["fetch", "--tickers", "AAPL", "NOPE", "MSFT", "--start", "2020-01-01", "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "NOPE" in err and "unknown-ticker" in err and "delisted" in err
    man = json.loads((data_dir / "manifest.json").read_text())
    assert set(man["tickers"]) == {"AAPL", "MSFT"}


def test_no_network_is_detected_not_mistaken_for_delisting(fake_yahoo, data_dir):
    fake_yahoo.offline = True
    res = fetch(["AAPL"], progress=False)
    assert res[0].failed and res[0].cause == "no-network"
    assert not (data_dir / "manifest.json").exists()


def test_rate_limit_retries_with_backoff_then_succeeds(fake_yahoo, data_dir):
    fake_yahoo.rate_limited["AAPL"] = 2
    res = fetch(["AAPL"], start="2020-01-01", progress=False, backoff=1.5)
    assert res[0].status == "ok"
    assert fake_yahoo.sleeps == [1.5, 3.0]
    assert len(fake_yahoo.calls) == 3


def test_rate_limit_gives_up_clearly(fake_yahoo, data_dir):
    fake_yahoo.rate_limited["AAPL"] = 99
    res = fetch(["AAPL", "MSFT"], start="2020-01-01", progress=False, retries=2, backoff=1.0)
    assert res[0].failed and res[0].cause == "rate-limited"
    assert "after 3 attempts" in res[0].message and "AAPL" in res[0].message
    assert fake_yahoo.sleeps == [1.0, 2.0]
    assert res[1].status == "ok"


def test_incremental_fetch_asks_only_for_new_dates_and_merges(fake_yahoo, data_dir):
    r1 = fetch(["AAPL"], start="2020-01-01", end="2020-06-30", progress=False)[0]
    r2 = fetch(["AAPL"], start="2020-01-01", end="2020-12-31", progress=False)[0]
    # the last cached date is 2020-06-30: ask again for the 10 days before it (the overlap that
    # detects a re-based adjusted history), then the new dates; no full download
    assert fake_yahoo.calls[-1]["start"] == "2020-06-20" and len(fake_yahoo.calls) == 2
    assert r2.rows_added == r2.rows - r1.rows > 0
    df = DataStore().get_ticker("AAPL")
    assert df.index.is_unique and df.index.is_monotonic_increasing
    expected = load_prices(["AAPL"], start="2020-01-01", end="2020-12-31")["AAPL"]
    pd.testing.assert_series_equal(df["adj_close"], expected, check_names=False, check_freq=False)
    # nothing new to ask for: no download at all
    n = len(fake_yahoo.calls)
    r3 = fetch(["AAPL"], start="2020-01-01", end="2020-12-31", progress=False)[0]
    assert r3.status == "up-to-date" and len(fake_yahoo.calls) == n
    # only one file per ticker remains
    assert len(list((data_dir / "yfinance").glob("AAPL.*.parquet"))) == 1


def test_refresh_refetches_everything(fake_yahoo, data_dir):
    fetch(["AAPL"], start="2020-01-01", end="2020-06-30", progress=False)
    fake_yahoo.price_scale["AAPL"] = 0.5  # adjustments changed (e.g. a dividend)
    fetch(["AAPL"], start="2020-01-01", end="2020-06-30", refresh=True, progress=False)
    assert fake_yahoo.calls[-1]["start"] == "2020-01-01"
    got = DataStore().get_ticker("AAPL")["adj_close"]
    exp = load_prices(["AAPL"], start="2020-01-01", end="2020-06-30")["AAPL"] * 0.5
    assert got.to_numpy() == pytest.approx(exp.to_numpy())


def test_corrupt_cache_is_detected_and_reported_with_fix(fake_yahoo, data_dir):
    fetch(["AAPL"], start="2020-01-01", end="2020-06-30", progress=False)
    f = next((data_dir / "yfinance").glob("AAPL.*.parquet"))
    f.write_bytes(f.read_bytes()[:-200])  # truncated
    with pytest.raises(CacheCorruptError, match=r"AAPL.*sha256.*--refresh"):
        load_prices(["AAPL"], source="cache")
    res = fetch(["AAPL"], start="2020-01-01", end="2020-12-31", progress=False)[0]
    assert res.failed and res.cause == "corrupt-cache" and "--refresh" in res.message
    assert fetch(["AAPL"], start="2020-01-01", end="2020-12-31", refresh=True, progress=False)[0].status == "ok"
    assert len(load_prices(["AAPL"], source="cache")) > 0


def test_wrong_schema_with_matching_hash_is_still_refused(fake_yahoo, data_dir):
    store = DataStore()
    df = pd.DataFrame({"x": [1.0]}, index=pd.DatetimeIndex(["2020-01-02"], name="date"))
    store._put("tickers", "yfinance", "ZZZ", df, {})
    with pytest.raises(CacheCorruptError, match="lacks columns"):
        store.get_ticker("ZZZ")


def test_corrupt_manifest_stops_before_any_download(fake_yahoo, data_dir):
    data_dir.mkdir()
    (data_dir / "manifest.json").write_text("{not json")
    with pytest.raises(CacheCorruptError, match="manifest"):
        fetch(["AAPL"], progress=False)
    assert fake_yahoo.calls == [] and (data_dir / "manifest.json").read_text() == "{not json"


def test_exception_mid_write_leaves_cache_intact(fake_yahoo, data_dir, monkeypatch):
    fetch(["AAPL"], start="2020-01-01", end="2020-06-30", progress=False)
    before = DataStore().get_ticker("AAPL")
    manifest_before = (data_dir / "manifest.json").read_text()

    def boom(src, dst):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(atomic_mod.os, "replace", boom)
        with pytest.raises(OSError, match="disk full"):
            fetch(["AAPL"], start="2020-01-01", end="2020-12-31", progress=False)
    assert (data_dir / "manifest.json").read_text() == manifest_before
    assert not list(data_dir.rglob("*.tmp"))
    pd.testing.assert_frame_equal(DataStore().get_ticker("AAPL"), before)


def test_interrupt_between_file_and_manifest_keeps_old_data(fake_yahoo, data_dir, monkeypatch):
    fetch(["AAPL"], start="2020-01-01", end="2020-06-30", progress=False)
    before = DataStore().get_ticker("AAPL")

    def interrupted(self, manifest):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(store_mod.DataStore, "_write_manifest", interrupted)
        with pytest.raises(KeyboardInterrupt):
            fetch(["AAPL"], start="2020-01-01", end="2020-12-31", progress=False)
    assert len(list((data_dir / "yfinance").glob("AAPL.*.parquet"))) == 2  # new file written, not switched to
    pd.testing.assert_frame_equal(DataStore().get_ticker("AAPL"), before)
    # the next successful write removes the orphan file
    fetch(["AAPL"], start="2020-01-01", end="2020-12-31", progress=False)
    assert len(list((data_dir / "yfinance").glob("AAPL.*.parquet"))) == 1


@pytest.mark.parametrize("old_basis,what", [(0.98, "dividend"), (2.0, "2:1 split")])
def test_incremental_fetch_rebuilds_a_history_that_yahoo_re_based(fake_yahoo, data_dir, old_basis, what):
    """Yahoo re-bases the whole adjusted history after a dividend or split: the first fetch saw the
    old basis, the second sees the new one. The return at the join must be the true return."""
    fake_yahoo.price_scale["AAPL"] = old_basis  # the adjusted closes as Yahoo served them before
    fetch(["AAPL"], start="2020-01-01", end="2020-06-30", progress=False)
    fake_yahoo.price_scale["AAPL"] = 1.0  # after the event: every adjusted close re-based
    res = fetch(["AAPL"], start="2020-01-01", end="2020-12-31", progress=False)[0]
    assert res.status == "ok" and "re-based" in res.message
    assert fake_yahoo.calls[-1]["start"] == "2020-01-01"  # the whole history again, from --start
    df = DataStore().get_ticker("AAPL")["adj_close"]
    true = load_prices(["AAPL"], start="2020-01-01", end="2020-12-31")["AAPL"]
    pd.testing.assert_series_equal(df, true, check_names=False, check_freq=False)
    join = df.index.get_loc(pd.Timestamp("2020-07-01"))
    assert df.iloc[join] / df.iloc[join - 1] == pytest.approx(true.iloc[join] / true.iloc[join - 1], rel=1e-12)


def test_a_bar_dated_today_is_not_cached(fake_yahoo, data_dir, monkeypatch):
    import eqtrade.data.yahoo as y

    class FrozenDatetime(y.datetime):
        @classmethod
        def now(cls, tz=None):
            return y.datetime(2020, 6, 15, 18, 0, tzinfo=tz)

    monkeypatch.setattr(y, "datetime", FrozenDatetime)
    fetch(["AAPL"], start="2020-01-01", progress=False)
    df = DataStore().get_ticker("AAPL")
    assert df.index[-1] == pd.Timestamp("2020-06-12")  # Friday; Monday 2020-06-15 is 'today'


def test_offline_fetch_says_one_line_per_ticker(fake_yahoo, data_dir, capsys):
    fake_yahoo.offline = True
    assert main(["fetch", "--tickers", "AAPL", "MSFT", "--no-progress"]) == 1
    out, err = capsys.readouterr()
    lines = [ln for ln in (out + err).splitlines() if ln.strip()]
    failed = [ln for ln in lines if ln.startswith("FAILED")]
    assert len(failed) == 2 and all("cannot reach Yahoo Finance" in ln for ln in failed)
    assert not any("1 Failed download" in ln or "YFTzMissingError" in ln for ln in lines)  # yfinance's noise
    assert len(lines) <= 6, lines


# -- a universe: --tickers-file, batched threaded downloads --------------------------------------------
def test_tickers_file_downloads_in_threaded_batches_and_stores_the_same(fake_yahoo, data_dir, tmp_path, capsys):
    universe = ["AAPL", "MSFT", "AMD", "BAC", "NOPE", "CVX", "BBY"]
    f = tmp_path / "universe.txt"
    f.write_text("# my universe\nAAPL\nmsft, AMD\n\nBAC  # banks\nNOPE\nCVX\nBBY\nAAPL\n")
    rc = main(["fetch", "--tickers-file", str(f), "--start", "2019-01-01", "--end", "2019-12-31",
               "--batch-size", "3", "--no-progress"])
    assert rc == 1  # NOPE failed, the others landed
    out, err = capsys.readouterr()
    assert "NOPE" in err and "unknown-ticker" in err
    batches = [c for c in fake_yahoo.calls if isinstance(c["ticker"], list)]
    assert [c["ticker"] for c in batches] == [universe[:3], universe[3:6], universe[6:]][:2]
    assert all(c["threads"] is True and c["auto_adjust"] is False for c in batches)
    singles = [c["ticker"] for c in fake_yahoo.calls if isinstance(c["ticker"], str)]
    assert singles == ["BBY", "NOPE"]  # the last batch (of one), then what no batch delivered, one by one
    man = json.loads((data_dir / "manifest.json").read_text())
    assert set(man["tickers"]) == set(universe) - {"NOPE"}
    # the same rows as one-at-a-time downloads
    other = tmp_path / "other"
    fetch(universe, start="2019-01-01", end="2019-12-31", data_dir=other, progress=False)
    for t in set(universe) - {"NOPE"}:
        pd.testing.assert_frame_equal(DataStore(data_dir).get_ticker(t), DataStore(other).get_ticker(t))


def test_a_rate_limited_batch_backs_off_then_lands(fake_yahoo, data_dir):
    fake_yahoo.batch_rate_limited = 2
    res = fetch(["AAPL", "MSFT", "AMD"], start="2020-01-01", progress=False, batch_size=50, backoff=1.0)
    assert [r.status for r in res] == ["ok"] * 3
    assert fake_yahoo.sleeps == [1.0, 2.0] and fake_yahoo.batch_calls == 3
    assert all(isinstance(c["ticker"], list) for c in fake_yahoo.calls)  # no one-by-one fallback needed


def test_offline_batch_falls_back_and_reports_each_ticker(fake_yahoo, data_dir):
    fake_yahoo.offline = True
    res = fetch(["AAPL", "MSFT"], progress=False, batch_size=50)
    assert [r.cause for r in res] == ["no-network", "no-network"]


def test_bad_tickers_files_are_one_line_errors(data_dir, tmp_path, capsys):
    for content, words in [(None, "no such file"), ("# nothing\n\n", "no tickers"), ("AAPL\nBAD$SYM\n", "line 2")]:
        f = tmp_path / "u.txt"
        if content is None:
            f = tmp_path / "missing.txt"
        else:
            f.write_text(content)
        assert main(["fetch", "--tickers-file", str(f), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["fetch", "--no-progress"]) == 2
    assert "--tickers-file" in capsys.readouterr().err


# -- hostile flags and a universe without a network ----------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--tickers", ""], "--tickers is empty: give a value or leave the option out"),  # the CLI's empty-option check
    (["--tickers", "AAPL", " "], "--tickers is empty"),
    (["--tickers", "AAPL", "--start", "2020-01-01", "--end", "2019-01-01"],
     "--start 2020-01-01 is after --end 2019-01-01"),
    (["--tickers", "AAPL", "--retries", "-1"], "--retries -1 is out of range: it must be in [0, 10]"),
    (["--tickers", "AAPL", "--retries", "1000"], "--retries 1000 is out of range"),
    (["--tickers", "AAPL", "--batch-size", "0"], "--batch-size 0 is out of range: it must be in [1, 1000]"),
    (["--tickers", "AAPL", "--start", "yesterday"], "--start 'yesterday': write the date as YYYY-MM-DD"),
    (["--tickers", "AAPL", "--end", "2021-02-30"], "--end '2021-02-30' is not a calendar date"),
    (["--tickers", "AAPL", "--end", "1/2/2021"], "--end '1/2/2021': write the date as YYYY-MM-DD"),
])
def test_fetch_flags_are_checked_before_any_download(fake_yahoo, data_dir, capsys, args, needle):
    assert main(["fetch", *args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eqtrade fetch: error:") and err.count("\n") == 1 and needle in err, err
    assert fake_yahoo.calls == [] and not data_dir.exists()


def test_fetch_api_refuses_negative_retries_and_empty_symbols(fake_yahoo, data_dir):
    with pytest.raises(ValueError, match="retries must be an integer >= 0, got -1"):
        fetch(["AAPL"], retries=-1, progress=False)
    with pytest.raises(ValueError, match="empty ticker symbol"):
        fetch([""], progress=False)
    assert fake_yahoo.calls == []


def test_a_universe_without_network_stops_early_in_one_line(fake_yahoo, data_dir, tmp_path, capsys, caplog):
    fake_yahoo.offline = True
    caplog.set_level("WARNING", logger="eqtrade.data.yahoo")  # printed to stderr by the CLI's logging
    f = tmp_path / "u.txt"
    f.write_text("".join(f"T{i:03d}\n" for i in range(120)))
    assert main(["fetch", "--tickers-file", str(f), "--retries", "0", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(fake_yahoo.calls) == 1 and isinstance(fake_yahoo.calls[0]["ticker"], list)  # one batch, then stop
    assert "batch 1/3 (50 tickers): nothing delivered: cannot reach Yahoo Finance" in caplog.text
    assert err[0].startswith("no network: 120 of 120 tickers failed") and "(50 tried, the other 70 not); nothing written" in err[0]
    assert len(err) == 1 and not data_dir.exists()
    # one at a time: three tries, then the rest are not tried
    fake_yahoo.calls.clear()
    assert main(["fetch", "--tickers", *[f"T{i}" for i in range(8)], "--batch-size", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert len(fake_yahoo.calls) == 3 and "no network: 8 of 8 tickers failed" in err and "(3 tried, the other 5 not)" in err


def test_a_ticker_named_like_http_429_is_not_rate_limited(fake_yahoo, data_dir):
    fake_yahoo.offline = True
    res = fetch(["T429", "X429Y"], progress=False, retries=0)
    assert [r.cause for r in res] == ["no-network", "no-network"]


def test_the_same_failure_of_many_tickers_is_one_line_with_the_count(fake_yahoo, data_dir, capsys):
    assert fetch(["AAPL"], start="2019-01-01", end="2019-12-31", progress=False)[0].status == "ok"
    fake_yahoo.offline = True
    assert main(["fetch", "--tickers", "AAPL", "X1", "X2", "X3", "X4", "--start", "2019-01-01", "--end", "2019-12-31",
                 "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "up-to-date" in out
    failed = [ln for ln in err.splitlines() if ln.startswith("FAILED")]
    assert failed == ["FAILED 4 tickers (X1 X2 X3 X4): no-network: cannot reach Yahoo Finance (query1.finance.yahoo.com): "
                      "no network or DNS; details with --verbose"], err
