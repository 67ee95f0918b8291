"""Redaction of secrets and personal data from log text.

``redact`` replaces each match with a placeholder such as ``[EMAIL]``. It
covers credentials (API keys, JWTs, bearer and basic credentials,
``name=value`` secrets, passwords in URLs, AWS keys, private-key PEM
blocks) and personal data (emails, phone numbers, Emirates ID numbers,
IBANs, payment card numbers).

Digit classes match every Unicode decimal digit, so Arabic-Indic digits
(``٧٨٤-١٩٩٠-...``) are redacted like ASCII ones. To keep ordinary numbers
(ports, counts, timestamps, hex ids) readable, two patterns are checked
beyond their shape:

* a generic IBAN is redacted only when its ISO 13616 mod-97 check passes
  (UAE IBANs, ``AE`` and 21 digits, are redacted whatever their check);
* a card number is 13 to 19 digits that start with 2 to 6 (the ranges of
  the major card networks) and pass the Luhn check. Millisecond Unix
  timestamps start with 1 until 2033 and are left alone.

Emirates ID numbers (``784`` and 12 more digits) are redacted whether or
not their Luhn check digit is valid, because a mistyped ID is still
personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Replacement = str | Callable[[re.Match[str]], str]

_DIGIT = r"\d"
_SEP = r"[ \-]?"

# The ``scheme://user:`` head of a URL with a password (group 1), then the password.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+@")


def _literal(digits: str) -> str:
    """Match ``digits`` in ASCII or in Arabic-Indic (U+0660) or Persian (U+06F0) digits."""
    return "".join(f"[{d}{chr(0x0660 + int(d))}{chr(0x06F0 + int(d))}]" for d in digits)


def _digits_of(text: str) -> list[int]:
    return [int(char) for char in text if char.isdecimal()]


def luhn_valid(digits: list[int]) -> bool:
    """Return whether the Luhn check digit (the last digit) of ``digits`` is correct."""
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """Return whether ``iban`` (spaces allowed) passes the ISO 13616 mod-97 check."""
    compact = "".join(iban.split()).upper()
    rearranged = compact[4:] + compact[:4]
    try:
        number = "".join(str(int(char, 36)) for char in rearranged)
    except ValueError:
        return False
    return int(number) % 97 == 1


def _card(match: re.Match[str]) -> str:
    digits = _digits_of(match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "[CARD_NUMBER]"
    return match.group(0)


def _generic_iban(match: re.Match[str]) -> str:
    return "[IBAN]" if iban_valid(match.group(0)) else match.group(0)


_SECRET_NAMES = (
    r"password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key"
    r"|credentials?|authorization|client[_\-]?secret"
)

# Order matters: whole credentials (PEM blocks, JWTs, keys) go before the
# generic patterns, emails before phone numbers, and Emirates IDs and IBANs
# before card and phone numbers, so that each value gets its own label.
_RULES: tuple[tuple[re.Pattern[str], Replacement], ...] = (
    (
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        "[PRIVATE_KEY]",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "[JWT]"),
    (re.compile(r"\bmnr_[A-Za-z0-9]+_[A-Za-z0-9_\-]+"), "mnr_[REDACTED]"),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._\-~+/=]+"), r"\1\2[REDACTED]"),
    (_URL_PASSWORD, r"\1[REDACTED]@"),
    (
        re.compile(
            rf"(?i)(\b[\w\-]*(?:{_SECRET_NAMES})[\"']?\s*[=:]\s*)([\"']?)"
            r"(?!\[REDACTED\])[^\s\"',;&}]+"
        ),
        r"\1\2[REDACTED]",
    ),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "[AWS_ACCESS_KEY_ID]"),
    (
        # A 40-character base64 run with both cases and a digit, '/' or '+'
        # has the shape of an AWS secret access key. Hex digests use one case.
        re.compile(
            r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])"
            r"(?=[A-Za-z0-9/+]*[0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
        "[AWS_SECRET_KEY]",
    ),
    (re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}"), "[EMAIL]"),
    (
        re.compile(rf"(?<![A-Za-z0-9])AE{_DIGIT}{{2}}(?:{_SEP}{_DIGIT}){{19}}(?!{_DIGIT})"),
        "[IBAN]",
    ),
    (
        re.compile(
            r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
            r"(?![A-Za-z0-9])"
        ),
        _generic_iban,
    ),
    (
        re.compile(
            rf"(?<!{_DIGIT}){_literal('784')}[ \-]?{_DIGIT}{{4}}[ \-]?{_DIGIT}{{7}}"
            rf"[ \-]?{_DIGIT}(?!{_DIGIT})"
        ),
        "[EMIRATES_ID]",
    ),
    (re.compile(rf"(?<![\w.])[2-6]{_DIGIT}{{12,18}}(?![\w.])"), _card),
    (
        re.compile(
            rf"(?<![\w.])[2-6]{_DIGIT}{{3}}([ \-]){_DIGIT}{{4}}\1{_DIGIT}{{4}}\1{_DIGIT}{{1,7}}"
            rf"(?![\w.])"
        ),
        _card,
    ),
    (
        re.compile(rf"(?<![\w.])3[47]{_DIGIT}{{2}}([ \-]){_DIGIT}{{6}}\1{_DIGIT}{{5}}(?![\w.])"),
        _card,
    ),
    (
        # UAE numbers: +971 or 00971, an optional trunk 0, then a mobile
        # (5X and 7 digits) or fixed-line (area digit and 7 digits) number.
        re.compile(
            rf"(?:\+|00){_literal('971')}[ \-]?(?:\(0\)[ \-]?|0)?"
            rf"(?:5[024-68]|[2-4679]){_SEP}(?:{_DIGIT}{_SEP}){{6}}{_DIGIT}(?!{_DIGIT})"
        ),
        "[PHONE]",
    ),
    (
        re.compile(
            rf"(?<![\d:\-]){_literal('05')}[024-68][ \-]?{_DIGIT}{{3}}[ \-]?{_DIGIT}{{4}}"
            rf"(?![\d:\-])"
        ),
        "[PHONE]",
    ),
    # E.164 in general: a '+', then 8 to 15 digits with optional separators.
    (re.compile(rf"\+[1-9](?:{_SEP}{_DIGIT}){{7,14}}(?!{_DIGIT})"), "[PHONE]"),
)


def redact(text: str) -> str:
    """Return ``text`` with every secret and personal-data value replaced by a placeholder."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def mask_url_passwords(text: str) -> str:
    """Return ``text`` with the password of every ``scheme://user:password@host`` as ``***``.

    Use it on any message or log line that shows a configured URL: the user
    name and host stay readable, so the message still names the server that failed.
    """
    return _URL_PASSWORD.sub(r"\1***@", text)
