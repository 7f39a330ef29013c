"""Reading beneficiary sheets (CSV and workbooks) from real files, and validating their rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter

from batchpay.errors import InputError
from batchpay.sheets.read import NUMBER, TEXT, read_sheet
from batchpay.sheets.validate import NUMBER_CELL_RULE, Problem, sheet_rules, validate

HEADER = ["amount", "accountNo", "mobile", "email", "firstname", "lastname"]
ROW = ["100", "12345", "0917123456", "ann@example.com", "Ann", "Lee"]

AMOUNT_RULE = sheet_rules()["amount"]["rule"]
ACCOUNT_RULE = sheet_rules()["accountNo"]["rule"]
MOBILE_RULE = sheet_rules()["mobile"]["rule"]
EMAIL_RULE = sheet_rules()["email"]["rule"]
NAME_RULE = sheet_rules()["firstname"]["rule"]
TRADE_NO_RULE = sheet_rules()["tradeNo"]["rule"]
NOTIFY_RULE = sheet_rules()["notifyUrl"]["rule"]


def csv_text(rows: Sequence[Sequence[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue()


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    path.write_bytes(csv_text(rows, delimiter).encode(encoding))
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """Rows from A1 down; an empty list is a blank row."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for index, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            if value is not None:
                sheet.cell(row=index, column=column, value=value)
    workbook.save(path)
    return path


def with_field(column: str, value: str) -> list[str]:
    row = list(ROW)
    row[HEADER.index(column)] = value
    return row


# --- header matching ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "account_header",
    [
        pytest.param("accountNo", id="canonical"),
        pytest.param("Account No", id="spaced-title-case"),
        pytest.param("account_no", id="underscore"),
        pytest.param("ACCOUNT-NO", id="hyphen-upper-case"),
        pytest.param("  Account  No  ", id="extra-spaces"),
        pytest.param("account - _ no", id="mixed-separators"),
    ],
)
def test_header_matching_ignores_case_spaces_underscores_and_hyphens(tmp_path, account_header):
    header = ["amount", account_header, "mobile", "email", "firstname", "lastname"]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [header, ROW]))
    assert sheet.has("accountNo")
    assert sheet.columns["accountNo"] == 1
    assert sheet.text("accountNo").tolist() == ["12345"]


def test_every_canonical_column_is_found_under_a_human_spelling(tmp_path):
    header = [
        "AMOUNT",
        "Account No",
        "Mobile",
        "E-mail",
        "First Name",
        "last_name",
        "Trade-No",
        "Notify URL",
        "REMARK",
    ]
    row = [*ROW, "T-1", "https://example.com/cb", "bonus"]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [header, row]))
    assert sheet.columns == {
        "amount": 0,
        "accountNo": 1,
        "mobile": 2,
        "email": 3,
        "firstname": 4,
        "lastname": 5,
        "tradeNo": 6,
        "notifyUrl": 7,
        "remark": 8,
    }
    assert sheet.header_of("notifyUrl") == "Notify URL"
    assert sheet.text("tradeNo").tolist() == ["T-1"]


def test_other_columns_are_kept_in_their_original_order(tmp_path):
    header = ["Employee ID", "amount", "Department", *HEADER[1:], "Note"]
    row = ["E7", "100", "Sales", *ROW[1:], "thanks"]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [header, row]))
    assert sheet.headers == header
    assert sheet.frame.iloc[0].tolist() == row
    assert sheet.columns["amount"] == 1
    assert sheet.columns["accountNo"] == 3


def test_optional_columns_absent_read_as_empty_text(tmp_path):
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [HEADER, ROW, ROW]))
    assert not sheet.has("tradeNo")
    assert sheet.text("tradeNo").tolist() == ["", ""]


# --- row numbers -------------------------------------------------------------------------


def test_csv_header_is_row_one_and_first_data_row_is_row_two(tmp_path):
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [HEADER, ROW, ROW]))
    assert sheet.row_numbers.tolist() == [2, 3]
    assert len(sheet) == 2


