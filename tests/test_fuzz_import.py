"""Fuzzed price files (a seeded generator: random shapes, headers, dates, values, date formats,
separators and decimal commas): every case ends in a stored dataset whose dates and prices are
exactly those generated, or in a one-line error with exit code 2 — never a traceback — and an
existing dataset is byte-identical afterwards (issue 12)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from eqtrade.cli import main
from eqtrade.data import load_prices

N_CASES = 400
FAIL = None  # the meaning of a token that must make the import fail
NAN = float("nan")

#: date styles: (strftime format, --date-format that reads it)
STYLES = {
    "iso": ("%Y-%m-%d", "%Y-%m-%d"),
    "day-first": ("%d/%m/%Y", "%d/%m/%Y"),
    "day-first-dots": ("%d.%m.%Y", "%d.%m.%Y"),
    "month-first": ("%m/%d/%Y", "%m/%d/%Y"),
    "iso-time": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"),
    "iso-offset": ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S"),  # then a random offset per row
}
OFFSETS = ["+01:00", "-05:00", "Z", "+0900", "-0330", ""]
NA_TOKENS = ["", "nan", "NaN", "NULL", "NA", "null"]


def _value(rng, noise: float, comma: bool, large: bool) -> str:
    r = rng.random()
    if r >= noise:
        x = rng.uniform(1000, 20000) if large else rng.uniform(0.5, 500)
        text = f"{x:.4f}"
        if comma:
            whole, frac = text.split(".")
            if len(whole) > 3 and rng.random() < 0.5:
                whole = f"{int(whole):,}".replace(",", ".")  # 12.345,6789
            text = f"{whole},{frac}"
        return text
    return str(rng.choice(NA_TOKENS + ["abc", "inf", "-inf", "0", "-3", "1e308", "1e-300", "  12 ", "1,5", "—"]))


def value_meaning(token: str, comma: bool):
    """What a price cell holds: a float, NaN (a missing price) or FAIL (must be refused)."""
    t = token.strip()
    if t in NA_TOKENS:
        return NAN
    if t in ("abc", "—", "inf", "-inf", "0", "-3"):
        return FAIL
    if t in ("1e308", "1e-300"):
        return float(t)  # refused unless alone in a column (no return to check) and no decimal comma in the file
    if comma:
        return float(t.replace(".", "").replace(",", "."))
    return float(t) if "," not in t else FAIL


def _date(rng, day, style: str, noise: float) -> str:
    if rng.random() >= noise / 2:
        fmt = STYLES[style][0]
        text = (day + pd.Timedelta(hours=int(rng.integers(0, 24)), minutes=int(rng.integers(0, 60)))).strftime(fmt) \
            if "time" in style or "offset" in style else day.strftime(fmt)
        return text + (str(rng.choice(OFFSETS)) if style == "iso-offset" else "")
    return str(rng.choice(["", "not a date", "2021-02-30", "31/12/2020", "2021-13-01", str(day.date()) + "T00:00",
                           "20210105", "1/5/2021"]))


def date_meaning(token: str, day, style: str, with_format: bool):
    """The calendar date a date cell holds in a file of that style, or FAIL."""
    iso = style.startswith("iso")
    special = {
        "20210105": pd.Timestamp("2021-01-05") if iso and not with_format else FAIL,
        str(day.date()) + "T00:00": day if iso and not with_format else FAIL,
        "31/12/2020": pd.Timestamp("2020-12-31") if style == "day-first" or (style == "day-first-dots" and not with_format) else FAIL,
        "1/5/2021": {"day-first": pd.Timestamp("2021-05-01"), "month-first": pd.Timestamp("2021-01-05"),
                     "day-first-dots": FAIL if with_format else pd.Timestamp("2021-05-01")}.get(style, FAIL),
    }
    if token in special:
        return special[token]
    if token in ("", "not a date", "2021-02-30", "2021-13-01"):
        return FAIL
    return day  # a clean date of the file's style (time and offset dropped: the date written)


def random_csv(rng) -> tuple[str, list[str], tuple | None]:
    """(file text, extra CLI args, expected (dates, values) or None where the import must fail)."""
    noise = float(rng.choice([0.0, 0.0, 0.01, 0.3]))  # clean files, a rare fault, many faults
    style = str(rng.choice(list(STYLES), p=[0.4, 0.15, 0.1, 0.15, 0.1, 0.1]))
    sep = str(rng.choice([",", ",", ";", "\t"]))
    comma = sep != "," and rng.random() < 0.6  # decimal commas
    large = rng.random() < 0.25  # prices in the thousands (12.345,6789 with decimal commas)
    with_format = style != "iso" and rng.random() < 0.4
    args = ["--date-format", STYLES[style][1]] if with_format else []
    n_cols = int(rng.integers(1, 5))
    n_rows = int(rng.integers(0, 40))
    header = ["date"] + [str(rng.choice(["AAA", "B B", "c", "", "date", "X1", "adj close", "price"])) for _ in range(n_cols)]
    no_date = rng.random() < 0.1
    if no_date:
        header = header[1:]  # no date column
    days = pd.bdate_range("2021-01-04", periods=max(n_rows, 1))
    if rng.random() < 0.2:
        days = days[rng.permutation(len(days))]  # unsorted
    if rng.random() < 0.1 and n_rows > 2:
        days = days.insert(1, days[0])[: len(days)]  # a duplicate date
    lines, dates, values, fail = [sep.join(header)], [], [], no_date or n_rows == 0
    for i in range(n_rows):
        cells = [_date(rng, days[i], style, noise)] if not no_date else []
        cells += [_value(rng, noise, comma, large) for _ in range(len(header) - len(cells))]
        if rng.random() < 0.05:
            cells = cells[: max(1, len(cells) - 1)]  # a short row
        line = sep.join(cells)
        lines.append(line)
        tokens = line.split(sep)  # what a reader sees (a '1,5' in a ','-file is two cells)
        if len(tokens) > len(header) or no_date:
            fail = True
            continue
        d = date_meaning(tokens[0], days[i], style, with_format)
        vals = [value_meaning(t, comma) for t in tokens[1:]] + [NAN] * (len(header) - len(tokens))
        if d is FAIL or any(v is FAIL for v in vals):
            fail = True
        dates.append(d)
        values.append(vals)
    text = "\n".join(lines) + ("\n" if rng.random() < 0.9 else "")
    return text, args, None if fail else (dates, values)


def test_fuzzed_imports_store_valid_data_or_fail_cleanly(tmp_path, capsys):
    store = tmp_path / "store"
    keep = tmp_path / "keep.csv"
    keep.write_text("date,K\n2021-01-04,10\n2021-01-05,10.5\n2021-01-06,10.2\n")
    assert main(["data", "import", str(keep), "--name", "keep", "--data-dir", str(store)]) == 0
    kept = {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file() and "keep" in p.name}
    rng = np.random.default_rng(20261127)
    outcomes = {0: 0, 2: 0}
    checked = set()
    for case in range(N_CASES):
        path = tmp_path / f"f{case}.csv"
        text, args, expected = random_csv(rng)
        path.write_text(text)
        capsys.readouterr()
        try:
            rc = main(["data", "import", str(path), "--name", "fz", "--force", "--data-dir", str(store), *args])
        except Exception as e:  # a traceback: the case is printed for a regression test
            pytest.fail(f"case {case} raised {type(e).__name__}: {e}\n{args}\n{text[:500]}")
        err = capsys.readouterr().err
        assert rc in (0, 2), (case, rc)
        outcomes[rc] += 1
        if rc == 2:
            assert err.startswith("eqtrade data: error:") and "Traceback" not in err, err
            assert err.count("\n") == 1 or "failed validation" in err, err  # one line, or the list of findings
        else:
            # stored exactly as generated (tickers may cover different dates: outer alignment keeps them all)
            assert expected is not None, f"case {case}: stored a file that must be refused\n{args}\n{text[:500]}"
            got = load_prices(source="fz", data_dir=store, align="outer")
            dates, values = expected
            order = np.argsort(np.array(dates, dtype="datetime64[ns]"), kind="stable")
            assert list(got.index) == [dates[i] for i in order], (case, text[:500])
            want = np.array([values[i] for i in order], dtype=float)
            np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-12, equal_nan=True, err_msg=f"case {case}")
            held = got.to_numpy()[~np.isnan(got.to_numpy())]
            assert held.size and np.isfinite(held).all() and (held > 0).all()
            checked.add((args[:1] == ["--date-format"], "\t" if "\t" in text.split("\n")[0] else
                         ";" if ";" in text.split("\n")[0] else ",", "," in "".join(text.split("\n")[1:2])))
        assert {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file() and "keep" in p.name} == kept
    assert outcomes[0] > 5 and outcomes[2] > 20, outcomes  # both kinds of outcome are exercised
    assert {s for _, s, _ in checked} == {",", ";", "\t"} and any(f for f, _, _ in checked), checked
    print(f"fuzzed imports: {N_CASES} cases, {outcomes[0]} stored, {outcomes[2]} refused cleanly")
