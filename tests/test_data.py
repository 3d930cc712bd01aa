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