def test_csv_blank_lines_are_skipped_but_later_rows_keep_their_true_row_number(tmp_path):
    rows = [HEADER, ROW, [], with_field("amount", "200"), [""] * 6, with_field("amount", "300")]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", rows))
    assert sheet.row_numbers.tolist() == [2, 4, 6]
    assert sheet.text("amount").tolist() == ["100", "200", "300"]


def test_csv_blank_lines_before_the_header_count_as_rows(tmp_path):
    path = tmp_path / "pay.csv"
    path.write_text("\n\n" + csv_text([HEADER, ROW]), newline="")
    sheet = read_sheet(path)
    assert sheet.row_numbers.tolist() == [4]


def test_workbook_header_on_row_three_reports_data_rows_from_four(tmp_path):
    path = write_xlsx(tmp_path / "pay.xlsx", [[], [], HEADER, ROW, [], with_field("amount", "250")])
    sheet = read_sheet(path)
    assert sheet.row_numbers.tolist() == [4, 6]
    assert sheet.text("amount").tolist() == ["100", "250"]


def test_workbook_written_by_xlsxwriter_with_header_on_row_three(tmp_path):
    path = tmp_path / "pay.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    worksheet = workbook.add_worksheet("Payroll")
    worksheet.write_row(2, 0, HEADER)
    worksheet.write_row(3, 0, ROW)
    worksheet.write_row(4, 0, with_field("amount", "300"))
    workbook.close()
    sheet = read_sheet(path)
    assert sheet.sheet_name == "Payroll"
    assert sheet.row_numbers.tolist() == [4, 5]
    assert sheet.text("amount").tolist() == ["100", "300"]


def test_workbook_problem_reports_the_true_sheet_row(tmp_path):
    path = write_xlsx(tmp_path / "pay.xlsx", [[], [], HEADER, ROW, [], with_field("email", "x")])
    validation = validate(read_sheet(path))
    assert validation.problems == [Problem(6, "email", "x", EMAIL_RULE)]


# --- encodings and dialects --------------------------------------------------------------


def test_utf8_bom_does_not_break_the_first_header(tmp_path):
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [HEADER, ROW], encoding="utf-8-sig"))
    assert sheet.headers[0] == "amount"
    assert sheet.has("amount")
    assert sheet.text("amount").tolist() == ["100"]


def test_semicolon_delimited_csv_is_read(tmp_path):
    rows = [HEADER, ROW, with_field("amount", "1.000")]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", rows, delimiter=";"))
    assert sheet.headers == HEADER
    assert sheet.frame.iloc[0].tolist() == ROW
    assert sheet.text("amount").tolist() == ["100", "1.000"]


def test_semicolon_delimited_csv_with_quoted_comma_is_read(tmp_path):
    rows = [[*HEADER, "note"], [*ROW, "Lee, Ann"]]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", rows, delimiter=";"))
    assert sheet.headers == [*HEADER, "note"]
    assert sheet.frame.iat[0, 6] == "Lee, Ann"


def test_semicolon_delimited_csv_with_multiline_quoted_field_is_read(tmp_path):
    rows = [[*HEADER, "note"], [*ROW, "first line; part\nsecond line"]]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", rows, delimiter=";"))
    assert sheet.headers == [*HEADER, "note"]
    assert sheet.frame.iat[0, 6] == "first line; part\nsecond line"


def test_tab_delimited_csv_is_read(tmp_path):
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [HEADER, ROW], delimiter="\t"))
    assert sheet.headers == HEADER
    assert sheet.frame.iloc[0].tolist() == ROW


def test_tab_delimited_tsv_extension_is_read(tmp_path):
    sheet = read_sheet(write_csv(tmp_path / "pay.tsv", [HEADER, ROW], delimiter="\t"))
    assert sheet.frame.iloc[0].tolist() == ROW


def test_quoted_field_with_comma_and_newline_is_read_intact(tmp_path):
    rows = [[*HEADER, "address"], [*ROW, "12 Main St, Apt 4\nMakati City"], [*ROW, "x"]]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", rows))
    assert sheet.frame.iat[0, 6] == "12 Main St, Apt 4\nMakati City"
    assert sheet.frame.iloc[1].tolist() == [*ROW, "x"]
    # The multi-line record takes two physical lines, but it is one sheet row.
    assert sheet.row_numbers.tolist() == [2, 3]


