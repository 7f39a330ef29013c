"""The gateway signature (gateway contract, section 4): the worked example and its properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from batchpay.signing import sign, signing_string, verify

SECRET = "s3cr3t"
EXAMPLE_BODY = {"amount": "100", "tradeNo": "T1", "timestamp": "1719876543210"}
EXAMPLE_STRING = "amount=100timestamp=1719876543210tradeNo=T1"
EXAMPLE_SIGN = "caa9d7446371ba0ccd8b02e8b06a9a7f"


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


# --- the contract's worked example -------------------------------------------------------


def test_worked_example_signing_string_is_sorted_key_value_pairs_without_secret():
    assert signing_string(EXAMPLE_BODY) == EXAMPLE_STRING


def test_worked_example_sign_matches_the_contract_vector():
    assert sign(EXAMPLE_BODY, SECRET) == EXAMPLE_SIGN


def test_worked_example_sign_is_md5_of_string_with_secret_appended():
    assert md5_hex(EXAMPLE_STRING + SECRET) == EXAMPLE_SIGN


def test_existing_sign_field_is_ignored_when_signing():
    body = {**EXAMPLE_BODY, "sign": "0123456789abcdef0123456789abcdef"}
    assert signing_string(body) == EXAMPLE_STRING
    assert sign(body, SECRET) == EXAMPLE_SIGN


def test_sign_is_lowercase_hex_of_32_characters():
    result = sign({"tradeNo": "ABC", "remark": "ÄÖÜ"}, "KEY")
    assert len(result) == 32
    assert result == result.lower()
    assert set(result) <= set("0123456789abcdef")


def test_seed_placeholder_sign_is_not_the_example_vector():
    # The seed's example sign is MD5("password1"), a placeholder, never a real signature.
    assert md5_hex("password1") == "7c6a180b36896a0a8c02787eeafb0e4c"
    assert sign(EXAMPLE_BODY, SECRET) != "7c6a180b36896a0a8c02787eeafb0e4c"


# --- verify ------------------------------------------------------------------------------


def test_verify_accepts_the_right_sign():
    assert verify({**EXAMPLE_BODY, "sign": EXAMPLE_SIGN}, SECRET) is True


def test_verify_rejects_a_tampered_value():
    tampered = {**EXAMPLE_BODY, "amount": "1000", "sign": EXAMPLE_SIGN}
    assert verify(tampered, SECRET) is False


def test_verify_rejects_an_added_field():
    extended = {**EXAMPLE_BODY, "remark": "x", "sign": EXAMPLE_SIGN}
    assert verify(extended, SECRET) is False


def test_verify_rejects_a_wrong_secret():
    assert verify({**EXAMPLE_BODY, "sign": EXAMPLE_SIGN}, "s3cr3T") is False


def test_verify_rejects_a_missing_sign():
    assert verify(dict(EXAMPLE_BODY), SECRET) is False


@pytest.mark.parametrize(
    "bad_sign",
    [
        pytest.param("", id="empty"),
        pytest.param(None, id="null"),
        pytest.param(12345, id="number"),
        pytest.param(EXAMPLE_SIGN[:-1], id="truncated"),
        pytest.param(EXAMPLE_SIGN + "0", id="too-long"),
        pytest.param(" " + EXAMPLE_SIGN, id="leading-space"),
        pytest.param("é" * 32, id="non-ascii"),
    ],
)
def test_verify_rejects_a_malformed_sign(bad_sign):
    assert verify({**EXAMPLE_BODY, "sign": bad_sign}, SECRET) is False


def test_verify_accepts_upper_case_hex_because_it_compares_lower_cased():
    assert verify({**EXAMPLE_BODY, "sign": EXAMPLE_SIGN.upper()}, SECRET) is True


def test_verify_accepts_mixed_case_hex():
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(EXAMPLE_SIGN))
    assert mixed != EXAMPLE_SIGN
    assert verify({**EXAMPLE_BODY, "sign": mixed}, SECRET) is True


def test_verify_rejects_upper_case_hex_of_a_wrong_sign():
    wrong = sign(EXAMPLE_BODY, "other").upper()
    assert verify({**EXAMPLE_BODY, "sign": wrong}, SECRET) is False


def test_verify_uses_callback_values_as_received_numbers_in_json_text_form():
    # A callback parsed with parse_int=str keeps "100"; an int 100 gives the same text.
    as_text = {"amount": "100", "status": "0000", "tradeNo": "T1"}
    as_number = {"amount": 100, "status": "0000", "tradeNo": "T1"}
    signature = sign(as_text, SECRET)
    assert sign(as_number, SECRET) == signature
    assert verify({**as_number, "sign": signature}, SECRET) is True


def test_boolean_values_are_signed_in_json_spelling():
    assert signing_string({"success": True, "z": False}) == "success=truez=false"


# --- empty values and skip_empty ---------------------------------------------------------


def test_empty_and_null_values_are_left_out_by_default():
    body = {**EXAMPLE_BODY, "remark": "", "notifyUrl": None}
    assert signing_string(body) == EXAMPLE_STRING
    assert sign(body, SECRET) == EXAMPLE_SIGN


def test_skip_empty_false_includes_empty_string_values():
    body = {**EXAMPLE_BODY, "remark": ""}
    assert signing_string(body, skip_empty=False) == (
        "amount=100remark=timestamp=1719876543210tradeNo=T1"
    )
    assert sign(body, SECRET, skip_empty=False) == md5_hex(
        "amount=100remark=timestamp=1719876543210tradeNo=T1" + SECRET
    )
    assert sign(body, SECRET, skip_empty=False) != EXAMPLE_SIGN


def test_verify_honours_skip_empty_false():
    body = {**EXAMPLE_BODY, "remark": ""}
    signature = sign(body, SECRET, skip_empty=False)
    assert verify({**body, "sign": signature}, SECRET, skip_empty=False) is True
    assert verify({**body, "sign": signature}, SECRET) is False


def test_sign_field_is_ignored_even_with_skip_empty_false():
    body = {**EXAMPLE_BODY, "sign": ""}
    assert signing_string(body, skip_empty=False) == EXAMPLE_STRING


# --- ordering and encoding ---------------------------------------------------------------


def test_keys_sort_by_byte_order_so_upper_case_comes_before_lower_case():
    assert signing_string({"a": "1", "B": "2"}) == "B=2a=1"
    assert signing_string({"b": "1", "A": "2", "a": "3", "Z": "4"}) == "A=2Z=4a=3b=1"


def test_keys_are_case_sensitive_and_distinct():
    assert signing_string({"tradeNo": "1", "tradeno": "2"}) == "tradeNo=1tradeno=2"
    assert sign({"tradeNo": "1"}, SECRET) != sign({"tradeno": "1"}, SECRET)


def test_key_prefix_sorts_before_longer_key():
    assert signing_string({"ab": "2", "a": "1", "a_": "3"}) == "a=1a_=3ab=2"


def test_non_ascii_value_is_hashed_as_utf8():
    body = {"firstname": "José", "lastname": "渡辺"}
    text = "firstname=Josélastname=渡辺" + SECRET
    assert sign(body, SECRET) == hashlib.md5(text.encode("utf-8")).hexdigest()
    assert sign(body, SECRET) != hashlib.md5(text.encode("utf-16")).hexdigest()


def test_values_are_not_url_encoded():
    body = {"notifyUrl": "https://x.example/cb?a=1&b=2", "remark": "a b"}
    assert signing_string(body) == "notifyUrl=https://x.example/cb?a=1&b=2remark=a b"


# --- properties --------------------------------------------------------------------------

keys = st.text(min_size=1, max_size=12).filter(lambda k: k != "sign")
values = st.text(max_size=20)
bodies = st.dictionaries(keys, values, max_size=8)
secrets = st.text(max_size=16)


def reference_sign(fields: dict[str, object], secret: str) -> str:
    """An independent reading of section 4, for string and None values."""
    kept = [
        (k.encode("utf-8"), f"{k}={v}")
        for k, v in fields.items()
        if k != "sign" and v is not None and v != ""
    ]
    return md5_hex("".join(pair for _, pair in sorted(kept)) + secret)


@given(body=bodies, secret=secrets)
def test_sign_agrees_with_an_independent_reading_of_the_contract(body, secret):
    assert sign(body, secret) == reference_sign(body, secret)


@given(data=st.data(), body=bodies, secret=secrets)
def test_key_insertion_order_does_not_change_the_sign(data, body, secret):
    items = data.draw(st.permutations(list(body.items())))
    shuffled = dict(items)
    assert list(shuffled) == [k for k, _ in items]
    assert sign(shuffled, secret) == sign(body, secret)
    assert signing_string(shuffled) == signing_string(body)


@given(
    body=bodies,
    extra=st.dictionaries(keys, st.sampled_from(["", None]), min_size=1, max_size=5),
    secret=secrets,
)
def test_adding_empty_or_null_values_never_changes_the_sign(body, extra, secret):
    extra = {k: v for k, v in extra.items() if k not in body}
    combined = {**body, **extra}
    assert sign(combined, secret) == sign(body, secret)
    assert verify({**combined, "sign": sign(body, secret)}, secret) is True


@given(body=bodies, secret=secrets)
def test_any_existing_sign_field_never_changes_the_sign(body, secret):
    assert sign({**body, "sign": "whatever"}, secret) == sign(body, secret)


@given(body=bodies)
def test_signing_string_lists_kept_keys_in_strict_byte_order(body):
    kept = sorted((k for k, v in body.items() if v != ""), key=lambda k: k.encode("utf-8"))
    expected = "".join(f"{k}={body[k]}" for k in kept)
    assert signing_string(body) == expected


@given(body=bodies, secret=secrets)
def test_sign_then_verify_round_trips(body, secret):
    signed = {**body, "sign": sign(body, secret)}
    assert verify(signed, secret) is True
    assert verify({**signed, "sign": signed["sign"].upper()}, secret) is True


@given(body=bodies, secret=secrets, other=secrets)
def test_verify_fails_with_a_different_secret(body, secret, other):
    assume(secret != other)
    signed = {**body, "sign": sign(body, secret)}
    assert verify(signed, other) is False


@given(key=keys, value=st.text(min_size=1, max_size=20), secret=secrets)
def test_single_non_ascii_value_is_hashed_as_its_utf8_bytes(key, value, secret):
    expected = hashlib.md5(f"{key}={value}{secret}".encode()).hexdigest()
    assert sign({key: value}, secret) == expected


@given(body=st.dictionaries(keys, values, min_size=1, max_size=8), secret=secrets)
def test_skip_empty_false_includes_every_empty_value(body, secret):
    ordered = sorted(body, key=lambda k: k.encode("utf-8"))
    expected = "".join(f"{k}={body[k]}" for k in ordered)
    assert signing_string(body, skip_empty=False) == expected
    assert sign(body, secret, skip_empty=False) == md5_hex(expected + secret)
