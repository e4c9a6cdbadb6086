from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.safety.artefacts import GuardResources
from genai_factory.safety.guard import GuardContext
from genai_factory.safety.pii import PIIDetector, PIIGuard, knowledge_terms
from genai_factory.safety.pii_patterns import (
    find_structured,
    iban_valid,
    luhn_valid,
    ssn_valid,
)
from genai_factory.safety.redaction import RedactionVault, redact


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in find_structured(text)]


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_iban_checksum() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("GB82WEST12345698765433")
    assert not iban_valid("GB82")


def test_ssn_rules() -> None:
    assert ssn_valid("123", "45", "6789")
    assert not ssn_valid("000", "45", "6789")
    assert not ssn_valid("666", "45", "6789")
    assert not ssn_valid("900", "45", "6789")
    assert not ssn_valid("123", "00", "6789")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "mail me at jane.doe+x@example.co.uk today",
            ("EMAIL_ADDRESS", "jane.doe+x@example.co.uk"),
        ),
        ("card 4111 1111 1111 1111 please", ("CREDIT_CARD", "4111 1111 1111 1111")),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", ("IBAN_CODE", "DE89 3704 0044 0532 0130 00")),
        ("my SSN is 123-45-6789", ("US_SSN", "123-45-6789")),
        ("server 192.168.10.254 is down", ("IP_ADDRESS", "192.168.10.254")),
        ("v6 2001:db8::8a2e:370:7334 too", ("IP_ADDRESS", "2001:db8::8a2e:370:7334")),
        ("call +44 20 7946 0958 now", ("PHONE_NUMBER", "+44 20 7946 0958")),
        ("phone: (555) 123-4567", ("PHONE_NUMBER", "(555) 123-4567")),
        (
            "db at postgres://admin:hunter2@db.internal:5432/app",
            ("URL_CREDENTIALS", "postgres://admin:hunter2@db.internal:5432/app"),
        ),
        ("key AKIAIOSFODNN7EXAMPLE leaked", ("SECRET", "AKIAIOSFODNN7EXAMPLE")),
        (
            "OPENAI sk-proj-abcdefghijklmnopqrstuvwx12",
            ("SECRET", "sk-proj-abcdefghijklmnopqrstuvwx12"),
        ),
        (
            "api_key = 'a8f5f167f44f4964e6c998dee827110c'",
            ("SECRET", "a8f5f167f44f4964e6c998dee827110c"),
        ),
    ],
)
def test_structured_detectors(text: str, expected: tuple[str, str]) -> None:
    assert expected in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn fails
        "IBAN GB82WEST12345698765433",  # checksum fails
        "version 1.2.3.4567 and 999.1.1.1",
        "on 2021-03-04 12:30 we met",
        "we sold 1234 units in 2020",
    ],
)
def test_invalid_or_harmless_numbers_are_left(text: str) -> None:
    assert kinds(text) == []


def test_redaction_and_reversible_vault() -> None:
    text = "write to a@b.io or a@b.io, not c@d.io"
    found = find_structured(text)
    assert redact(text, found) == "write to <EMAIL_ADDRESS> or <EMAIL_ADDRESS>, not <EMAIL_ADDRESS>"
    vault = RedactionVault()
    hidden = redact(text, found, vault)
    assert hidden == "write to <EMAIL_ADDRESS_1> or <EMAIL_ADDRESS_1>, not <EMAIL_ADDRESS_2>"
    assert vault.restore("reply to <EMAIL_ADDRESS_2>") == "reply to c@d.io"
    assert len(vault) == 2


def test_names_and_locations(resources: GuardResources) -> None:
    detector = PIIDetector(resources.names)
    text = "Please send the contract to Maria Kowalski, who lives in Barcelona, Spain."
    found = {(f.kind, text[f.start : f.end]) for f in detector.find(text)}
    assert ("PERSON", "Maria Kowalski") in found
    assert any(kind == "LOCATION" and "Barcelona" in value for kind, value in found)
    assert detector.find("Install Python and run the tests on Linux.") == []