def test_utf16_with_bom_is_read(tmp_path):
    row = with_field("firstname", "José")
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [HEADER, row], encoding="utf-16"))
    assert sheet.headers == HEADER
    assert sheet.frame.iloc[0].tolist() == row


def test_utf16_big_endian_with_bom_is_read(tmp_path):
    path = tmp_path / "pay.csv"
    path.write_bytes(b"\xfe\xff" + csv_text([HEADER, ROW]).encode("utf-16-be"))
    sheet = read_sheet(path)
    assert sheet.frame.iloc[0].tolist() == ROW


def test_non_ascii_utf8_values_are_read(tmp_path):
    row = with_field("lastname", "渡辺")
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [HEADER, row]))
    assert sheet.text("lastname").tolist() == ["渡辺"]


# --- workbook cell types -----------------------------------------------------------------


def test_xlsx_numeric_cells_are_typed_number_and_text_cells_text(tmp_path):
    rows = [HEADER, [100, 12345, "0917123456", "a@b.co", "A", "B"], ["100", "0012345", *ROW[2:]]]
    sheet = read_sheet(write_xlsx(tmp_path / "pay.xlsx", rows))
    assert sheet.types("accountNo").tolist() == [NUMBER, TEXT]
    assert sheet.types("amount").tolist() == [NUMBER, TEXT]
    assert sheet.types("mobile").tolist() == [TEXT, TEXT]
    assert sheet.text("accountNo").tolist() == ["12345", "0012345"]
    assert sheet.text("amount").tolist() == ["100", "100"]


def test_csv_has_no_cell_types(tmp_path):
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [HEADER, ROW]))
    assert sheet.types("accountNo") is None


def test_long_account_number_stored_as_float_reads_back_as_digits(tmp_path):
    rows = [HEADER, ["100", float(880123456789012345), *ROW[2:]]]
    sheet = read_sheet(write_xlsx(tmp_path / "pay.xlsx", rows))
    assert sheet.types("accountNo").tolist() == [NUMBER]
    # The float cannot hold 18 digits exactly; what comes back are the float's digits.
    assert sheet.text("accountNo").tolist() == [str(int(float(880123456789012345)))]
    assert sheet.text("accountNo")[0].isdigit()


def test_long_account_number_stored_as_float_is_reported_as_a_number_cell(tmp_path):
    rows = [HEADER, ["100", float(880123456789012345), *ROW[2:]]]
    sheet = read_sheet(write_xlsx(tmp_path / "pay.xlsx", rows))
    validation = validate(sheet)
    assert [(p.row, p.column, p.rule) for p in validation.problems] == [
        (2, "accountNo", NUMBER_CELL_RULE)
    ]
    assert validation.invalid.tolist() == [True]


def test_account_number_that_looks_fine_but_is_a_number_cell_is_refused(tmp_path):
    rows = [HEADER, ["100", 12345, *ROW[2:]], ROW]
    validation = validate(read_sheet(write_xlsx(tmp_path / "pay.xlsx", rows)))
    assert validation.problems == [Problem(2, "accountNo", "12345", NUMBER_CELL_RULE)]
    assert validation.invalid.tolist() == [True, False]


def test_mobile_stored_as_number_that_lost_its_leading_zero_is_restored_with_a_warning(
    tmp_path,
):
    rows = [HEADER, ["100", "12345", 917123456, *ROW[3:]]]
    validation = validate(read_sheet(write_xlsx(tmp_path / "pay.xlsx", rows)))
    assert validation.problems == []
    assert [(w.row, w.column, w.value) for w in validation.warnings] == [(2, "mobile", "917123456")]
    assert "read as 0917123456" in validation.warnings[0].rule
    assert validation.fields["mobile"].tolist() == ["0917123456"]


