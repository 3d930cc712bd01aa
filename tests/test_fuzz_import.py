"""Fuzzed price files (a seeded generator: random shapes, headers, dates, values): every case ends
in a stored, valid dataset or a one-line error with exit code 2 — never a traceback — and an
existing dataset is byte-identical afterwards (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from eqtrade.cli import main
from eqtrade.data import load_prices

N_CASES = 400


def _value(rng, noise: float) -> str:
    r = rng.random()
    if r >= noise:
        return f"{rng.uniform(0.5, 500):.4f}"
    return str(rng.choice(["", "nan", "NaN", "abc", "inf", "-inf", "0", "-3", "1e308", "1e-300", "  12 ", "1,5",
                           "NULL", "NA", "null", "—"]))


def _date(rng, base, noise: float) -> str:
    r = rng.random()
    d = base
    if r >= noise / 2:
        return str(d.date())
    return str(rng.choice(["", "not a date", "2021-02-30", "31/12/2020", "2021-13-01", str(d.date()) + "T00:00",
                           "20210105", "1/5/2021"]))


def random_csv(rng) -> str:
    import pandas as pd

    noise = float(rng.choice([0.0, 0.0, 0.01, 0.3]))  # clean files, a rare fault, many faults
    n_cols = int(rng.integers(1, 5))
    n_rows = int(rng.integers(0, 40))
    header = ["date"] + [str(rng.choice(["AAA", "B B", "c", "", "date", "X1", "adj close", "price"])) for _ in range(n_cols)]
    if rng.random() < 0.1:
        header = header[1:]  # no date column
    days = pd.bdate_range("2021-01-04", periods=max(n_rows, 1))
    if rng.random() < 0.2:
        days = days[rng.permutation(len(days))]  # unsorted
    if rng.random() < 0.1 and n_rows > 2:
        days = days.insert(1, days[0])[: len(days)]  # a duplicate date
    lines = [",".join(header)]
    for i in range(n_rows):
        cells = [_date(rng, days[i], noise)] if header and header[0] == "date" else []
        cells += [_value(rng, noise) for _ in range(len(header) - len(cells))]
        if rng.random() < 0.05:
            cells = cells[: max(1, len(cells) - 1)]  # a short row
        lines.append(",".join(cells))
    return "\n".join(lines) + ("\n" if rng.random() < 0.9 else "")


def test_fuzzed_imports_store_valid_data_or_fail_cleanly(tmp_path, capsys):
    store = tmp_path / "store"
    keep = tmp_path / "keep.csv"
    keep.write_text("date,K\n2021-01-04,10\n2021-01-05,10.5\n2021-01-06,10.2\n")
    assert main(["data", "import", str(keep), "--name", "keep", "--data-dir", str(store)]) == 0
    kept = {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file() and "keep" in p.name}
    rng = np.random.default_rng(20261127)
    outcomes = {0: 0, 2: 0}
    for case in range(N_CASES):
        path = tmp_path / f"f{case}.csv"
        path.write_text(random_csv(rng))
        capsys.readouterr()
        try:
            rc = main(["data", "import", str(path), "--name", "fz", "--force", "--data-dir", str(store)])
        except Exception as e:  # a traceback: the case is printed for a regression test
            pytest.fail(f"case {case} raised {type(e).__name__}: {e}\n{path.read_text()[:500]}")
        err = capsys.readouterr().err
        assert rc in (0, 2), (case, rc)
        outcomes[rc] += 1
        if rc == 2:
            assert err.startswith("eqtrade data: error:") and "Traceback" not in err
        else:
            # stored and valid (tickers may cover different dates: outer alignment keeps them all)
            prices = load_prices(source="fz", data_dir=store, align="outer").to_numpy()
            held = prices[~np.isnan(prices)]
            assert held.size and np.isfinite(held).all() and (held > 0).all()
        assert {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file() and "keep" in p.name} == kept
    assert outcomes[0] > 5 and outcomes[2] > 20, outcomes  # both kinds of outcome are exercised
    print(f"fuzzed imports: {N_CASES} cases, {outcomes[0]} stored, {outcomes[2]} refused cleanly")
