"""The gateway's signature (gateway contract, section 4), as pure functions.

sign: every field but ``sign``, empty or null values left out, sorted by key in byte order,
joined as ``key1=value1key2=value2``, the app secret appended, lowercase hex MD5 of the UTF-8
bytes. The same function signs requests and verifies callbacks and query responses.

Where the secret goes is the one thing the family's page leaves open ("use app secret as
salt"): appended (``Salt.SUFFIX``, the contract's worked example) or put first
(``Salt.PREFIX``, the default of the salted-digest library its Java snippet uses). It is a
setting (``BATCHPAY_SIGN_SALT``), the same for requests, queries and callbacks.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Mapping

SIGN_FIELD = "sign"


class Salt(enum.StrEnum):
    """Where the secret goes in the string that is hashed."""

    SUFFIX = "suffix"
    PREFIX = "prefix"


def _text(value: object) -> str:
    # Callbacks must be verified over values "as received": numbers in their JSON text form.
    # Callers that parse JSON keep numbers as text (json.loads(parse_int=str, parse_float=str));
    # booleans are given their JSON spelling here.
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
        text = _text(value)
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