def test_mobile_number_cell_that_cannot_be_restored_unambiguously_is_an_error(tmp_path):
    rows = [HEADER, ["100", "12345", 12345, *ROW[3:]]]
    validation = validate(read_sheet(write_xlsx(tmp_path / "pay.xlsx", rows)))
    # The number-cell rule outranks the pattern rule: one problem per cell.
    assert validation.problems == [Problem(2, "mobile", "12345", NUMBER_CELL_RULE)]


def test_amount_stored_as_number_is_accepted(tmp_path):
    rows = [HEADER, [1500, *ROW[1:]]]
    validation = validate(read_sheet(write_xlsx(tmp_path / "pay.xlsx", rows)))
    assert validation.problems == []
    assert validation.amounts.tolist() == [1500]


# --- header errors -----------------------------------------------------------------------


def test_missing_required_column_names_it(tmp_path):
    header = [h for h in HEADER if h != "email"]
    row = [v for h, v in zip(HEADER, ROW, strict=True) if h != "email"]
    with pytest.raises(InputError, match="missing required column: email"):
        read_sheet(write_csv(tmp_path / "pay.csv", [header, row]))


def test_missing_column_message_names_the_closest_header(tmp_path):
    header = ["amount", "Acount No", "mobile", "email", "firstname", "lastname"]
    with pytest.raises(InputError) as caught:
        read_sheet(write_csv(tmp_path / "pay.csv", [header, ROW]))
    message = str(caught.value)
    assert "accountNo" in message
    assert "closest header: 'Acount No'" in message
    assert "pay.csv" in message


def test_several_missing_columns_are_all_named(tmp_path):
    header = ["amount", "accountNo", "mobile", "email", "Name", "Surname"]
    with pytest.raises(InputError) as caught:
        read_sheet(write_csv(tmp_path / "pay.csv", [header, ROW]))
    message = str(caught.value)
    assert "missing required columns" in message
    assert "firstname" in message
    assert "lastname" in message


def test_two_headers_meaning_account_no_are_refused(tmp_path):
    header = ["amount", "Account No", "mobile", "email", "firstname", "lastname", "account_no"]
    with pytest.raises(InputError) as caught:
        read_sheet(write_csv(tmp_path / "pay.csv", [header, [*ROW, "999"]]))
    message = str(caught.value)
    assert "'Account No'" in message
    assert "'account_no'" in message
    assert "accountNo" in message


# --- unreadable inputs: always InputError ------------------------------------------------


def test_empty_file_is_an_input_error(tmp_path):
    path = tmp_path / "pay.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_sheet(path)


def test_file_of_blank_lines_is_an_input_error(tmp_path):
    path = tmp_path / "pay.csv"
    path.write_bytes(b"\r\n\r\n  \r\n")
    with pytest.raises(InputError, match="no header"):
        read_sheet(path)


def test_header_only_csv_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="header but no rows"):
        read_sheet(write_csv(tmp_path / "pay.csv", [HEADER]))


def test_header_only_workbook_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="header but no rows"):
        read_sheet(write_xlsx(tmp_path / "pay.xlsx", [HEADER]))


def test_empty_workbook_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        read_sheet(write_xlsx(tmp_path / "pay.xlsx", []))


@pytest.mark.parametrize("name", ["pay.json", "pay.pdf", "pay"])
def test_unsupported_extension_is_an_input_error(tmp_path, name):
    path = tmp_path / name
    path.write_text(csv_text([HEADER, ROW]))
    with pytest.raises(InputError, match="unsupported file type"):
        read_sheet(path)


def test_csv_renamed_xlsx_is_an_input_error(tmp_path):
    path = tmp_path / "pay.xlsx"
    path.write_text(csv_text([HEADER, ROW]))
    with pytest.raises(InputError, match=r"is a text \(CSV\) file with a .xlsx name; rename it"):
        read_sheet(path)


def test_workbook_renamed_csv_is_an_input_error(tmp_path):
    workbook = write_xlsx(tmp_path / "pay.xlsx", [HEADER, ROW])
    path = tmp_path / "pay.csv"
    path.write_bytes(workbook.read_bytes())
    with pytest.raises(InputError):
        read_sheet(path)


