"""Structured PII and secrets: patterns validated by checksums, so a match is rarely a false alarm.

E-mail addresses, phone numbers (international and national formats), credit cards (Luhn), IBANs
(ISO 13616 mod-97), US social security numbers (SSA validity rules), IPv4/IPv6 addresses, URLs with
credentials, and API keys and secrets (known prefixes, private-key blocks, ``key = value``
assignments). Entity names follow Presidio's where one exists. Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

from genai_factory.safety.guard import Finding

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_URL_CREDENTIALS = re.compile(
    r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@[^\s<>\"']+", re.IGNORECASE
)
#: Not glued to letters: ``U62928788557186`` is an identifier (a licence number), not a card.
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){11,18}(?![\w-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", re.IGNORECASE)
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+/.-])(?:\+|00)?(?:\(\d{1,4}\)[ .-]?)?\d{1,12}(?:[ .-]\(?\d{1,7}\)?){0,5}"
    r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?(?![\w/:]|-\d|\.\d)"
)
_PHONE_CONTEXT = re.compile(
    r"\b(?:\w*phone|call|tel|fax|office|mobile|cell|number|answering|reach|contact|dial|"
    r"whatsapp|sms|text me)\W{0,3}(?:\w+\W+){0,3}$",
    re.IGNORECASE,
)
#: Numbers named as something else: "license number is 6940579" is not a phone number.
_OTHER_NUMBER = re.compile(
    r"(?:licen[cs]e|passport|account|order|invoice|ticket|policy|id|member|customer|tracking|"
    r"serial|case|reference|ref)\W+(?:\w+\W+){0,2}$",
    re.IGNORECASE,
)
#: Figures, not a phone: a number and a decimal fraction of one digit before the point, separated
#: by a space (``Recall@100 0.956``); a phone written with dots uses them throughout.
_FIGURES = re.compile(r"\d \d\.\d")
_PHONE_WORD = re.compile(r"phone|tel\b|fax|mobile|cell|whatsapp|sms|call", re.IGNORECASE)
_PHONE_SUFFIX = re.compile(r"^\s*-?\s*(?:office|fax|mobile|cell|home|work)\b", re.IGNORECASE)
_CARD_CONTEXT = re.compile(
    r"(?:card|cc|credit|debit|visa|mastercard|amex|maestro|payment)\W+(?:\w+\W+){0,4}$",
    re.IGNORECASE,
)
_DATE_LIKE = re.compile(r"^\d{4}[-.]\d{2}[-.]\d{2}$|^\d{2}[-.]\d{2}[-.]\d{4}$")
_SECRET_TOKENS = re.compile(
    r"\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}\b"
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|\bxox[baprs]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}\b|\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}\b"
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
)
_SECRET_ASSIGNMENT = re.compile(
    r"\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?key|client[_-]?secret|auth[_-]?token|"
    r"token|password|passwd|pwd)\b[\"']?\s*[:=]\s*[\"']?(?!<[\w -]+>)([^\s\"',;]{6,})",
    re.IGNORECASE,
)
#: A bare ``token:`` is also a unit of text in prose about models; its value counts as a secret
#: only when it holds a digit or a capital, as generated tokens do.
_CODE_LIKE = re.compile(r"[\dA-Z]")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
        and len({*area, *group, *serial}) > 1
    )


def _emails(text: str) -> Iterator[Finding]:
    for m in _EMAIL.finditer(text):
        yield Finding("EMAIL_ADDRESS", m.start(), m.end())


def _url_credentials(text: str) -> Iterator[Finding]:
    for m in _URL_CREDENTIALS.finditer(text):
        yield Finding("URL_CREDENTIALS", m.start(), m.end())


def _cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        shortest = 12 if _CARD_CONTEXT.search(text, max(0, m.start() - 40), m.start()) else 13
        if shortest <= len(digits) <= 19 and luhn_valid(digits) and len(set(digits)) > 1:
            yield Finding("CREDIT_CARD", m.start(), m.end())


def _ibans(text: str) -> Iterator[Finding]:
    for m in _IBAN.finditer(text):
        candidate = m.group(0)
        # The pattern may swallow a following word; shrink to the longest valid prefix.
        for end in range(len(candidate), 14, -1):
            if candidate[end - 1] != " " and iban_valid(candidate[:end]):
                yield Finding("IBAN_CODE", m.start(), m.start() + end)
                break


def _ssns(text: str) -> Iterator[Finding]:
    for m in _SSN.finditer(text):
        if ssn_valid(m.group(1), m.group(3), m.group(4)):
            yield Finding("US_SSN", m.start(), m.end())


def _ips(text: str) -> Iterator[Finding]:
    for pattern in (_IPV4, _IPV6):
        for m in pattern.finditer(text):
            candidate = m.group(0)
            if pattern is _IPV6 and candidate.count(":") < 2:
                continue
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            yield Finding("IP_ADDRESS", m.start(), m.end())


def _phone_shape_ok(candidate: str, *, in_context: bool, before_word: bool) -> bool:
    """Digits 7-15; without a phone word nearby, a shape that addresses and dates rarely have."""
    digits = re.sub(r"\D", "", candidate.split("x")[0].split("ext")[0])
    if not 7 <= len(digits) <= 15 or len(set(digits)) < 3 or _DATE_LIKE.match(candidate):
        return False
    if in_context:
        return True
    groups = re.findall(r"\d+", candidate)
    international = candidate.startswith(("+", "00", "("))
    if len(groups) == 1:
        return international and len(digits) >= 9
    if len(groups) == 2 and not international:
        # "450 0840" is a phone; "704 1436 Redbud Drive" is a house and street number. A trunk
        # prefix and a subscriber number ("0961-7596216", "030 1234567") is a national format.
        trunk = groups[0].startswith("0") and 2 <= len(groups[0]) <= 5 and 5 <= len(groups[1]) <= 8
        return (all(3 <= len(g) <= 4 for g in groups) or trunk) and not before_word
    return max(len(g) for g in groups) <= 5 and min(len(g) for g in groups[1:]) >= 2


def _phones(text: str) -> Iterator[Finding]:
    for m in _PHONE.finditer(text):
        candidate = m.group(0).strip()
        end = m.start() + len(candidate)
        if re.match(r"\d{4}-\d{2}-\d{2}", candidate) or _FIGURES.search(candidate):
            continue
        before = text[max(0, m.start() - 40) : m.start()]
        if _OTHER_NUMBER.search(before) and not _PHONE_WORD.search(before):
            continue
        in_context = bool(_PHONE_CONTEXT.search(before) or _PHONE_SUFFIX.match(text, end))
        before_word = bool(re.match(r"\s+[A-Z]", text[end : end + 2]))
        if _phone_shape_ok(candidate, in_context=in_context, before_word=before_word):
            yield Finding("PHONE_NUMBER", m.start(), end)


def _secrets(text: str) -> Iterator[Finding]:
    for m in _SECRET_TOKENS.finditer(text):
        yield Finding("SECRET", m.start(), m.end())
    for m in _SECRET_ASSIGNMENT.finditer(text):
        if m.group(0)[:5].casefold() == "token" and not _CODE_LIKE.search(m.group(1)):
            continue  # "token for token: llama.cpp's kernels": a word of text, not a credential
        yield Finding("SECRET", m.start(1), m.end(1))


#: Recognisers in priority order: on overlapping spans the earlier one wins.
RECOGNISERS: tuple[tuple[str, Callable[[str], Iterator[Finding]]], ...] = (
    ("SECRET", _secrets),
    ("URL_CREDENTIALS", _url_credentials),
    ("EMAIL_ADDRESS", _emails),
    ("IBAN_CODE", _ibans),
    ("CREDIT_CARD", _cards),
    ("US_SSN", _ssns),
    ("IP_ADDRESS", _ips),
    ("PHONE_NUMBER", _phones),
)
STRUCTURED_KINDS = tuple(kind for kind, _ in RECOGNISERS)


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """Keep findings in the given priority order, dropping any that overlaps a kept one."""
    kept: list[Finding] = []
    for finding in findings:
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


def find_structured(text: str, kinds: frozenset[str] | None = None) -> list[Finding]:
    """Every structured PII or secret span in ``text`` (optionally only of ``kinds``)."""
    found: list[Finding] = []
    for kind, recogniser in RECOGNISERS:
        if kinds is None or kind in kinds:
            found.extend(recogniser(text))
    return resolve_overlaps(found)
