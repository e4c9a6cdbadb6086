"""Text normalisation that undoes common obfuscations before a detector looks at the text.

Attackers hide instructions with invisible characters, full-width or look-alike letters, spacing
(``i g n o r e``), leetspeak (``1gn0r3``) and encodings (base64, hex, rot13). :func:`variants` returns
the canonical text plus every de-obfuscated reading worth checking; detectors take the worst score.
Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
import unicodedata

#: Zero-width and other invisible characters (format category ``Cf`` is removed as a whole too).
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u034f\u061c\u180e"), None)
#: The Unicode format characters (category ``Cf``): zero-width spaces and joiners, bidi controls,
#: word joiners, the byte-order mark, interlinear annotations, tag characters.
_FORMAT_CHARS = re.compile(
    "[\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
#: Combining marks (accents) left by NFKD decomposition.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

#: Cyrillic and Greek letters that look like Latin ones; only applied inside words with Latin letters.
_HOMOGLYPHS = str.maketrans(
    "аеорсухіјѕԁԛԝАВЕКМНОРСТХІЈЅαορτυνκχΑΒΕΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdqwABEKMHOPCTXIJSaoptuvkxABEHIKMNOPTYX",
)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)

_MIXED_SCRIPT_WORD = re.compile(r"\w*[a-zA-Z]\w*")
_LEET_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[013457])[a-z013457@$]{3,}\b")
#: Runs of single characters separated by spaces or punctuation: ``i g n o r e``, ``d-i-s-r-e``.
_SPACED = re.compile(r"(?<!\w)(?:\w[ \t.\-_*·|/]{1,3}){3,}\w(?!\w)")
_SEPARATOR = re.compile(r"([ \t.\-_*·|/]{1,3})")
#: Punctuation inside a word: ``ign.ore``, ``instru-ctions``.
_INNER_PUNCT = re.compile(r"(?<=[a-z])[.\-_*·'|](?=[a-z])")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){8,}\b")
_NON_WORD = re.compile(r"[\W_]+")
_ASCII_WORDS = re.compile(r"[a-z]{2,}")
_COMMON_EN = frozenset(
    (  # noqa: SIM905 (a word list reads better as one string)
        "the and you your to of is in that it for on with as this are be all ignore "
        "instructions previous prompt system tell me what a an say print reveal"
    ).split()
)


def _strip_invisible(text: str) -> str:
    return _FORMAT_CHARS.sub("", text.translate(_INVISIBLE))


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", _COMBINING.sub("", decomposed))


def _fix_homoglyphs(text: str) -> str:
    if text.isascii():
        return text
    return _MIXED_SCRIPT_WORD.sub(lambda m: m.group(0).translate(_HOMOGLYPHS), text)


#: Regional-indicator symbols (flag emoji letters) read as the Latin letters they show.
_REGIONAL = {0x1F1E6 + i: chr(ord("a") + i) for i in range(26)}
_MORSE = dict(
    zip(
        (  # noqa: SIM905 (a code table reads better as one string)
            ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- "
            "...- .-- -..- -.-- --.. ----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----."
        ).split(),
        "abcdefghijklmnopqrstuvwxyz0123456789",
        strict=True,
    )
)
_MORSE_RUN = re.compile(r"(?:[.-]{1,6}[ /]+){8,}[.-]{1,6}")


def morse_reading(text: str) -> str | None:
    """The decoded text of the longest Morse-code run in ``text``, if any."""
    runs = _MORSE_RUN.findall(text)
    if not runs:
        return None
    words = re.split(r"\s{2,}|\s*/\s*", max(runs, key=len).strip())
    return " ".join("".join(_MORSE.get(code, "") for code in word.split()) for word in words)


def canonical(text: str) -> str:
    """NFKC, invisible characters removed, look-alike letters mapped, case-folded, accents removed."""
    if text.isascii():  # the common case: nothing to normalise but case
        return text.lower()
    text = unicodedata.normalize("NFKC", _strip_invisible(text).translate(_REGIONAL))
    return _strip_accents(_fix_homoglyphs(text).casefold())


def _join_spaced(run: str) -> str:
    """``d-i-s-r-e-g-a-r-d y-o-u-r`` → ``disregard your``: the commonest separator joins letters."""
    parts = _SEPARATOR.split(run)
    letters, separators = parts[0::2], parts[1::2]
    joiner = max(set(separators), key=separators.count)
    out = [letters[0]]
    for separator, letter in zip(separators, letters[1:], strict=True):
        out.append(("" if separator == joiner else " ") + letter)
    return "".join(out)


def deobfuscate(text: str) -> str:
    """Undo spacing, inner punctuation and leetspeak on already :func:`canonical` text."""
    text = _SPACED.sub(lambda m: _join_spaced(m.group(0)), text)
    text = _INNER_PUNCT.sub("", text)
    return _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), text)


def _readable(decoded: str) -> bool:
    if not decoded or not decoded.isprintable():
        return False
    letters = sum(ch.isalpha() or ch.isspace() for ch in decoded)
    return letters / len(decoded) > 0.8


def decoded_payloads(text: str) -> list[str]:
    """Readable text hidden as base64 or hex inside ``text`` (raw, not canonical text)."""
    found: list[str] = []
    for match in _BASE64.finditer(text):
        token = match.group(0)
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if _readable(decoded):
            found.append(decoded)
    for match in _HEX.finditer(text):
        try:
            decoded = bytes.fromhex(match.group(0)).decode("utf-8")
        except ValueError:
            continue
        if _readable(decoded):
            found.append(decoded)
    return found


def rot13_reading(text: str) -> str | None:
    """The rot13 reading of ``text`` when it has more common English words than the text itself."""
    words = _ASCII_WORDS.findall(text)
    if len(words) < 3:
        return None
    rotated = codecs.encode(text, "rot13")
    before = sum(w in _COMMON_EN for w in words)
    after = sum(w in _COMMON_EN for w in _ASCII_WORDS.findall(rotated))
    return rotated if after > before + 1 else None


def distinct_readings(readings: list[str]) -> list[str]:
    """Readings that differ in more than punctuation (what a bag-of-n-grams model tells apart)."""
    seen: set[str] = set()
    kept = []
    for reading in readings:
        key = _NON_WORD.sub("", reading)
        if key not in seen:
            seen.add(key)
            kept.append(reading)
    return kept


@functools.lru_cache(maxsize=16)
def cached_variants(text: str) -> tuple[str, ...]:
    """:func:`variants`, remembered: the guards of one request read the same text."""
    return tuple(variants(text))


def variants(text: str) -> list[str]:
    """Every reading of ``text`` a detector should check, canonical text first, without duplicates."""
    base = canonical(text)
    readings = [base, deobfuscate(base)]
    readings += [canonical(p) for p in decoded_payloads(text)]
    for extra in (rot13_reading(base), morse_reading(text)):
        if extra:
            readings.append(extra)
    return list(dict.fromkeys(readings))