def test_a_windows_1252_csv_is_read_with_a_note_suggesting_utf8(tmp_path):
    path = tmp_path / "pay.csv"
    path.write_bytes(csv_text([HEADER, with_field("firstname", "José")]).encode("cp1252"))
    sheet = read_sheet(path)
    assert sheet.text("firstname").tolist() == ["José"]
    assert len(sheet.notes) == 1 and "read as Windows-1252" in sheet.notes[0]
    assert 'save the file as "CSV UTF-8"' in sheet.notes[0]


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_sheet(tmp_path / "nowhere.csv")


def test_folder_is_an_input_error(tmp_path):
    folder = tmp_path / "pay.csv"
    folder.mkdir()
    with pytest.raises(InputError, match="folder"):
        read_sheet(folder)


def test_unknown_worksheet_name_is_an_input_error(tmp_path):
    path = write_xlsx(tmp_path / "pay.xlsx", [HEADER, ROW])
    with pytest.raises(InputError, match="no sheet named 'Nope'"):
        read_sheet(path, sheet="Nope")


def test_csv_values_beyond_the_last_header_name_the_row(tmp_path):
    rows = [HEADER, ROW, ROW, [*ROW, "stray"]]
    with pytest.raises(InputError, match=r"row 4 has values beyond the last header"):
        read_sheet(write_csv(tmp_path / "pay.csv", rows))


def test_csv_empty_cells_beyond_the_last_header_are_fine(tmp_path):
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", [HEADER, [*ROW, "", " "]]))
    assert sheet.headers == HEADER
    assert sheet.frame.iloc[0].tolist() == ROW


def test_workbook_values_beyond_the_last_header_name_the_row(tmp_path):
    rows = [HEADER, ROW, [*ROW, None, "stray"]]
    with pytest.raises(InputError, match=r"row 3 has values beyond the last header"):
        read_sheet(write_xlsx(tmp_path / "pay.xlsx", rows))


# --- validate: amounts -------------------------------------------------------------------


def test_accepted_amount_forms_are_normalized_to_whole_numbers(tmp_path):
    amounts = ["100", "100.00", "1,000", "1,000.00"]
    rows = [HEADER, *(with_field("amount", a) for a in amounts)]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    assert validation.problems == []
    assert validation.amounts.tolist() == [100, 100, 1000, 1000]
    assert validation.fields["amount"].tolist() == ["100", "100", "1000", "1000"]
    assert validation.invalid.tolist() == [False] * 4
    assert validation.valid_count == 4


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param("100.5", id="fraction"),
        pytest.param("99", id="below-minimum"),
        pytest.param("abc", id="letters"),
        pytest.param("1,00", id="bad-grouping"),
        pytest.param("１００", id="full-width-digits"),
        pytest.param("-100", id="negative"),
        pytest.param("", id="empty"),
        pytest.param("100 yuan", id="with-unit"),
    ],
)
def test_refused_amounts_are_reported_with_row_header_value_and_rule(tmp_path, amount):
    rows = [["Amount", *HEADER[1:]], ROW, with_field("amount", amount)]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    assert validation.problems == [Problem(3, "Amount", amount, AMOUNT_RULE)]
    assert validation.invalid.tolist() == [False, True]
    assert validation.amounts.tolist() == [100, 0]
    assert validation.fields["amount"].tolist() == ["100", amount]


# --- validate: other columns -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mobile", "ok"),
    [
        pytest.param("0917123456", True, id="ten-digits-leading-zero"),
        # Surrounding white space is trimmed (README): the value sent has no newline.
        pytest.param("0917123456\n", True, id="trailing-newline-trimmed"),
        pytest.param("0917\n123456", False, id="newline-inside"),
        pytest.param("０917123456", False, id="full-width-zero"),
        pytest.param("917123456", False, id="no-leading-zero"),
        pytest.param("09171234567", False, id="eleven-digits"),
        pytest.param("+63917123456", False, id="country-code"),
        pytest.param("0917 123 456", False, id="spaces-inside"),
    ],
)
def test_mobile_must_be_ten_ascii_digits_starting_with_zero(tmp_path, mobile, ok):
    rows = [["MOBILE" if h == "mobile" else h for h in HEADER], with_field("mobile", mobile)]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    expected = [] if ok else [Problem(2, "MOBILE", mobile, MOBILE_RULE)]
    assert validation.problems == expected


