"""The byte scans and hashes validation uses for speed, each against the plain pandas operation
it stands for: on awkward texts, on random ones, in several Arrow chunks and slices, and with
hashes forced to collide (a collision must never make two different values the same)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchpay import damage, textscan
from batchpay.csvfile import ARROW_TEXT
from batchpay.damage import account_keys
from batchpay.sheet import CANONICAL, Sheet
from batchpay.textscan import (
    edge_rows,
    is_e,
    is_separator,
    leading_zero_rows,
    not_ascii_digit,
    repeated,
    rows_with_byte,
    text_hashes,
)
from batchpay.validate import (
    _canonical_amounts,
    parse_amounts,
    sheet_rules,
    validate,
)

# White space of every kind Python or Arrow may strip, digits, separators, E, and characters
# of two, three and four bytes.
AWKWARD = list("0123456789eE,.+-_ aZ\t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000é漢\U0001f600")
awkward_texts = st.lists(
    st.text(st.sampled_from(AWKWARD), max_size=12) | st.text(max_size=6), max_size=40
)


def arrow_series(values: list[str], pieces: int = 3) -> pd.Series:
    """``values`` as Arrow-backed text in several chunks, the first one a slice of a longer
    array (so that its offsets do not start at 0)."""
    size = len(values)
    cuts = sorted({0, size, *(size * k // pieces for k in range(1, pieces))})
    chunks = [pa.array(values[a:b], pa.large_string()) for a, b in itertools.pairwise(cuts)]
    if chunks:
        padded = pa.array(["pad-é", *values[: cuts[1]], "pad"], pa.large_string())
        chunks[0] = padded.slice(1, cuts[1])
    array = pa.chunked_array(chunks, pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(array))


def plain(values: list[str]) -> pd.Series:
    return pd.Series(values, dtype=object)


@settings(max_examples=200, deadline=None)
@given(values=awkward_texts)
def test_byte_scans_agree_with_string_operations(values: list[str]) -> None:
    texts, expect = arrow_series(values), plain(values)
    has = expect.str.contains
    assert rows_with_byte(texts, is_e).tolist() == has("[eE]").tolist()
    assert rows_with_byte(texts, is_separator).tolist() == has("[,.]").tolist()
    digits = expect.str.fullmatch("[0-9]*", flags=0)
    assert rows_with_byte(texts, not_ascii_digit).tolist() == (~digits.astype(bool)).tolist()
    assert leading_zero_rows(texts).tolist() == expect.str.startswith("0").tolist()
    # Where edge_rows is False, stripping (as Sheet.text does) changes nothing.
    unchanged = (texts.str.strip() == texts).to_numpy(dtype=bool)
    assert (edge_rows(texts) | unchanged).all()


def test_byte_scans_with_more_hits_than_rows_and_empty_rows() -> None:
    values = ["", "eeee", "", "x", "EeE", "", "1e5", ""]
    assert rows_with_byte(arrow_series(values), is_e).tolist() == [
        False, True, False, False, True, False, True, False,
    ]  # fmt: skip
    assert rows_with_byte(arrow_series(["", ""]), is_e).tolist() == [False, False]
    assert edge_rows(arrow_series(["", " a", "a ", "a", "\xa0", ""])).tolist() == [
        False, True, True, False, True, False,
    ]  # fmt: skip


def test_missing_values_count_as_no_hit() -> None:
    texts = pd.Series(["e", None, " x"], dtype=ARROW_TEXT)
    assert rows_with_byte(texts, is_e).tolist() == [True, False, False]
    assert edge_rows(texts).tolist() == [False, False, True]


REPEATABLE = ["", "a", "ab", "T-1", "T-10", "x" * 9, "x" * 10, "é", "漢字",
              "01234567890123456789", "01234567890123456780"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.sampled_from(REPEATABLE), max_size=30))
def test_repeated_is_duplicated_keep_false(values: list[str]) -> None:
    texts = arrow_series(values)
    expect = plain(values).duplicated(keep=False).tolist()
    assert repeated(texts).tolist() == expect
    # The same texts in other chunks hash the same.
    assert text_hashes(texts).tolist() == text_hashes(arrow_series(values, 1)).tolist()


@settings(max_examples=100, deadline=None)
@given(values=awkward_texts)
def test_repeated_stays_exact_when_every_hash_collides(values: list[str]) -> None:
    original = textscan.text_hashes
    try:
        textscan.text_hashes = lambda texts: np.zeros(len(texts), dtype=np.uint64)
        got = repeated(arrow_series(values)).tolist()
    finally:
        textscan.text_hashes = original
    assert got == plain(values).duplicated(keep=False).tolist()


ACCOUNTS = ["", "0", "00", "012", "12", "0012", "1" * 18, "0" + "1" * 17, "1" * 19, "9" * 18,
            "0" * 18, "1" * 34, "12a", "١٢", "１２", " 12", "+12", "-12", "1e5", "1.0"]  # fmt: skip
accounts = st.lists(st.sampled_from(ACCOUNTS), max_size=30)


@settings(max_examples=200, deadline=None)
@given(values=accounts)
def test_account_keys_are_equal_exactly_where_the_texts_are(values: list[str]) -> None:
    keys = account_keys(arrow_series(values))
    expect, _ = pd.factorize(plain(values))
    assert pd.factorize(keys)[0].tolist() == expect.tolist()


@settings(max_examples=100, deadline=None)
@given(
    values=accounts,
    amounts=st.lists(st.sampled_from([-1, 0, 100, 5, 2**62]), min_size=30, max_size=30),
    collide=st.booleans(),
)
def test_repeated_pairs_are_exact_even_when_hashes_collide(
    values: list[str], amounts: list[int], collide: bool
) -> None:
    first = account_keys(arrow_series(values))
    second = np.array(amounts[: len(values)], dtype=np.int64)
    original = damage.mix
    try:
        if collide:
            damage.mix = lambda *columns: np.zeros(len(columns[0]), dtype=np.uint64)
        got = damage._repeated_pairs(first, second).tolist()
    finally:
        damage.mix = original
    expect = pd.DataFrame({"a": values, "b": second}).duplicated(keep=False).tolist()
    assert got == expect


def old_parse_amounts(series: pd.Series) -> list[int]:
    """parse_amounts before the byte scan: every row through the replacements."""
    ok = series.str.fullmatch(sheet_rules()["amount"]["pattern"]).fillna(False).astype(bool)
    digits = (
        series.where(ok, "-1")
        .str.replace(",", "", regex=False)
        .str.replace(r"\..*", "", regex=True)
    )
    too_long = digits.str.len() > 18
    whole: list[int] = digits.where(~too_long, "-1").astype("int64[pyarrow]").tolist()
    return whole


AMOUNTS = ["100", "1,000", "1,000.00", "100.0", "100.5", "1.", ".0", "0100", "1e3", "", "abc",
           "1" * 18, "1" * 19, "1,0000", "12,345,678", "99", "１００", "1,000.000"]  # fmt: skip
amount_texts = st.lists(st.sampled_from(AMOUNTS), max_size=30)


@settings(max_examples=200, deadline=None)
@given(values=amount_texts)
def test_parse_amounts_and_their_canonical_text_are_as_before(values: list[str]) -> None:
    texts = arrow_series(values)
    amounts = parse_amounts(texts).to_numpy()
    assert amounts.tolist() == old_parse_amounts(texts)
    invalid = amounts < 100
    valid = np.where(invalid, 0, np.maximum(amounts, 0))
    before = texts.where(invalid, pd.Series(valid).astype(ARROW_TEXT))
    assert _canonical_amounts(texts, valid, invalid).tolist() == before.tolist()


def sheet_of(columns: dict[str, list[str]]) -> Sheet:
    names = list(columns)
    frame = pd.DataFrame({i: arrow_series(columns[n]) for i, n in enumerate(names)})
    size = len(frame)
    return Sheet(
        path=Path("p.csv"), sheet_name=None, headers=names, frame=frame,
        row_numbers=np.arange(2, size + 2, dtype=np.int64),
        columns={n: i for i, n in enumerate(names) if n in CANONICAL},
    )  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(values=awkward_texts)
def test_text_is_the_sheets_stripped_text_in_one_chunk(values: list[str]) -> None:
    sheet = sheet_of({"remark": values})
    text = sheet.text("remark")
    # Stripped exactly as pandas strips the column, whether or not the byte scan skipped it.
    assert text.tolist() == sheet.frame[sheet.columns["remark"]].str.strip().tolist()
    assert text.dtype == ARROW_TEXT
    assert getattr(pa.array(text), "num_chunks", 1) == 1
    if not edge_rows(sheet.frame[sheet.columns["remark"]]).any():
        assert text.tolist() == values
    absent = sheet.text("notifyUrl")
    assert absent.tolist() == [""] * len(values) and absent.dtype == ARROW_TEXT


@pytest.mark.parametrize("strict", [False, True])
def test_validation_is_the_same_when_every_hash_collides(strict: bool) -> None:
    rng = np.random.default_rng(5)
    size = 400
    numbers, widths = rng.integers(0, 30, size), rng.integers(1, 4, size)
    columns = {
        "amount": [str(v) for v in rng.choice([100, 200, 1000], size)],
        "accountNo": [f"{v:0{w}d}" for v, w in zip(numbers, widths, strict=True)],
        "mobile": ["0917123456"] * size,
        "email": ["a@example.com"] * size,
        "firstname": ["Ann"] * size,
        "lastname": ["Lee"] * size,
        "tradeNo": [f"T{v}" if v % 3 else "" for v in rng.integers(0, 300, size)],
    }
    sheet = sheet_of(columns)
    expect = validate(sheet, strict_duplicates=strict)

    def zeros(*args: Any) -> np.ndarray:
        return np.zeros(len(args[0]), dtype=np.uint64)

    originals = textscan.text_hashes, damage.mix
    try:
        textscan.text_hashes, damage.mix = zeros, zeros
        got = validate(sheet, strict_duplicates=strict)
    finally:
        textscan.text_hashes, damage.mix = originals
    assert got.problems == expect.problems and got.warnings == expect.warnings
    assert got.row_errors == expect.row_errors
    assert any("same account number" in p.rule for p in [*got.problems, *got.warnings])
    assert any("more than once" in p.rule for p in got.problems)
