"""The gateway's signature (gateway contract, section 4), as pure functions.

sign: every field but ``sign``, empty or null values left out, sorted by key in byte order,
joined as ``key1=value1key2=value2``, the app secret appended, lowercase hex MD5 of the UTF-8
bytes. The same function signs requests and verifies callbacks and query responses.

Where the secret goes is the one thing the family's page leaves open ("use app secret as
salt"): appended (``Salt.SUFFIX``, the contract's worked example) or put first
(``Salt.PREFIX``, the default of the salted-digest library its Java snippet uses). It is a
setting (``BATCHPAY_SIGN_SALT``), the same for requests, queries and callbacks.

Answers (``BATCHPAY_VERIFY_ANSWER_SIGN``, ``AnswerSign``): the family tells merchants to verify
an answer's ``sign`` without saying over which fields, so there are two readings, each one
field set signed exactly as above (same salt, same skip-empty rule), the ``sign`` always the
envelope's top-level member:

- ``data``: the members of the ``data`` object. An answer whose ``data`` is null or missing
  signs the empty set (the string hashed is the secret alone).
- ``envelope``: every top-level member except ``sign`` and ``data``, together with the members
  of ``data`` flattened into the same set (``{"code": "0000", "data": {"status": "0015"}}``
  signs ``code=0000status=0015``). A name found both at the top and in ``data`` cannot be put
  in one set: such an answer does not verify.

In both, values are the JSON text as received (numbers as written, ``true``/``false``, null
left out like an empty value); an object or array inside the signed set has no defined text,
so an answer holding one does not verify. A ``sign`` inside ``data`` is never signed over.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

SIGN_FIELD = "sign"


class Salt(enum.StrEnum):
    """Where the secret goes in the string that is hashed."""

    SUFFIX = "suffix"
    PREFIX = "prefix"


class AnswerSign(enum.StrEnum):
    """What the ``sign`` of a gateway answer covers (``BATCHPAY_VERIFY_ANSWER_SIGN``)."""

    OFF = "off"  # answers are not verified
    DATA = "data"
    ENVELOPE = "envelope"


DATA_FIELD = "data"


def field_text(value: object) -> str:
    """A received value as the signature covers it: numbers in their JSON text form (callers
    that parse JSON keep them as text: ``json.loads(parse_int=str, parse_float=str)``),
    booleans in their JSON spelling, null as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signing_string(fields: Mapping[str, object], *, skip_empty: bool = True) -> str:
    """The string that is hashed, without the secret."""
    parts = []
    for key in sorted(fields, key=lambda k: k.encode("utf-8")):
        if key == SIGN_FIELD:
            continue
        value = fields[key]
        if value is None:
            continue
        text = field_text(value)
        if skip_empty and text == "":
            continue
        parts.append(f"{key}={text}")
    return "".join(parts)


def sign(
    fields: Mapping[str, object],
    secret: str,
    *,
    skip_empty: bool = True,
    salt: Salt = Salt.SUFFIX,
) -> str:
    """The lowercase hex MD5 signature of ``fields`` (any ``sign`` field is ignored)."""
    text = signing_string(fields, skip_empty=skip_empty)
    payload = secret + text if salt is Salt.PREFIX else text + secret
    return hashlib.md5(payload.encode("utf-8"), usedforsecurity=False).hexdigest()


def verify(
    fields: Mapping[str, object],
    secret: str,
    *,
    skip_empty: bool = True,
    salt: Salt = Salt.SUFFIX,
) -> bool:
    """True when ``fields["sign"]`` is the signature of the other fields; constant-time."""
    given = fields.get(SIGN_FIELD)
    if not isinstance(given, str):
        return False
    expected = sign(fields, secret, skip_empty=skip_empty, salt=salt)
    return hmac.compare_digest(expected.encode("ascii"), given.lower().encode("utf-8"))


def answer_fields(document: Mapping[str, Any], mode: AnswerSign) -> dict[str, object] | None:
    """The fields an answer's ``sign`` covers under ``mode`` (module docstring), or None when
    the answer cannot be put in one signed string (a nested value, a name in both layers)."""
    data = document.get(DATA_FIELD)
    inner: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    if data is not None and not isinstance(data, Mapping):
        return None  # a data that is text or a list: neither reading says how it is signed
    fields: dict[str, object] = dict(inner)
    if mode is AnswerSign.ENVELOPE:
        for name, value in document.items():
            if name in (SIGN_FIELD, DATA_FIELD):
                continue
            if name in fields:
                return None
            fields[name] = value
    if any(isinstance(value, Mapping | list) for value in fields.values()):
        return None
    return fields


def sign_answer(
    document: Mapping[str, Any], secret: str, *, mode: AnswerSign, salt: Salt, skip_empty: bool
) -> str:
    """The ``sign`` a gateway puts on this answer under ``mode`` (the sandbox signs with it)."""
    fields = answer_fields(document, mode)
    if fields is None:
        raise ValueError("this answer has no signed string under " + mode.value)
    return sign(fields, secret, skip_empty=skip_empty, salt=salt)


def answer_sign_verifies(
    document: Mapping[str, Any], secret: str, *, mode: AnswerSign, salt: Salt, skip_empty: bool
) -> bool:
    """True when the answer's top-level ``sign`` is the signature, under ``mode``, of the
    fields it covers (module docstring); constant-time. ``OFF`` verifies nothing: False."""
    if mode is AnswerSign.OFF:
        return False
    fields = answer_fields(document, mode)
    if fields is None:
        return False
    return verify(
        {**fields, SIGN_FIELD: document.get(SIGN_FIELD)}, secret, skip_empty=skip_empty, salt=salt
    )