def test_surrounding_white_space_is_trimmed_from_the_value_that_is_sent(tmp_path):
    rows = [HEADER, with_field("mobile", " 0917123456\n")]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    assert validation.problems == []
    assert validation.fields["mobile"].tolist() == ["0917123456"]


@pytest.mark.parametrize(
    ("account", "ok"),
    [
        pytest.param("0012345678", True, id="digits-with-leading-zeros"),
        pytest.param("1" * 34, True, id="34-digits"),
        pytest.param("1" * 35, False, id="35-digits"),
        pytest.param("1234 5678", False, id="space"),
        pytest.param("1234-5678", False, id="dash"),
        pytest.param("AB12345", False, id="letters"),
        pytest.param("１２３", False, id="full-width"),
        pytest.param("", False, id="empty"),
    ],
)
def test_account_number_must_be_ascii_digits_only(tmp_path, account, ok):
    rows = [["amount", "Account No", *HEADER[2:]], with_field("accountNo", account)]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    expected = [] if ok else [Problem(2, "Account No", account, ACCOUNT_RULE)]
    assert validation.problems == expected


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        pytest.param("ann@example.com", True, id="plain"),
        pytest.param("ann.lee+pay@mail.example.co", True, id="subdomain-and-plus"),
        pytest.param("ann@example", False, id="no-dot-in-domain"),
        pytest.param("ann.example.com", False, id="no-at"),
        pytest.param("ann lee@example.com", False, id="space"),
        pytest.param("ann@@example.com", False, id="double-at"),
        pytest.param("", False, id="empty"),
    ],
)
def test_email_must_look_like_an_address(tmp_path, email, ok):
    rows = [HEADER, with_field("email", email)]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    expected = [] if ok else [Problem(2, "email", email, EMAIL_RULE)]
    assert validation.problems == expected


@pytest.mark.parametrize("column", ["firstname", "lastname"])
@pytest.mark.parametrize("value", [pytest.param("", id="empty"), pytest.param("   ", id="blank")])
def test_empty_first_or_last_name_is_refused(tmp_path, column, value):
    rows = [HEADER, ROW, with_field(column, value)]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    assert validation.problems == [Problem(3, column, value, NAME_RULE)]
    assert "is empty: it must not be empty" in validation.problems[0].describe()


def test_duplicate_trade_no_is_refused_on_both_rows_while_empty_ones_are_fine(tmp_path):
    header = [*HEADER, "Trade No"]
    rows = [header, [*ROW, "T1"], [*ROW, ""], [*ROW, "T1"], [*ROW, ""], [*ROW, "T2"]]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    rule = "appears more than once in the file: " + TRADE_NO_RULE
    assert validation.problems == [
        Problem(2, "Trade No", "T1", rule),
        Problem(4, "Trade No", "T1", rule),
    ]
    assert validation.invalid.tolist() == [True, False, True, False, False]


def test_same_account_and_amount_is_a_duplicate_only_where_the_texts_are_equal(tmp_path):
    # Leading zeros count ("012" is not "12"); the amount compares by value ("1,000" is 1000).
    rows = [HEADER, with_field("accountNo", "012"), with_field("accountNo", "12"),
            with_field("accountNo", "012"), with_field("amount", "1,000"),
            with_field("amount", "1000"), with_field("amount", "200")]  # fmt: skip
    for strict in (False, True):
        validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)),
                              strict_duplicates=strict)  # fmt: skip
        found = validation.problems if strict else validation.warnings
        assert [(p.row, p.value) for p in found] == [(2, "012"), (4, "012"), (5, "12345"),
                                                     (6, "12345")]  # fmt: skip
        assert all("same account number and amount as row" in p.rule for p in found)