def test_pii_guard_actions(resources: GuardResources) -> None:
    detector = PIIDetector(resources.names)
    text = "my email is jane@example.com"
    redacted = PIIGuard(detector).check(text, GuardContext())
    assert redacted.action == "redact" and redacted.text == "my email is <EMAIL_ADDRESS>"
    assert PIIGuard(detector, action="block").check(text, GuardContext()).action == "block"
    warned = PIIGuard(detector, action="warn").check(text, GuardContext())
    assert warned.action == "allow" and warned.flagged
    vault = RedactionVault()
    reversible = PIIGuard(detector).check(text, GuardContext(vault=vault))
    assert reversible.text == "my email is <EMAIL_ADDRESS_1>"
    assert PIIGuard(detector).check("nothing here", GuardContext()).action == "allow"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my registered number is 0961-7596216, please check", ("PHONE_NUMBER", "0961-7596216")),
        ("Ring the office on 030 1234567 tomorrow.", ("PHONE_NUMBER", "030 1234567")),
    ],
)
def test_national_phone_formats_with_a_trunk_prefix(text: str, expected: tuple[str, str]) -> None:
    assert expected in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "My driver's license number is 6940579",
        "Your order number is 5130634.",
        "My driver's license number is U62928788557186",  # Luhn-valid digits inside an identifier
    ],
)
def test_identifiers_are_not_phones_or_cards(text: str) -> None:
    assert kinds(text) == []


def _names(resources: GuardResources, text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in PIIDetector(resources.names).find(text)]


def test_one_entity_gets_one_label(resources: GuardResources) -> None:
    # Each word alone may read as a place or a person; the full name is one person.
    text = "The name on the account is wrong, please change it to Sofia Lima"
    assert _names(resources, text) == [("PERSON", "Sofia Lima")]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Verda lives on 33 avenue de Provence street.", "33 avenue de Provence"),
        ("Ship it to Via dei Fiorentini 17 by Friday.", "Via dei Fiorentini 17"),
    ],
)
def test_addresses_keep_their_house_number_and_street_word(
    resources: GuardResources, text: str, address: str
) -> None:
    found = _names(resources, text)
    assert ("LOCATION", address) in found, found


def test_companies_and_honorifics_are_not_people_or_places(resources: GuardResources) -> None:
    for text in ("I work for Aunt Bertha Inc", "I work for Pixia Corp.", "Excuse me, Sir bot."):
        assert _names(resources, text) == [], text
    # A real name beside an honorific is still found.
    assert ("PERSON", "Margaret Thompson") in _names(
        resources, "Excuse me, Sir, is Margaret Thompson in today?"
    )


def test_knowledge_terms_are_the_words_written_in_lower_case(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text(
        "Start `redis-server` and see https://grafana.example.org/d/1.\n"
        "Mail jane.doe@example.com. Ada Lovelace wrote it. Kubernetes runs `kubectl`.\n",
        encoding="utf-8",
    )
    (tmp_path / "image.png").write_bytes(b"\x89PNG tempo")
    terms = knowledge_terms([tmp_path])
    assert {"redis", "server", "kubectl", "runs", "wrote"} <= terms
    # URLs and e-mail addresses are names, not terms; capitalised words are not written so
    assert not {"grafana", "jane", "doe", "ada", "lovelace", "kubernetes", "tempo"} & terms


def test_the_input_guard_keeps_a_term_of_the_knowledge_base(resources: GuardResources) -> None:
    question = "Which datasources are provisioned for Grafana?"
    plain = PIIGuard(PIIDetector(resources.names))
    assert plain.check(question, GuardContext()).action == "redact"
    guard = PIIGuard(PIIDetector(resources.names), terms=frozenset({"grafana", "turing"}))
    assert guard.check(question, GuardContext()).action == "allow"
    # a person's name stays redacted unless every word of it is a term
    verdict = guard.check("Can Alan Turing call the admin endpoints?", GuardContext())
    assert verdict.action == "redact" and "Turing" not in (verdict.text or "")
