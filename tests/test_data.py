"""Bundled data, loading, alignment, validation and import."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA
from eqtrade.data import (
    DatasetNotFoundError,
    DataValidationError,
    ImportFormatError,
    import_prices,
    list_datasets,
    load_bundled,
    load_prices,
    provenance,
    validate_prices,
)

# published in shared/data/README.md
PUBLISHED_SHA256 = {
    "sp500_20_stocks_adjclose.csv.gz": "ee21cac28befb1d0a739a9ceb22184f995394726aa0cfde9a21941d1ac04ac0d",
    "sp500_index_adjclose.csv.gz": "894c34431c284f86aa64a467e176e2a3c9b697c857eb9ab35006c2dd55d3fdf2",
    "factor_etfs_adjclose.csv.gz": "6eb089953db90c9a38d3283582751701a90db6f59965847fd64b0578de497161",
}
TWENTY = "AAPL AMD BAC BBY CVX GE HD JNJ JPM KO LLY MRK MSFT PEP PFE PG RRC UNH WMT XOM".split()


def test_provenance_records_the_published_source_hashes():
    prov = provenance()
    got = {e["source_file"]: e["source_sha256"] for e in prov["datasets"].values()}
    assert got == PUBLISHED_SHA256
    assert "BSD" in prov["licence"] and "skfolio" in prov["source"]


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data beside the checkout")
@pytest.mark.parametrize("name", ["sp500-20", "sp500-index", "factor-etfs"])
def test_bundled_parquet_equals_the_hashed_originals(name):
    e = provenance()["datasets"][name]
    src = SHARED_DATA / e["source_file"]
    assert hashlib.sha256(src.read_bytes()).hexdigest() == PUBLISHED_SHA256[e["source_file"]]
    orig = pd.read_csv(src, index_col=0, parse_dates=True).astype(float)
    got = load_bundled(name)
    np.testing.assert_array_equal(got.to_numpy(), orig.to_numpy())
    assert (got.index == orig.index).all() and list(got.columns) == list(orig.columns)


def test_load_prices_default_is_the_20_stock_panel():
    df = load_prices()
    assert list(df.columns) == TWENTY
    assert df.shape == (8313, 20)
    assert df.index[0] == pd.Timestamp("1990-01-02") and df.index[-1] == pd.Timestamp("2022-12-28")
    assert df.index.name == "date" and df.index.is_monotonic_increasing


def test_load_prices_selects_tickers_across_bundled_datasets_with_inner_alignment():
    df = load_prices(["AAPL", "SP500", "MTUM"], start="2013-06-01", end="2015-12-31")
    assert list(df.columns) == ["AAPL", "SP500", "MTUM"]
    assert df.index[0] == pd.Timestamp("2014-01-02")  # MTUM's history starts there: inner alignment
    assert df.index[-1] == pd.Timestamp("2015-12-31")
    outer = load_prices(["AAPL", "MTUM"], start="2013-06-01", end="2015-12-31", align="outer")
    assert outer["MTUM"].isna().sum() > 0 and outer["AAPL"].notna().all()  # never filled


def test_load_prices_unknown_ticker_and_dataset_name_errors():
    with pytest.raises(DatasetNotFoundError, match="ZZZZ"):
        load_prices(["AAPL", "ZZZZ"])
    with pytest.raises(DatasetNotFoundError, match="no dataset 'nope'"):
        load_prices(source="nope")


def test_validation_finds_the_known_flaws_of_the_real_data():
    rep = validate_prices(load_bundled("sp500-20"))
    assert rep.ok  # no NaN, no non-positive prices
    found = {(i.check, i.ticker) for i in rep.issues}
    assert ("jump", "RRC") in found and ("zero-days", "RRC") in found
    assert ("sub-dollar", "AAPL") in found and ("sub-dollar", "BBY") in found
    rrc_jump = next(i for i in rep.issues if i.check == "jump" and i.ticker == "RRC")
    assert rrc_jump.date == "1990-04-10"


def _panel():
    idx = pd.bdate_range("2020-01-01", periods=60, name="date")
    rng = np.random.default_rng(0)
    return pd.DataFrame({t: 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 60))) for t in ["A", "B"]}, index=idx)


@pytest.mark.parametrize("seed", range(5))
def test_validation_reports_each_planted_flaw_with_ticker_and_date(seed):
    rng = np.random.default_rng(seed)
    p = _panel()
    i_nan, i_neg, i_jump, i_zero = rng.choice(np.arange(5, 50), size=4, replace=False)
    i_zero = min(i_zero, 50)
    p.iloc[i_nan, 0] = np.nan
    p.iloc[i_neg, 1] = -1.0
    q = _panel()
    q.iloc[i_jump:, 0] *= 3.0
    q.iloc[i_zero : i_zero + 7, 1] = q.iloc[i_zero, 1]
    q.iloc[:3, 1] = 0.5
    d = lambda i: p.index[i].strftime("%Y-%m-%d")
    errs = {(i.check, i.ticker, i.date) for i in validate_prices(p).errors}
    assert ("nan", "A", d(i_nan)) in errs and ("non-positive", "B", d(i_neg)) in errs
    with pytest.raises(DataValidationError, match=f"A {d(i_nan)}"):
        validate_prices(p).raise_if_errors()
    rep = validate_prices(q)
    assert rep.ok
    found = {(i.check, i.ticker, i.date.split("..")[0]) for i in rep.warnings}
    assert ("jump", "A", d(i_jump)) in found
    assert ("zero-run", "B", d(i_zero + 1)) in found
    assert ("sub-dollar", "B", d(0)) in found
    dup = pd.concat([q.iloc[:10], q.iloc[9:12]])
    assert any(i.check == "duplicates" for i in validate_prices(dup).errors)


def test_clean_prices_have_no_findings():
    assert validate_prices(_panel()).issues == []


def test_import_wide_csv_then_load_by_name(data_dir, tmp_path):
    p = _panel()
    path = tmp_path / "mine.csv"
    p.to_csv(path)
    entry, rep = import_prices(path, "mine")
    assert entry["layout"] == "wide" and entry["tickers"] == ["A", "B"] and rep.ok
    got = load_prices(source="mine")
    np.testing.assert_allclose(got.to_numpy(), p.to_numpy())
    assert any(r["name"] == "mine" and r["kind"] == "imported" for r in list_datasets())
    with pytest.raises(FileExistsError, match="--force"):
        import_prices(path, "mine")
    import_prices(path, "mine", force=True)


def test_import_long_csv_and_ohlcv_parquet(data_dir, tmp_path):
    p = _panel()
    long = p.stack().rename("Adj Close").reset_index().rename(columns={"level_1": "Symbol", "date": "Date"})
    long = long.sample(frac=1.0, random_state=0)  # any row order
    long.to_csv(tmp_path / "long.csv", index=False)
    entry, _ = import_prices(tmp_path / "long.csv", "long")
    assert entry["layout"] == "long"
    np.testing.assert_allclose(load_prices(source="long").to_numpy(), p.to_numpy())
    ohlcv = pd.DataFrame({"Open": p["A"], "High": p["A"], "Low": p["A"], "Close": p["A"] * 2,
                          "Adj Close": p["A"], "Volume": 1e6}, index=p.index)
    ohlcv.to_parquet(tmp_path / "xyz.parquet")
    entry, _ = import_prices(tmp_path / "xyz.parquet", "one", ticker="xyz")
    assert entry["layout"] == "ohlcv" and entry["tickers"] == ["XYZ"]
    np.testing.assert_allclose(load_prices(source="one")["XYZ"].to_numpy(), p["A"].to_numpy())


def test_import_refuses_bad_files_and_stores_nothing(data_dir, tmp_path):
    p = _panel()
    p.iloc[10, 1] = 0.0
    p.to_csv(tmp_path / "bad.csv")
    with pytest.raises(DataValidationError, match="B 2020-01-15"):
        import_prices(tmp_path / "bad.csv", "bad")
    (tmp_path / "dates.csv").write_text("date,A\n2020-01-02,1.0\nnot-a-date,2.0\n")
    with pytest.raises(ImportFormatError, match="row 2.*not-a-date"):
        import_prices(tmp_path / "dates.csv", "dates")
    (tmp_path / "num.csv").write_text("date,A\n2020-01-02,1.0\n2020-01-03,abc\n")
    with pytest.raises(ImportFormatError, match="'A', row 2.*abc"):
        import_prices(tmp_path / "num.csv", "num")
    with pytest.raises(ValueError, match="invalid dataset name"):
        import_prices(tmp_path / "num.csv", "sp500-20")
    assert not (data_dir / "manifest.json").exists() or json.loads((data_dir / "manifest.json").read_text())["datasets"] == {}


# -- hostile imports through the CLI: dates, separators, names, splits ---------------------------
def _import(tmp_path, text, name, *extra, file="p.csv"):
    from eqtrade.cli import main

    path = tmp_path / file
    path.write_text(text)
    return main(["data", "import", str(path), "--name", name, "--data-dir", str(tmp_path / "s"), *extra])


def _one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("eqtrade data: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_day_first_dates_that_could_be_month_first_need_a_date_format(tmp_path, capsys):
    rows = "".join(f"{d:02d}/02/2021,{10 + d / 10}\n" for d in range(1, 9))  # every day <= 12
    assert _import(tmp_path, "date,A\n" + rows, "df") == 2
    err = _one_line_error(capsys)
    assert "'01/02/2021'" in err and "2021-02-01 day first" in err and "2021-01-02 month first" in err
    assert "--date-format %d/%m/%Y" in err and "--date-format %m/%d/%Y" in err
    assert _import(tmp_path, "date,A\n" + rows, "df", "--date-format", "%d/%m/%Y") == 0
    got = load_prices(source="df", data_dir=tmp_path / "s")
    assert list(got.index) == list(pd.date_range("2021-02-01", "2021-02-08"))  # daily, not monthly
    # a day above 12 somewhere settles it, and the import says how the dates were read
    assert _import(tmp_path, "date,A\n" + rows + "13/02/2021,11\n", "df2") == 0
    assert "dates read day first (%d/%m/%Y): row 9 '13/02/2021'" in capsys.readouterr().out
    assert load_prices(source="df2", data_dir=tmp_path / "s").index[-1] == pd.Timestamp("2021-02-13")
    assert _import(tmp_path, "date,A\n02/13/2021,1\n14/02/2021,2\n", "mixed") == 2
    assert "not written one way" in _one_line_error(capsys)
    assert _import(tmp_path, "date,A\n2021-02-01,1\n02/02/2021,2\n", "mixed") == 2
    assert "row 2: '02/02/2021' is not written like row 1's '2021-02-01'" in _one_line_error(capsys)
    # month-first daily dates with one day-first date: read day first they would be a month apart
    text = "date,A\n01/04/2021,1\n01/05/2021,1.1\n01/06/2021,1.2\n31/12/2020,1.3\n01/07/2021,1.2\n"
    assert _import(tmp_path, text, "mixed") == 2
    assert "read day first (as row 4 '31/12/2020' demands) are about a month apart" in _one_line_error(capsys)
    assert _import(tmp_path, "date,A\n1.2.2021,1\n", "bad", "--date-format", "%d/%m/%Y") == 2
    assert "row 1: '1.2.2021' does not match --date-format '%d/%m/%Y'" in _one_line_error(capsys)


def test_dates_after_today_are_refused(tmp_path, capsys):
    late = (pd.Timestamp.today() + pd.Timedelta(days=400)).strftime("%Y-%m-%d")
    assert _import(tmp_path, f"date,A\n2021-01-04,10\n2021-01-05,10.5\n{late},11\n", "fut", file="fut.csv") == 2
    err = _one_line_error(capsys)
    assert "fut.csv: row 3" in err and f"({late}) is after today" in err
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_a_dataset_named_like_a_ticker_is_refused_and_show_says_which_it_is(tmp_path, capsys):
    from eqtrade.cli import main
    from eqtrade.data.store import DataStore

    text = "date,A\n2021-01-04,10\n2021-01-05,10.5\n"
    for name in ("AAPL", "aapl", "SP500"):
        assert _import(tmp_path, text, name) == 2
        err = _one_line_error(capsys)
        assert f"dataset name {name!r} is a ticker (bundled" in err and "choose another name" in err
    store = DataStore(tmp_path / "s")
    idx = pd.bdate_range("2021-01-04", periods=3, name="date")
    store.put_ticker("ZZZ", pd.DataFrame({c: 1.0 for c in ("open", "high", "low", "close", "adj_close", "volume")},
                                         index=idx), {})
    assert _import(tmp_path, text, "zzz") == 2
    assert "is a ticker (cached in" in _one_line_error(capsys)
    # a dataset that already has such a name (stored before the rule): show says it is the dataset
    store.put_dataset("KO", load_prices(["KO"]).iloc[:50].rename(columns={"KO": "X"}), {"layout": "wide"})
    assert main(["data", "show", "KO", "--data-dir", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().out.startswith("imported dataset KO (not the ticker KO, bundled, in sp500-20")
    assert main(["data", "show", "ko", "--data-dir", str(tmp_path / "s")]) == 0
    assert "(not the imported dataset 'KO')" in capsys.readouterr().out.splitlines()[0]


def test_time_zone_offsets_keep_the_calendar_date_written(tmp_path, capsys, recwarn):
    text = ("date,A\n2021-01-04T00:30:00+09:00,10\n2021-01-05T16:00:00-05:00,10.5\n2021-01-06 23:30Z,10.2\n"
            "2021-01-07T09:00:00+0100,10.4\n")
    assert _import(tmp_path, text, "tz") == 0
    assert "time-zone offsets dropped" in capsys.readouterr().out
    got = load_prices(source="tz", data_dir=tmp_path / "s")
    assert list(got.index) == list(pd.date_range("2021-01-04", "2021-01-07"))
    assert not [w for w in recwarn if issubclass(w.category, (FutureWarning, UserWarning))]


def test_semicolon_and_tab_files_with_decimal_commas(tmp_path, capsys):
    text = "date;AAPL;MSFT;KO\n13.01.2021;782,5;1.234,56;50,1\n14.01.2021;783,5;1.235,56;50,2\n15.01.2021;784,5;1.236,56;50,3\n"
    assert _import(tmp_path, text, "eu") == 0
    assert "decimal commas" in capsys.readouterr().out
    got = load_prices(source="eu", data_dir=tmp_path / "s")
    assert list(got.columns) == ["AAPL", "MSFT", "KO"]
    np.testing.assert_array_equal(got.to_numpy(), [[782.5, 1234.56, 50.1], [783.5, 1235.56, 50.2], [784.5, 1236.56, 50.3]])
    assert list(got.index) == [pd.Timestamp("2021-01-13"), pd.Timestamp("2021-01-14"), pd.Timestamp("2021-01-15")]
    assert _import(tmp_path, "date\tA\n2021-01-04\t10.25\n2021-01-05\t10.5\n2021-01-06\t10.75\n", "tab") == 0
    np.testing.assert_array_equal(load_prices(source="tab", data_dir=tmp_path / "s")["A"], [10.25, 10.5, 10.75])
    assert _import(tmp_path, "date;A\n2021-01-04;10,5\n2021-01-05;1,2,3\n", "bad") == 2
    assert "'A', row 2: '1,2,3' is not a number" in _one_line_error(capsys)
    assert _import(tmp_path, "date,A\n2021-01-04,10,5\n2021-01-05,10,6\n", "bad") == 2  # decimal commas with ','
    assert "row 1 has more cells than the header has names (2, separated by ',')" in _one_line_error(capsys)


def test_a_split_outside_the_data_names_the_split_and_the_data(tmp_path, capsys):
    from eqtrade.cli import main
    from eqtrade.data.market import Market
    from eqtrade.data.synthetic import planted_market

    csv = tmp_path / "late.csv"
    planted_market(2, seed=1).loc["2021":"2022"].to_csv(csv, index_label="date")
    store = tmp_path / "s"
    assert main(["data", "import", str(csv), "--name", "late", "--data-dir", str(store)]) == 0
    capsys.readouterr()
    assert main(["train", "--data", "late", "--data-dir", str(store), "--steps", "30", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "split 'train' 2000-01-01..2014-12-31 has 0 trading day(s)" in err and "2021-01-01..2022-12-" in err
    assert not (tmp_path / "r").exists()
    prices = load_prices(source="late", data_dir=store)
    with pytest.raises(ValueError, match=r"window 32 is longer .* data's dates are 2021-01-01\.\.2022-12-.*needs 34 days"):
        Market.from_prices(prices, 32, ("2021-01-01", "2021-01-20"))
    with pytest.raises(ValueError, match="no rows"):
        Market.from_prices(prices.iloc[:0], 32, "train")


# -- a damaged manifest, damaged files, and files the importer must not misread ----------------------
def _good_csv(tmp_path, name="good.csv", rows=5):
    path = tmp_path / name
    path.write_text("date,AAA,BBB\n" + "".join(f"2021-01-{4 + i:02d},{10 + i},{20 - i}\n" for i in range(rows)))
    return path


def _manifest_file(store, name, file):
    m = json.loads((store / "manifest.json").read_text())
    m["datasets"][name]["file"] = file
    (store / "manifest.json").write_text(json.dumps(m))


def test_a_manifest_path_outside_the_data_dir_is_refused_before_anything_is_read_or_deleted(tmp_path, capsys):
    from eqtrade.cli import main

    store = tmp_path / "s"
    assert main(["data", "import", str(_good_csv(tmp_path)), "--name", "d", "--data-dir", str(store)]) == 0
    stored = next((store / "datasets").glob("d.*.parquet"))
    victim = tmp_path / "victim.parquet"
    victim.write_bytes(stored.read_bytes())  # the same bytes: the sha256 check alone would pass it
    _manifest_file(store, "d", "../victim.parquet")
    capsys.readouterr()
    assert main(["data", "show", "d", "--data-dir", str(store)]) == 2
    err = _one_line_error(capsys)
    assert "dataset 'd' names the file '../victim.parquet', outside" in err and "Nothing was read or deleted" in err
    before = (store / "manifest.json").read_bytes()
    assert main(["data", "import", str(_good_csv(tmp_path)), "--name", "d", "--force", "--data-dir", str(store)]) == 2
    assert "'../victim.parquet', outside" in _one_line_error(capsys)
    assert victim.exists() and (store / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in (store / "datasets").iterdir()) == [stored.name]  # nothing written either
    for bad in ("/etc/passwd", "datasets/../../victim.parquet", "yfinance/" + stored.name, ""):
        _manifest_file(store, "d", bad)
        assert main(["data", "show", "d", "--data-dir", str(store)]) == 2
        assert "dataset 'd'" in _one_line_error(capsys)
    assert main(["data", "list", "--data-dir", str(store)]) == 0
    out = capsys.readouterr()
    assert [ln.split()[5] for ln in out.out.splitlines() if ln.split()[0] == "d"] == ["damaged"]
    assert "1 dataset(s) not usable (d: damaged)" in out.err


def test_data_list_marks_a_missing_or_damaged_file(tmp_path, capsys):
    from eqtrade.cli import main

    store = tmp_path / "s"
    for name in ("ok1", "gone", "cut"):
        assert main(["data", "import", str(_good_csv(tmp_path)), "--name", name, "--data-dir", str(store)]) == 0
    next((store / "datasets").glob("gone.*.parquet")).unlink()
    cut = next((store / "datasets").glob("cut.*.parquet"))
    cut.write_bytes(cut.read_bytes()[:40])
    capsys.readouterr()
    assert main(["data", "list", "--data-dir", str(store)]) == 0
    out = capsys.readouterr()
    status = {ln.split()[0]: ln.split()[5] for ln in out.out.splitlines()[2:]}
    assert status["ok1"] == "ok" and status["gone"] == "missing" and status["cut"] == "damaged"
    assert status["sp500-20"] == "ok"
    assert "2 dataset(s) not usable (cut: damaged, gone: missing)" in out.err
    assert {r["name"]: r["status"] for r in list_datasets(store)}["gone"] == "missing"


def test_import_refuses_too_few_rows_duplicate_columns_and_misnamed_gzip_and_reads_byte_order_marks(tmp_path, capsys):
    import gzip

    for rows in (1, 2):
        assert _import(tmp_path, "date,A\n" + "".join(f"2021-01-0{4 + i},1{i}\n" for i in range(rows)), "few") == 2
        err = _one_line_error(capsys)
        assert f"only {rows} date row(s); a dataset needs at least 3" in err and "training needs far more" in err
    assert _import(tmp_path, "date,A\n2021-01-04,10\n2021-01-05,11\n2021-01-06,12\n", "three") == 0
    capsys.readouterr()
    assert _import(tmp_path, "date,AAA,AAA\n2021-01-04,1,2\n2021-01-05,1,2\n2021-01-06,1,2\n", "dup") == 2
    assert "the header names column(s) 'AAA' more than once" in _one_line_error(capsys)
    gz = tmp_path / "gz.csv"
    gz.write_bytes(gzip.compress(_good_csv(tmp_path).read_bytes()))
    from eqtrade.cli import main

    assert main(["data", "import", str(gz), "--name", "gz", "--data-dir", str(tmp_path / "s")]) == 2
    err = _one_line_error(capsys)
    assert "gz.csv: the file is gzip-compressed (it starts with the bytes 1f 8b)" in err and "rename it to gz.csv.gz" in err
    gz.rename(tmp_path / "gz.csv.gz")
    assert main(["data", "import", str(tmp_path / "gz.csv.gz"), "--name", "gz", "--data-dir", str(tmp_path / "s")]) == 0
    text = _good_csv(tmp_path).read_text()
    for enc, name in (("utf-16", "u16"), ("utf-8-sig", "u8bom")):
        (tmp_path / f"{name}.csv").write_bytes(text.encode(enc))
        assert main(["data", "import", str(tmp_path / f"{name}.csv"), "--name", name, "--data-dir", str(tmp_path / "s")]) == 0
        got = load_prices(source=name, data_dir=tmp_path / "s")
        assert list(got.columns) == ["AAA", "BBB"] and got["AAA"].tolist() == [10, 11, 12, 13, 14]
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())["datasets"]
    assert "few" not in manifest and "dup" not in manifest


def test_a_ticker_given_twice_is_refused_not_a_traceback(data_dir):
    with pytest.raises(ValueError, match=r"ticker\(s\) KO given more than once \(KO PG KO\); name each ticker once"):
        load_prices(["KO", "PG", "KO"])
    with pytest.raises(ValueError, match="AAPL given more than once"):
        load_prices(["AAPL", "aapl"], source="cache")


def test_the_way_out_of_a_manifest_path_outside_the_data_dir_works(tmp_path, capsys):
    from eqtrade.cli import main

    store = tmp_path / "s"
    assert main(["data", "import", str(_good_csv(tmp_path)), "--name", "d", "--data-dir", str(store)]) == 0
    _manifest_file(store, "d", "../victim.parquet")
    capsys.readouterr()
    assert main(["data", "show", "d", "--data-dir", str(store)]) == 2
    err = _one_line_error(capsys)
    assert "Fix: delete the entry 'd' from the 'datasets' of" in err
    m = json.loads((store / "manifest.json").read_text())  # what the message says to do
    del m["datasets"]["d"]
    (store / "manifest.json").write_text(json.dumps(m))
    assert main(["data", "import", str(_good_csv(tmp_path)), "--name", "d", "--data-dir", str(store)]) == 0
    assert main(["data", "show", "d", "--data-dir", str(store)]) == 0


def test_load_prices_refuses_no_tickers_and_reversed_or_unreadable_dates():
    """load_prices([]) gave pandas' "No objects to concatenate"; start after end said "no prices"."""
    from eqtrade.data import load_prices

    with pytest.raises(ValueError, match="no tickers given"):
        load_prices([])
    with pytest.raises(ValueError, match="start 2020-01-01 is after end 2019-01-01"):
        load_prices(["AAPL"], start="2020-01-01", end="2019-01-01")
    with pytest.raises(ValueError, match="start 'yesterday' is not a date"):
        load_prices(["AAPL"], start="yesterday")
    jan = load_prices(["AAPL"], start="2019-01-02", end="2019-01-31").index  # inclusive bounds
    assert (jan[0], jan[-1]) == (pd.Timestamp("2019-01-02"), pd.Timestamp("2019-01-31"))


def test_a_data_dir_that_is_a_file_and_a_price_column_on_a_wide_file_are_refused(tmp_path, capsys):
    from eqtrade.cli import main

    afile = tmp_path / "afile.txt"
    afile.write_text("")
    assert main(["data", "list", "--data-dir", str(afile)]) == 2
    assert f"the data dir {afile} (--data-dir) is a file, not a directory" in capsys.readouterr().err
    wide = tmp_path / "w.csv"
    wide.write_text("date,AAA,BBB\n2020-01-02,1,2\n2020-01-03,1.1,2.1\n2020-01-06,1.2,2.2\n")
    dd = tmp_path / "dd"
    assert main(["data", "import", str(wide), "--name", "w", "--price-column", "volume", "--data-dir", str(dd)]) == 2
    err = capsys.readouterr().err
    assert "--price-column 'volume' applies to long" in err and "leave --price-column out" in err
    assert main(["data", "import", str(wide), "--name", "w", "--data-dir", str(dd)]) == 0  # without it: imported