def test_trade_no_with_forbidden_characters_is_refused(tmp_path):
    rows = [[*HEADER, "tradeNo"], [*ROW, "T 1"]]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    assert validation.problems == [Problem(2, "tradeNo", "T 1", TRADE_NO_RULE)]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        pytest.param("", True, id="absent"),
        pytest.param("http://example.com/cb", True, id="http"),
        pytest.param("https://example.com/cb?x=1", True, id="https"),
        pytest.param("ftp://example.com/cb", False, id="ftp"),
        pytest.param("example.com/cb", False, id="no-scheme"),
        pytest.param("https://", False, id="scheme-only"),
        pytest.param("https://exa mple.com", False, id="space"),
    ],
)
def test_notify_url_must_be_http_or_https_when_given(tmp_path, url, ok):
    rows = [[*HEADER, "Notify Url"], [*ROW, url]]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    expected = [] if ok else [Problem(2, "Notify Url", url, NOTIFY_RULE)]
    assert validation.problems == expected


def test_every_problem_names_row_header_as_written_raw_value_and_plain_rule(tmp_path):
    header = ["AMOUNT", "Account_No", "Mo-bile", "E-Mail", "First Name", "LAST-NAME"]
    bad = ["1,00", "12a", "12345", "nobody", "Ann", ""]
    rows = [header, ROW, [], bad]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    # The order of problems within one row is not part of the contract.
    assert sorted(validation.problems, key=lambda p: p.column) == sorted(
        [
            Problem(4, "AMOUNT", "1,00", AMOUNT_RULE),
            Problem(4, "Account_No", "12a", ACCOUNT_RULE),
            Problem(4, "Mo-bile", "12345", MOBILE_RULE),
            Problem(4, "E-Mail", "nobody", EMAIL_RULE),
            Problem(4, "LAST-NAME", "", NAME_RULE),
        ],
        key=lambda p: p.column,
    )
    assert validation.invalid.tolist() == [False, True]
    assert validation.row_errors[0] == ""
    assert f"AMOUNT: '1,00' {AMOUNT_RULE}" in validation.row_errors[1]
    assert f"E-Mail: 'nobody' {EMAIL_RULE}" in validation.row_errors[1]
    assert "LAST-NAME: empty, it must not be empty" in validation.row_errors[1]
    for header_as_written in ("AMOUNT:", "Account_No:", "Mo-bile:", "E-Mail:", "LAST-NAME:"):
        assert header_as_written in validation.row_errors[1]
    assert "First Name" not in validation.row_errors[1]
    for problem in validation.problems:
        assert problem.rule.startswith("must ")
        assert "[0-9]" not in problem.rule


def test_problem_value_is_the_raw_cell_text(tmp_path):
    rows = [HEADER, with_field("amount", " 12.5 ")]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    assert validation.problems == [Problem(2, "amount", " 12.5 ", AMOUNT_RULE)]


def test_problems_are_sorted_by_sheet_row(tmp_path):
    rows = [HEADER, with_field("email", "x"), with_field("amount", "1"), with_field("mobile", "1")]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    assert [(p.row, p.column) for p in validation.problems] == [
        (2, "email"),
        (3, "amount"),
        (4, "mobile"),
    ]


def test_custom_mobile_pattern_is_honoured(tmp_path):
    rows = [HEADER, with_field("mobile", "639171234567"), with_field("mobile", "0917123456")]
    sheet = read_sheet(write_csv(tmp_path / "pay.csv", rows))
    custom = validate(sheet, mobile_pattern="63[0-9]{10}")
    assert [(p.row, p.column, p.value) for p in custom.problems] == [(3, "mobile", "0917123456")]
    default = validate(sheet)
    assert [(p.row, p.column, p.value) for p in default.problems] == [(2, "mobile", "639171234567")]


def test_valid_sheet_has_no_problems_and_no_row_errors(tmp_path):
    other = [ROW[0], "99887766", *ROW[2:]]  # another account: not a duplicate payout
    rows = [[*HEADER, "remark"], [*ROW, "May salary"], [*other, ""]]
    validation = validate(read_sheet(write_csv(tmp_path / "pay.csv", rows)))
    assert validation.problems == []
    assert validation.warnings == []
    assert validation.row_errors == ["", ""]
    assert validation.valid_count == 2
    assert validation.amounts.tolist() == [100, 100]
