"""Synthetic training sentences for the name/location tagger, written by this project.

Templates are our own; Faker fills them with names, cities, countries and addresses of many locales,
plus distractors that must stay unlabelled (companies, products, dates, job titles, weekdays).
Negative sentences come from the project's own documentation. Note for honest reporting: the
presidio-research evaluation set was also filled by Faker-style generators, so figures on it are
optimistic for real-world text.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

Span = tuple[int, int, str]
LOCALES = (  # noqa: SIM905 (a word list reads better as one string)
    "en_US en_GB en_AU en_CA de_DE de_AT fr_FR es_ES es_MX it_IT nl_NL pl_PL pt_BR "
    "pt_PT sv_SE da_DK fi_FI no_NO hu_HU cs_CZ sk_SK sl_SI hr_HR ro_RO tr_TR ru_RU el_GR"
).split()

TEMPLATES = (
    "My name is {PERSON} and I live in {CITY}.",
    "Please send the contract to {PERSON}, {ADDRESS}.",
    "{PERSON} called yesterday about the invoice from {COMPANY}.",
    "Dear {PERSON}, thank you for your order.",
    "Hi {FIRST}, the meeting with {PERSON} is moved to {DAY}.",
    "The package was shipped to {ADDRESS}",
    "Ship it to {STREET}, {CITY}, {COUNTRY}.",
    "I moved from {CITY} to {CITY} last year.",
    "{PERSON} works as a {JOB} at {COMPANY} in {CITY}.",
    "Can you tell me the balance for {PERSON}?",
    "Our office is at {STREET} in {CITY}.",
    "{TITLE} {LAST} will see you at {TIME}.",
    "Book a flight from {CITY} to {COUNTRY} for {PERSON}.",
    "The author, {PERSON}, was born in {CITY}, {COUNTRY}.",
    "Contact {FIRST} {LAST} regarding the {PRODUCT} recall.",
    "Is {COMPANY} hiring in {COUNTRY}?",
    "{PERSON}'s new address is {ADDRESS}",
    "I spoke to {FIRST} on {DAY}; she said {PERSON} approved it.",
    "Send the {PRODUCT} to my home: {ADDRESS}",
    "We visited {CITY} and {CITY} in {MONTH}.",
    "Report filed by {PERSON} ({JOB}), {COMPANY}.",
    "{FIRST} from {COUNTRY} asked about {PRODUCT}.",
    "Please update my address to {STREET}.",
    "According to {PERSON}, the {PRODUCT} launch in {COUNTRY} slipped to {MONTH}.",
    "Thanks, {FIRST}",
    "Regards,\n{PERSON}\n{JOB}\n{COMPANY}",
    "Name: {PERSON}\nAddress: {ADDRESS}",
    "The {COMPANY} team in {CITY} closed the {PRODUCT} deal on {DAY}.",
    "Where is the nearest {COMPANY} store in {CITY}?",
    "{PERSON} and {PERSON} signed the lease for {STREET}.",
    "Who is {PERSON}?",
    "I want to cancel the order placed by {FIRST} {LAST} last {DAY}.",
    "Weather in {CITY} today?",
    "The conference in {COUNTRY} was organised by {PERSON}.",
    "{LAST} said the {PRODUCT} works well.",
    "I work for {COMPANY} and my manager is {PERSON}.",
    "{COMPANY} is a design agency based in {CITY}.",
    "Award winners include {PERSON} of {COMPANY} and {PERSON} of {COMPANY}.",
    '"It is a big step," says {LAST}.',
    "Have you been to a {PERSON} concert before?",
    "Directed by: {PERSON}",
    "{FIRST}: Did you call the bank?\n{FIRST}: Not yet.",
    "Order {NUMBER} for {PERSON} costs {PRICE} and ships in {SMALL} days.",
    "She is {SMALL} years old and has worked {SMALL} years at {COMPANY}.",
    "In {YEAR}, {PERSON} opened {SMALL} shops in {CITY}.",
    "Sales grew by {SMALL}% in {YEAR} across {COUNTRY}.",
    "Call {FIRST} at {PHONE} before {TIME}.",
    "The card {CARD} was charged {PRICE} on {DATE}.",
    "Ticket #{NUMBER} was opened by {PERSON} on {DATE}.",
    "Hello, this is {PERSON} from {COMPANY}.",
    "Unfortunately {FIRST} could not attend the {MONTH} meeting in {CITY}.",
    "Please change the name on the account to {PERSON}.",
    "Billing address: {PERSON}\n{ADDRESS}",
    "{PERSON}\n{STREET}\n{CITY}\n{COUNTRY}",
    "{LAST} and {LAST} were the best engineers on the team.",
    "The founders are {FIRST}, {LAST} and {LAST}.",
    "{FIRST}: Where were you?\n{FIRST}: At home.",
    '"Who are you?" asked {FIRST}. "I\'m {FIRST}\'s brother."',
    "Unlike the {LAST} novel, this one is short.",
    "A tribute to {PERSON}, who died in {YEAR}.",
    "{PERSON} spent a year at {COMPANY} as a {JOB}.",
    "{TITLE} {PERSON} of {COMPANY} joined the board.",
    "Bot: What's the name on the account?\nUser: {PERSON}",
    "The restaurant is at {STREET}.",
    "It is on the corner of {STREET} and {STREET}.",
    "Meet me in {CITY}, {COUNTRY} next week.",
    "I grew up in {COUNTRY} but now live in {CITY}.",
    "{COMPANY} opened an office at {ADDRESS}",
    "Looking to support {COMPANY} in {CITY} in its mission.",
    "Where: {COMPANY} Country Club, {CITY}",
    "Treaty on European Union, Article {SMALL}, was signed in {CITY}.",
    "Is {FIRST} {LAST} available on {DAY}?",
    "{COUNTRY} was the best trip we ever took.",
    "{CITY} is lovely in {MONTH}.",
    "How do I contact {LAST}?",
    "Please forward this to {FIRST}.",
    "{FIRST} said the invoice is wrong.",
    "Why did {PERSON} cancel the subscription?",
    "She is from {COUNTRY}, he is from {CITY}.",
    "{LAST} has not paid since {MONTH}.",
    "Can {FIRST} sign for the parcel at {STREET}?",
    "Our customer in {COUNTRY} wants a refund.",
    "I was born in {CITY} and raised by {PERSON}.",
    "Tell {FIRST} that {LAST} is waiting downstairs.",
)
NEGATIVES = (
    "The Quarterly Report shows that Revenue grew in March.",
    "Install Python 3.11 and run the Tests on Linux.",
    "Monday Meeting Notes: Budget, Hiring, Roadmap.",
    "Use the API Key Manager to rotate Credentials.",
    "The Board approved the New Strategy on Friday.",
    "Click Save, then Export to PDF.",
    "I love Christmas and Easter holidays.",
    "Our Customer Success Team answers within One Business Day.",
    "The Annual General Meeting will be held in the Main Hall.",
    "Please Review the Terms and Conditions before Checkout.",
    "Hello! What's the status of my order?",
    "WHAT IS GOING ON WITH MY ACCOUNT???",
    "Cool, thanks. Unfortunately it did not work.",
    "Guilty Pleasures: 10 Songs Of The 80s You Secretly Love",
    "Here's the thing: Labor Day is on Monday.",
    "Great, see you on Tuesday at 10.",
    "Yes, I paid 25 dollars for 3 tickets.",
    "Comedy, Drama, Kids & Family, Mystery & Suspense",
    "Top 20 Albums Of The Year, Ranked",
    "3... 2... 1... liftoff!",
    "Title VII of the Civil Rights Act applies here.",
    "It's this nice new place downtown. There's parking too.",
    "Action & Adventure, Animation, Comedy, Documentary",
    "The Business Review named its Company Of The Year.",
    "Thanks for the quick reply, Support Team!",
)
#: Technical questions: capitalised product and component names, versions and counts are not
#: people or places (``Gateway``, ``Docker``, ``8``). Filled from :data:`TECH_TERMS`.
TECH_TEMPLATES = (
    "How do I set up {TECH} with {TECH} on {SMALL} nodes?",
    "Why does {TECH} return {SMALL} errors after the upgrade to {TECH} {SMALL}?",
    "Can the {TECH} run behind {TECH}?",
    "Is there a way to limit {TECH} to {SMALL} requests per minute?",
    "What changed in {TECH} {SMALL}.{SMALL} compared to {TECH}?",
    "{TECH} keeps timing out when I call it from {TECH}.",
    "Does {TECH} support {TECH} out of the box?",
    "Set the {TECH} port to {NUMBER} and restart {TECH}.",
    "Which {TECH} settings matter for {TECH} in production?",
    "My {TECH} job failed with exit code {SMALL} in {TECH}.",
    "Compare {TECH} and {TECH} for {SMALL} million rows.",
    "Explain the {TECH} in simple terms.",
)
TECH_TERMS = (  # noqa: SIM905 (a word list reads better as one string)
    "Docker Kubernetes Nginx Redis PostgreSQL SQLite MySQL Kafka Spark Airflow Terraform Ansible "
    "Jenkins GitHub GitLab Linux Windows macOS Ubuntu Debian Python Java Rust Go TypeScript "
    "FastAPI Django Flask React Vue Node.js Elasticsearch Qdrant MLflow Prometheus Grafana Loki "
    "Helm Istio Envoy Celery RabbitMQ Gateway Router Scheduler Registry Ingress Proxy Cache "
    "Worker Pipeline Dashboard Webhook Endpoint Console Server Client Agent Tool Index Store "
    "Tokenizer Embedder Retriever Reranker Breaker Retry Fallback Budget Ledger Session Vault "
    "Release Build Config Cluster Node Pod Service Deployment Container Volume Backup Monitor"
).split()
_SLOT = re.compile(r"\{(\w+)\}")


def _person(faker: Any, rng: random.Random) -> str:
    """A full name, sometimes with a middle initial (``Sari J. Paavolainen``)."""
    f: Any = faker
    if rng.random() < 0.25:
        initial = chr(ord("A") + rng.randrange(26)) + rng.choice([".", ""])
        return f"{f.first_name()} {initial} {f.last_name()}"
    return str(f.name())


def _value(faker: Any, slot: str, rng: random.Random) -> tuple[str, str]:
    """The text of one slot and its label (``O`` for distractors)."""
    f: Any = faker
    generators: dict[str, tuple[str, Callable[[], object]]] = {
        "PERSON": ("PERSON", lambda: _person(f, rng)),
        "FIRST": ("PERSON", lambda: f.first_name()),
        "LAST": ("PERSON", lambda: f.last_name()),
        "CITY": ("LOCATION", lambda: f.city()),
        "COUNTRY": ("LOCATION", lambda: f.country()),
        "ADDRESS": ("LOCATION", lambda: f.address()),
        "STREET": ("LOCATION", lambda: f.street_address()),
        "COMPANY": ("O", lambda: f.company()),
        "JOB": ("O", lambda: f.job()),
        "DAY": ("O", lambda: f.day_of_week()),
        "MONTH": ("O", lambda: f.month_name()),
        "TIME": ("O", lambda: f.time(pattern="%H:%M")),
        "PRODUCT": (
            "O",
            lambda: rng.choice(["iPhone", "Model X", "Galaxy Tab", "ThinkPad", "Kindle"]),
        ),
        "NUMBER": ("O", lambda: str(rng.randint(1000, 99_999_999))),
        "SMALL": ("O", lambda: str(rng.randint(1, 99))),
        "YEAR": ("O", lambda: str(rng.randint(1950, 2030))),
        "PRICE": ("O", lambda: f"${rng.randint(1, 999)}.{rng.randint(0, 99):02d}"),
        "PHONE": ("O", lambda: f.phone_number()),
        "CARD": ("O", lambda: f.credit_card_number()),
        "DATE": ("O", lambda: f.date()),
        "TITLE": ("O", lambda: rng.choice(["Dr.", "Mr.", "Mrs.", "Ms.", "Prof."])),
        "TECH": ("O", lambda: rng.choice(TECH_TERMS)),
    }
    label, make = generators[slot]
    value: object = make()
    return str(value), label


def _fill(template: str, faker: Any, rng: random.Random) -> tuple[str, list[Span]]:
    text, spans, position = "", [], 0
    for match in _SLOT.finditer(template):
        text += template[position : match.start()]
        value, label = _value(faker, match.group(1), rng)
        if rng.random() < 0.05:
            value = value.lower()
        if label != "O":
            spans.append((len(text), len(text) + len(value), label))
        text += value
        position = match.end()
    return text + template[position:], spans


def _doc_sentences(docs_dir: Path) -> list[str]:
    sentences: list[str] = []
    for path in sorted(docs_dir.glob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip(" #*-`>|")
            if 20 <= len(line) <= 300:
                sentences.append(line)
    return sentences


def synthetic_sentences(
    count: int,
    *,
    seed: int = 0,
    docs_dir: Path | None = None,
    templates: tuple[str, ...] = TEMPLATES,
) -> Iterator[tuple[str, list[Span]]]:
    """``count`` labelled sentences (about a fifth negatives without any entity, a twentieth
    technical questions)."""
    from faker import Faker

    rng = random.Random(seed)
    fakers = {}
    for locale in LOCALES:
        faker = Faker(locale)
        faker.seed_instance(seed)
        fakers[locale] = faker
    negatives = list(NEGATIVES) + (_doc_sentences(docs_dir) if docs_dir else [])
    for _ in range(count):
        if rng.random() < 0.2:
            yield rng.choice(negatives), []
            continue
        faker = fakers[rng.choice(LOCALES)]
        if rng.random() < 0.03:
            yield _fill(rng.choice(TECH_TEMPLATES), faker, rng)
            continue
        yield _fill(rng.choice(templates), faker, rng)


_ALPHA_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def ordinary_words(
    texts: Iterable[str], *, min_count: int = 3, min_lower_share: float = 0.6
) -> frozenset[str]:
    """Words written in lower case in at least ``min_lower_share`` of their ``min_count`` or more
    occurrences in running prose: vocabulary, not names (``gateway``, ``musicians``, ``oh``)."""
    total: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for text in texts:
        for word in _ALPHA_WORD.findall(text):
            folded = word.casefold()
            total[folded] += 1
            if word.islower():
                lower[folded] += 1
    return frozenset(
        w for w, n in total.items() if n >= min_count and lower[w] >= min_lower_share * n
    )
