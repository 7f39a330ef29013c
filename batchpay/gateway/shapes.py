"""What the fields of a signed message must look like before batchpay believes them: the rules
the callback receiver (``callbacks.py``) and the answer check (``client.py``) share. Pure.

Why (gateway contract, section 6): the signing string joins ``key=value`` pairs with no
separator, so a genuine signed message can be changed without the secret by moving a field
boundary (``status`` = ``"0015timestamp=1764..."`` with ``timestamp`` removed signs to the same
string). A signature proves the string, not where its fields begin and end: so every field
batchpay reads is held to its own format, and no value may hold another field's name followed
by ``=``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..signing import DATA_FIELD, SIGN_FIELD, field_text

FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
CODE = re.compile(r"[0-9]{1,16}")
CODE_RULE = "a code of digits"
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOKEN_RULE = "1-64 letters, digits, '-' or '_'"

# The names of every field an answer of the family carries (envelope and data, payout and
# status query) and of the callback's: a value holding one of them and "=" swallowed a field.
ANSWER_FIELDS = (
    "amount", "code", "data", "message", "msg", "orderAmount", "payAmount", "platFormTradeNo",
    "remark", "sign", "status", "success", "successTime", "timestamp", "tradeNo",
)  # fmt: skip


def shown(value: object) -> str:
    """A received value as a message may quote it: cut, and quoted so that it reads as data."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "...")


def moved_boundary(name: str, text: str, names: Iterable[str]) -> str | None:
    """Why ``text`` (the value of field ``name``) looks like it swallowed another field, or
    None: it holds one of ``names`` followed by ``=``."""
    if "=" not in text:
        return None  # nearly every value: one search instead of one per name
    for other in names:
        if f"{other}=" in text:
            return f"{name} holds '{other}=' (a moved field boundary): {shown(text)}"
    return None


def answer_problem(document: Mapping[str, Any], trade_no: str) -> str | None:
    """Why a gateway answer (payout or status query) about ``trade_no`` cannot be believed as
    it stands, or None: the fields batchpay relies on in their own formats (``code`` digits,
    ``data.status`` digits, ``data.tradeNo`` the one asked about, ``data.platFormTradeNo`` a
    plain token; each when present, but ``code``), plain field names, no moved boundary."""
    data = document.get(DATA_FIELD)
    inner: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    for fields, prefix in ((document, ""), (inner, "data.")):
        for name, value in fields.items():
            if not FIELD_NAME.fullmatch(name):
                return f"field name {shown(prefix + name)} is not a plain name"
            if name == SIGN_FIELD or isinstance(value, Mapping | list):
                continue  # a nested value is never signed over: the signature failed already
            problem = moved_boundary(prefix + name, field_text(value), ANSWER_FIELDS)
            if problem:
                return problem
    code = field_text(document.get("code"))
    if not CODE.fullmatch(code):
        return f"code {shown(code)} is not {CODE_RULE}"
    status = field_text(inner.get("status"))
    if status and not CODE.fullmatch(status):
        return f"data.status {shown(status)} is not {CODE_RULE}"
    answered = field_text(inner.get("tradeNo"))
    if answered and answered != trade_no:
        return f"data.tradeNo {shown(answered)} is not the tradeNo asked about ({trade_no})"
    platform = field_text(inner.get("platFormTradeNo"))
    if platform and not TOKEN.fullmatch(platform):
        return f"data.platFormTradeNo {shown(platform)} is not {TOKEN_RULE}"
    return None
