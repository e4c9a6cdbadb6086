"""The sentence of the sources that answers the question, for when the model declines.

A small model reading numbered sources sometimes declines ("I don't know: the sources do not
say.") although one of them states the answer. When that happens on the RAG route and the sources
scored well, :class:`SentenceExtractor` picks the sentence (or table row, or command line) of the
sources that best matches the question and answers with it, cited: ``The service listens on port
8000 [1].`` It never invents: the answer is a sentence of a source, shown to the reader as written.

A candidate's score is the cosine similarity of its embedding (of its plain words,
:func:`plain_words`) to the question's (the index's own embedder), plus half the share of the
question's content words it contains, plus a lift when it is of the kind the question asks for (a
figure for "how many", a code such as 403 for "what status code", a setting or command for "how do
I", more for a whole code block of commands), plus a small lift for the sources that retrieval
ranked first (the first source gets :data:`RANK_LIFT`, the last none), less a drop for a source the
reranker scored far below the first (:func:`source_priors`). Lifts for the form of the answer come
on top (:func:`structure_bonus`): a table row whose key the question names, a figure next to the
noun a "how many" question counts (and a drop for a candidate without a figure), an enumeration for
"which <plural noun>" (more when it names the asked things, a drop for a candidate listing nothing),
a path for "where", a default stated for the case the question names ("the default for the embedded
model"; a drop for another case's default, :func:`qualifier_bonus`); a row's key written as one word
is named by two adjacent words of the question ("times out": ``timeout``). A source that begins
inside a code block (:func:`_starts_in_code`) reads its text before the closing fence as code, not
as table rows. Below ``min_score`` nothing is extracted and the model's answer stands.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from genai_factory.messages import ScoredChunk
from genai_factory.rag.embedding import Embedder

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9*`\"'(|])")
#: The start of a list item inside folded text: "... retried. - A 429 answer's ...".
_ITEM_START = re.compile(r"(?<=[.!?:;])\s+(?:[-*+]|\d{1,3}[.)])\s+(?=\S)")
_WORD = re.compile(r"[a-z0-9_./-]+")
_FENCE_SPLIT = re.compile(r"```")
_LANGUAGE_TAG = re.compile(r"^(?:bash|sh|shell|console|yaml|yml|json|python|toml|ini|text|sql)\b")
_PARAGRAPH = re.compile(r"\n\s*\n")
#: A program's name, the first word of a command line (not a prompt, a variable or a bracket).
_PROGRAM = re.compile(r"^[a-z][\w./-]*$")
_ROW_BREAK = re.compile(r"\|\s+\|")
_TABLE_RULE = re.compile(r"^[\s|:-]*$")
_QUOTED_QUESTION = re.compile(r"[\"\u201c][^\"\u201d\n]{3,200}\?[\"\u201d]")
_STOPWORDS = frozenset(
    (  # noqa: SIM905 (a word list reads better as one string)
        "a an and are as at be by can do does for from how i in is it my of on or the "
        "to what when where which who why with this that there these those default should "
        "would will could me we you your our service"
    ).split()
)
#: The reply the shipped adapter gives when the sources do not hold the answer.
DECLINE = "I don't know: the sources do not say."
#: Candidates shorter than this carry no answer; longer ones are cut.
MIN_CHARS, MAX_CHARS = 12, 400
#: A model answer of at most this many words is checked against the best-matching sentences.
SHORT_WORDS = 4
#: A short answer must come from the best-matching sentence or one scoring within this of it.
SUPPORT_MARGIN = 0.05
#: A longer answer must share at least this part of its content words with a sentence scoring
#: within :data:`SUPPORT_MARGIN` of the best one (a copy of it, or close to one).
COPIED_SHARE = 0.7
#: A longer answer copied from a sentence, holding at most this part of the sentence's content
#: words and none of the question's, is a clause cut from it: the whole sentence is sent instead.
PART_SHARE = 0.5
#: The lift of a sentence of the first source; later sources get less, the last none.
RANK_LIFT = 0.1
#: A source whose reranker score is more than :data:`WEAK_GAP` standard deviations below the first
#: source's is a weak one: its sentences lose up to :data:`WEAK_DROP` (all of it one deviation
#: further down), so a well-worded sentence of a barely related source does not outrank the
#: first sources' answer.
WEAK_GAP, WEAK_DROP = 1.5, 0.15


@dataclass(frozen=True)
class Candidate:
    source: int  # the 1-based number of the source in the prompt
    text: str
    #: A table row's cells (the first: its key, a setting's name), else empty.
    cells: tuple[str, ...] = ()
    #: The sentence before, shown with this one when this one says "it" for what it speaks of
    #: ("Use it as a liveness probe."); not scored.
    lead: str = ""

    @property
    def shown(self) -> str:
        """The text an answer quotes: the sentence with its lead, if it has one."""
        return f"{self.lead} {self.text}" if self.lead else self.text


_DECLINE_START = re.compile(r"^\W*i\s+(?:don[’']?t|do\s+not)\s+know\b", re.IGNORECASE)


def plain_decline(text: str) -> str:
    """:data:`DECLINE` when ``text`` begins as a decline ("I don't know…") in other words, else
    ``text``: the model sometimes garbles the sentence it was trained to write ("I don't know:
    the sources say."), and a reader should get the one plain sentence."""
    return DECLINE if _DECLINE_START.match(text) else text


#: The decline of an answer without sources (the chat route): there are no sources to speak of.
CHAT_DECLINE = "I don't know."
_SOURCES_WORD = re.compile(r"\bsources?\b", re.IGNORECASE)


def chat_decline(text: str) -> str:
    """:data:`CHAT_DECLINE` when ``text`` is a decline that speaks of sources ("I don't know: the
    sources say."), else ``text``: on the chat route the model has no sources, and the decline it
    learnt for answers from sources would read as nonsense there."""
    if _DECLINE_START.match(text) and _SOURCES_WORD.search(text):
        return CHAT_DECLINE
    return text


def may_be_declining(text: str) -> bool:
    """Whether ``text`` is :data:`DECLINE` or could still become it (a stream's first pieces), or
    begins as a decline in other words (:func:`plain_decline`)."""
    start = " ".join(text.split()).lower()
    return (
        DECLINE.lower().startswith(start)
        or start.startswith(DECLINE.lower())
        or _DECLINE_START.match(start) is not None
    )


def is_short(text: str) -> bool:
    """Whether ``text`` is a phrase of at most :data:`SHORT_WORDS` words, citations aside (a
    stream's first pieces included)."""
    words = _plain(_CITE.sub(" ", text)).split()
    return 0 < len(words) <= SHORT_WORDS


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table_row(line: str, header: Sequence[str] = ()) -> str:
    """A table row as text: ``cell | cell``, or with its table's header ``name: cell; name:
    cell`` (a settings row reads ``setting: `rag.top_k`; default: `3`; meaning: ...``)."""
    if _TABLE_RULE.match(line):
        return ""
    cells = _cells(line)
    if len(header) == len(cells) and all(header):
        return "; ".join(
            f"{name}: {cell}" for name, cell in zip(header, cells, strict=True) if cell
        )
    return " | ".join(c for c in cells if c)


#: A piece of a source: its text, its cells (a table row's, else none) and the sentence before it
#: when it names what it speaks of only by a pronoun (:data:`_REFERS_BACK`), else "".
Piece = tuple[str, tuple[str, ...], str]


def _pieces(text: str) -> list[Piece]:
    """The sentences, table rows and code blocks of one source text, in order, each with its
    cells (a table row's, else none).

    Indexed chunk text has its whitespace folded (a code block or a table is one line), so code
    is found between ``` fences and table rows between ``| |`` breaks, not by line. A row after
    its table's header (the row before the ``|---|`` rule) is written with the column names.
    """
    pieces: list[Piece] = []
    segments = _FENCE_SPLIT.split(text)
    for number, segment in enumerate(segments, start=_starts_in_code(segments)):
        segment = segment.strip()
        if not segment:
            continue
        if number % 2:  # inside a fence: the language tag off, one piece, and each command
            code = " ".join(_LANGUAGE_TAG.sub("", segment).split())
            if code:
                pieces.append((f"`{code}`", (), ""))
                pieces.extend((f"`{command}`", (), "") for command in _commands(code))
            continue
        for paragraph in _PARAGRAPH.split(segment):
            pieces.extend(_paragraph_pieces(" ".join(paragraph.split()).lstrip("#-* ")))
    return pieces


def _commands(code: str) -> list[str]:
    """The commands of a folded code block that runs one program several times, each with its
    comment (``genai-factory keys revoke ID # the key id``), cut at each repetition of the
    program's name (its first word); none for a block of one command. "How do I revoke a key?"
    is answered by one line of a block that also creates and lists keys."""
    words = code.split()
    if not words or not _PROGRAM.match(words[0]):
        return []
    found: list[list[str]] = [[]]
    for word in words:
        if word == words[0] and found[-1]:
            found.append([])
        found[-1].append(word)
    return [" ".join(c) for c in found] if len(found) > 1 else []


def _starts_in_code(segments: Sequence[str]) -> int:
    """1 when a source text began inside a code block, else 0: its fences are odd in number and
    the first has no language tag, so it closes a block (almost every opening fence of the guide
    names its language) and the text before it is code, not prose (a diagram's ``|`` lines would
    read as a table row)."""
    odd = len(segments) % 2 == 0
    return int(odd and not _LANGUAGE_TAG.match(segments[1].lstrip()))


#: A sentence that names what it speaks of only by a pronoun ("It", "Use it as ..."): read with the
#: sentence before it.
_REFERS_BACK = re.compile(
    r"^(?:(?:it|its|this|these|they|their|that|those)\b|\w+ (?:it|them)\b)",
    re.IGNORECASE,
)


def _paragraph_pieces(folded: str) -> list[Piece]:
    """The sentences, list items and table rows of one folded paragraph (see :func:`_pieces`)."""
    pieces: list[Piece] = []
    header: list[str] = []
    previous = ""
    for part in _ROW_BREAK.split(folded):
        part = part.strip()
        if _TABLE_RULE.match(part) and "-" in part:  # the rule: the row before is the header
            if previous:
                header = [c.lower() for c in _cells(previous)]
                if pieces and pieces[-1][1] == tuple(_cells(previous)):
                    pieces.pop()  # the header row itself answers nothing
            continue
        previous = ""
        for item in _ITEM_START.split(part):
            before = ""  # the sentence before, in the same item
            for sentence in _SENTENCE_END.split(item.strip()):
                if sentence.count(" | ") >= 2 or sentence.startswith("|"):  # a table row
                    previous = sentence
                    pieces.append((_table_row(sentence, header), tuple(_cells(sentence)), ""))
                    before = ""
                elif sentence.strip():
                    text = sentence.strip()
                    # "Use it as a liveness probe.": the sentence before says what "it" is
                    lead = before if before and _REFERS_BACK.match(text) else ""
                    pieces.append((text, (), lead))
                    before = text
    return pieces


#: A markdown link, ``[Knowledge base](knowledge-base.md)``, and the words that point at one.
_LINK = re.compile(r"\[[^\]]*\]\([^)]*\)")
_POINTING = frozenset(
    ("see", "also", "read", "more", "details", "page", "section", "below", "above")
)


def is_cross_reference(text: str) -> bool:
    """Whether ``text`` only points elsewhere ("See [Knowledge base](knowledge-base.md)."): with
    its links taken out, no content word is left but words that point."""
    if not _LINK.search(text):
        return False
    return not content_words(_LINK.sub(" ", text)) - _POINTING


def candidates(hits: Sequence[ScoredChunk], *, source_chars: int = 600) -> list[Candidate]:
    """Sentences, table rows and code lines of each source, as far as the prompt shows it; not
    a sentence that only points to another page (:func:`is_cross_reference`)."""
    return [
        Candidate(number, piece[:MAX_CHARS], cells, lead[: MAX_CHARS - min(len(piece), MAX_CHARS)])
        for number, hit in enumerate(hits, start=1)
        for piece, cells, lead in _pieces(hit.chunk.text[:source_chars])
        if len(piece) >= MIN_CHARS
        and any(ch.isalnum() for ch in piece)
        and not is_cross_reference(piece)
    ]


_MARKUP = re.compile(r"[`*]+")


def plain_words(text: str) -> str:
    """``text`` as it is embedded: without code and emphasis marks, a name's underscores read as
    spaces (``setting: `log_level``` → ``setting: log level``), as the question is written."""
    return _MARKUP.sub("", text).replace("_", " ")


def content_words(text: str) -> set[str]:
    words = {w.strip("./-") for w in _WORD.findall(text.lower())}
    return {w for w in words if w and w not in _STOPWORDS}


def _plain(text: str) -> str:
    """Lower-case words only, in order (to find a question quoted in a source)."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _stem(word: str) -> str:
    """``word`` without its inflection, crudely: "retries" → "retry", "settings" and "setting"
    → "sett", "embeddings", "embedding" and "embedder" → "embedd" (a plural's ending comes off
    first)."""
    if len(word) > 5 and word.endswith("ies"):  # "retries" -> "retry", as "retry" itself
        return word[:-3] + "y"
    if len(word) > 7 and word.endswith(("ings", "ers")):
        word = word[:-1]
    if len(word) > 7 and word.endswith("er"):  # "embedder", "reranker"; not "answer", "user"
        return word[:-2]
    for suffix in ("ing", "es", "s", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _stems(text: str) -> set[str]:
    """The content words of ``text``, crudely stemmed, with the parts of dotted, dashed and
    slashed words too (``llm.fallbacks`` also gives ``llm`` and ``fallback``)."""
    words = content_words(text)
    return {_stem(w) for w in words} | {
        _stem(part) for w in words for part in re.split(r"[._/-]", w) if part
    }


def _holds(text: str, wanted: set[str]) -> bool:
    """Whether ``text`` holds at least half of the ``wanted`` stems (a phrase's verb, "Set
    llm.fallbacks", need not be in the sentence that names the setting)."""
    return 2 * len(wanted & _stems(text)) >= len(wanted)


def names_section(question: str, heading: str) -> bool:
    """Whether ``question`` names the section ``heading`` (its last part, ``A > B`` → ``B``):
    every content word of a heading of two or more such words is in the question ("How do I
    add my own documents?" names "Add your own documents"). A short how-to question can score
    low on embeddings while the guide has a section titled with it."""
    leaf = {_stem(w) for w in content_words(heading.rpartition(">")[2])}
    return len(leaf) >= 2 and leaf <= {_stem(w) for w in content_words(question)}


#: How a text says that something is absent, for a question asking about a case "without" it.
_ABSENCE = re.compile(r"\b(?:no|missing|absent|lacks?|lacking)\b", re.IGNORECASE)


#: Terms a question uses for what the guide names otherwise (stems): the significance level of a
#: test is its `alpha`, a learning rate an `lr`.
_TERMS = {
    "significance": frozenset(("alpha",)),
    "rate": frozenset(("lr",)),
}


def overlap(question: str, candidate: str) -> float:
    """Share of the question's content words (crudely stemmed) found in the candidate; two
    adjacent words of the question count as found when the candidate writes them as one ("times
    out" and ``webhook_timeout_s``, :func:`joined_words`), and "without" is found in a candidate
    that says something is absent ("no key"), and a term found under the name the guide gives it
    (:data:`_TERMS`)."""
    wanted = {_stem(w) for w in content_words(question)}
    if not wanted:
        return 0.0
    held = _stems(candidate)
    found = wanted & held
    stems = [_stem(w) for w in re.findall(r"[a-z0-9]+", question.lower())]
    for first, second in itertools.pairwise(stems):
        if first + second in held:
            found |= {first, second} & wanted
    if "without" in wanted and _ABSENCE.search(candidate):
        found.add("without")  # "a request without a key": "no key", "a missing key"
    for word, others in _TERMS.items():
        if word in wanted and others & held:
            found.add(word)  # "significance level" and `alpha`
    return len(found) / len(wanted)


#: Questions that want a figure, and questions that want a procedure (a setting or a command).
_WANTS_FIGURE = re.compile(
    r"\b(how (?:many|much|long|large|big|often)|(?:which|what) (?:port|address|host)|"
    r"what (?:is|are) the default|"
    r"limit|size|timeout|how soon|minimum|maximum|version)\b",
    re.IGNORECASE,
)
#: Questions that want a status or exit code, and such a code: a number standing alone (not the
#: ``1`` of ``/v1`` or a version).
_WANTS_CODE = re.compile(
    r"\b(?:(?:status|exit|error|return) code|http status|(?:what|which) status)\b", re.IGNORECASE
)
_CODE_NUMBER = re.compile(r"(?<![\w/.-])\d{1,3}(?![\w/-]|\.\d)")
#: A question about an HTTP status (not an exit code), and such a status: three digits, 1xx-5xx.
_WANTS_HTTP = re.compile(r"\bstatus\b", re.IGNORECASE)
_HTTP_STATUS = re.compile(r"(?<![\w/.-])[1-5]\d\d(?![\w/-]|\.\d)")
_WANTS_PROCEDURE = re.compile(r"\b(how (?:do|can|should) (?:i|you|we)|how to)\b", re.IGNORECASE)
_WANTS_DURATION = re.compile(r"\b(how long|how soon|how often|timeout|wait)\b", re.IGNORECASE)
_DURATION = re.compile(
    r"\d\s*(?:ms|s|sec|seconds?|minutes?|min|hours?|h|days?)\b|\b(?:seconds?|minutes?)\b|_s\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
#: Questions that want a share ("what share of answers ...", "what percentage ..."), and a share:
#: a percentage, a fraction of one (``0.8``), or a share in words.
_WANTS_SHARE = re.compile(
    r"\b(?:what|which) (?:share|percentage|proportion|fraction|part)\b", re.IGNORECASE
)
_SHARE = re.compile(
    r"\d\s?%|(?<![\d.])0?\.\d+\b|\bper ?cent\b|\b(?:half|a third|a quarter|a fifth)\b",
    re.IGNORECASE,
)
#: Questions that want a value (of a setting, a limit): not the setting's name.
_WANTS_VALUE = re.compile(
    r"\b(default|how (?:many|much|long|large|big|often)|what (?:is|are) the (?:\w+ ){0,3}"
    r"(?:limit|size|value|prefix|port|address|timeout|number))\b",
    re.IGNORECASE,
)


def _names_row_key(wanted: set[str], candidate: Candidate) -> bool:
    """Whether ``candidate`` is a table row whose key (first cell: a setting's name) the reply
    names while holding nothing of the row's other cells (its value)."""
    if len(candidate.cells) < 2:
        return False
    key = _stems(candidate.cells[0])
    rest = _stems(" ".join(candidate.cells[1:])) - key
    return bool(wanted & key) and not wanted & rest


#: The procedure lift of a whole code block (commands) for "how do I": a sentence holding a code
#: span gets 0.1.
COMMAND_LIFT = 0.15


def is_command_block(text: str) -> bool:
    """Whether ``text`` is a whole code block (one code span of several words), as
    :func:`_pieces` writes one: commands, not a sentence naming a path or a setting."""
    return len(text) > 2 and text[0] == "`" == text[-1] and text.count("`") == 2 and " " in text


def answer_type_bonus(question: str, candidate: str) -> float:
    """A small lift for candidates of the kind the question asks for: a figure (``how many``,
    ``which port``, ``the default …``; for a status or exit code a number standing alone), a
    procedure (``how do I``: a setting or a command), a duration (``how long``: a time unit), a
    share (``what share``: a percentage or a fraction)."""
    bonus = 0.0
    if _WANTS_CODE.search(question):
        code = _HTTP_STATUS if _WANTS_HTTP.search(question) else _CODE_NUMBER
        bonus += 0.25 if code.search(_CITE.sub(" ", candidate)) else 0.0
    elif _WANTS_FIGURE.search(question) and states_figure(candidate):
        bonus += 0.25
    if _WANTS_PROCEDURE.search(question) and "`" in candidate:
        bonus += COMMAND_LIFT if is_command_block(candidate) else 0.1
    if _WANTS_DURATION.search(question) and _DURATION.search(candidate):
        bonus += 0.1
    if _WANTS_SHARE.search(question) and _SHARE.search(_CITE.sub(" ", candidate)):
        bonus += 0.1
    return bonus


#: Words a question uses for the abbreviations and terms of setting names (``max_backoff_s``:
#: "longest wait", ``initial_backoff_s``: "first wait").
_KEY_SYNONYMS = {
    "max": frozenset(("longest", "largest", "most", "highest", "maximum", "biggest", "cap")),
    "min": frozenset(("shortest", "smallest", "least", "lowest", "minimum", "fewest")),
    "initial": frozenset(("first", "start")),
    "backoff": frozenset(("wait", "delay", "pause", "sleep")),
}
#: A unit suffix of a setting name (``timeout_s``, ``max_bytes``): no word of the question.
_KEY_UNITS = frozenset(("s", "ms", "bytes", "usd"))
_IDENTIFIER = re.compile(r"`([^`]+)`")
#: What follows "how many" up to its noun's end: "how many index versions are kept" -> "index
#: versions".
_HOW_MANY = re.compile(
    r"\bhow many ((?:[a-z-]+ )*?[a-z-]+)(?= (?:are|is|do|does|did|can|could|may|might|will|would|"
    r"should|must|of|per|in|on|at|for|to|get|have|has|go|one|each|a|the)\b|\W*$)",
    re.IGNORECASE,
)
#: "which tools ...", "what file formats ...", "which HTTP status codes ...": a plural noun right
#: after which/what (or after one or two words more, no verb or preposition among them), asking
#: for several things; not a verb with its object or clause ("which command creates a key",
#: "which endpoint serves Prometheus metrics", "what happens when ...", "what happens to ...").
_WANTS_LIST = re.compile(
    r"^\W*(?:which|what) ((?:(?!(?:does|is|was|has|do|are|of|for|in|on|to|by|with)\b)[a-z-]+ )"
    r"{0,2}(?!(?:does|is|was|has)\b)[a-z-]+[^su\W]s)\b"
    r"(?!\s+(?:the|a|an|its|their|my|your|our|this|that|these|those|each|every|all|any|no|"
    r"when|if|after|before|once|unless|to|how|what|which|who|where)\b)"
    r"(?!\s+(?-i:[A-Z]))",
    re.IGNORECASE,
)
#: What separates the items of an enumeration: "a, b or c", "`a`, `b`, `c`".
_LIST_SEPARATOR = re.compile(r",\s|\s(?:or|and)\s")
#: Where a clause ends inside a list item: "default guards (route `default`): `injection`".
_CLAUSE_BREAK = re.compile(r"[:;]\s")
#: An item of an enumeration has at most this many words ("plain text (`.txt`)").
LIST_ITEM_WORDS = 4
_NUMBER_WORD = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred|"
    r"thousand|million|twice)\b",
    re.IGNORECASE,
)
_WANTS_PLACE = re.compile(r"\bwhere\b", re.IGNORECASE)
#: A path or a dot-file: ``/data``, ``.genai``, ``<data_dir>/index``, ``~/.cache``.
_PATH = re.compile(r"(?:^|[\s`(])(?:~?/\w|\.\w|<\w+>/)")
#: The lifts of :func:`structure_bonus`, and what a candidate without a figure loses for "how
#: many".
KEY_LIFT, NOUN_LIFT, LIST_LIFT, PLACE_LIFT, NO_COUNT_DROP = 0.15, 0.15, 0.1, 0.1, 0.25
#: What a sentence that leads in to what follows it (ends with a colon) loses: it states nothing
#: by itself.
LEAD_IN_DROP = 0.15
#: What a candidate that lists nothing loses for "which <plural noun>": it cannot name several.
NO_LIST_DROP = 0.15


def key_words(key: str) -> set[str]:
    """The words of a table row's key (its first cell): of its first code span, if it has one
    (``rag.retrieval.fusion`` / ``keyword_weight`` → the first), the last dotted segment split
    at underscores (``max_backoff_s`` → ``max``, ``backoff``), unit suffixes (``_s``) aside, crudely
    stemmed; else the cell's content words."""
    found = _IDENTIFIER.search(key)
    if found is None:
        return {_stem(w) for w in content_words(key)}
    parts = re.split(r"[_\W]+", found.group(1).lower().rpartition(".")[2])
    return {_stem(p) for p in parts if len(p) > 1 and p not in _KEY_UNITS}


def joined_words(question: str) -> set[str]:
    """Each two adjacent words of ``question`` written as one, crudely stemmed: a setting's name
    writes "times out" as ``timeout``, "look up" as ``lookup``."""
    stems = [_stem(w) for w in re.findall(r"[a-z0-9]+", question.lower())]
    return {first + second for first, second in itertools.pairwise(stems)}


def key_share(question: str, candidate: Candidate) -> float:
    """The share of the words of a table row's key (:func:`key_words`) that the question names
    (``max`` is named by "longest", ``min`` by "shortest", ``timeout`` by "times out":
    :func:`joined_words`); 0 for a candidate that is no row."""
    if len(candidate.cells) < 2:
        return 0.0
    wanted = key_words(candidate.cells[0])
    if not wanted:
        return 0.0
    asked = _stems(question) | joined_words(question)
    named = {w for w in wanted if w in asked or asked & _KEY_SYNONYMS.get(w, frozenset())}
    return len(named) / len(wanted)


def counted_noun(question: str) -> str | None:
    """The noun a "how many" question counts, crudely stemmed ("How many index versions are
    kept?" → ``version``), or ``None``."""
    found = _HOW_MANY.search(question)
    if found is None:
        return None
    noun = _stem(found.group(1).split()[-1].lower())
    return None if noun == "time" else noun  # "how many times": how often, no thing counted


def states_count_of(noun: str, text: str) -> bool:
    """Whether ``text`` puts a figure, in digits or in words, right before ``noun`` (at most two
    words between: "(default 3) ready versions", "default: `3`; meaning: sources retrieved",
    "in twelve languages")."""
    figure = rf"(?:\d[\d,.]*|{_NUMBER_WORD.pattern})"
    found = re.search(rf"{figure}\W+(?:\w+\W+){{0,2}}{re.escape(noun)}", text, re.IGNORECASE)
    return found is not None


def is_enumeration(text: str) -> bool:
    """Whether ``text`` lists at least three short items in a row ("Markdown (`.md`), plain text
    (`.txt`) and PDF", "`pii` (redact), `toxicity` (block), `prompt_leak` (block)"). The first
    item is what follows a colon or semicolon ("default guards: `injection` (block), ...")."""
    run = longest = 0
    for item in _LIST_SEPARATOR.split(_CITE.sub(" ", text)):
        clauses = _CLAUSE_BREAK.split(item)
        if len(clauses) > 1:  # a new clause: only its last part may start a list
            run = 1 if _is_list_item(clauses[-1]) else 0
        else:
            run = run + 1 if _is_list_item(item) else 0
        longest = max(longest, run)
    return longest >= 3


def _is_list_item(text: str) -> bool:
    return 0 < len(text.split()) <= LIST_ITEM_WORDS


def list_bonus(question: str, text: str) -> float:
    """For "which <plural noun>" (:data:`_WANTS_LIST`): :data:`LIST_LIFT` for an enumeration, and
    :data:`NOUN_LIFT` more when the candidate names what the question lists ("Which file formats
    ...?": "Supported files are Markdown, ..."); :data:`NO_LIST_DROP` less for a candidate that
    lists nothing. 0 for other questions."""
    asked = _WANTS_LIST.search(question)
    if asked is None:
        return 0.0
    if not is_enumeration(text):
        return -NO_LIST_DROP
    named = {_stem(w) for w in content_words(asked.group(1))} & _stems(text)
    return LIST_LIFT + (NOUN_LIFT if named else 0.0)


def states_figure(text: str) -> bool:
    """Whether ``text`` states a figure, in digits or in words (citations aside; not "one", which
    is as often a pronoun: "the serving one")."""
    plain = _CITE.sub(" ", text)
    return bool(_DIGIT.search(plain) or _NUMBER_WORD.search(plain))


#: "the default for <kind of> <thing>": a default stated for one case among several.
_QUALIFIED_DEFAULT = re.compile(r"\bdefault for (?:the |an? )?([^)(:;,.]+)", re.IGNORECASE)
#: The lift of a default stated for the case the question names, and the drop of one stated for a
#: case the question does not name.
QUALIFIER_LIFT = 0.1


def qualifier_bonus(question: str, text: str) -> float:
    """For a question about a default, a candidate stating the default for one case ("`native`
    (the default for `openai_compatible` models)") gets :data:`QUALIFIER_LIFT` when the question
    names that case by one of the words before its last ("Which format does the *embedded* model
    use by default?" and "the default for the embedded llama.cpp model"), as much less when it
    names none of them; 0 for other questions and candidates."""
    stated = _QUALIFIED_DEFAULT.search(text)
    if stated is None or "default" not in question.lower():
        return 0.0
    words = [w for w in _WORD.findall(_MARKUP.sub("", stated.group(1)).lower()) if w]
    kinds = {_stem(part) for w in words[:-1] for part in re.split(r"[._/-]", w) if part}
    kinds -= _STOPWORDS
    if not kinds:
        return 0.0
    return QUALIFIER_LIFT if kinds & _stems(question) else -QUALIFIER_LIFT


#: "by default", "(default 0.25)", "default: `3`": a candidate that states a default, and the
#: lift it gets when the question asks for one (:func:`default_bonus`).
_DEFAULT = re.compile(r"\bdefault\b", re.IGNORECASE)
DEFAULT_LIFT = 0.1
#: "When does ...?" asks for a condition; a clause that states one.
_WANTS_CONDITION = re.compile(r"^\W*when\b", re.IGNORECASE)
_CONDITION = re.compile(
    r"\b(?:when|whenever|if|unless|once|until|except|while|as soon as)\b", re.IGNORECASE
)
CONDITION_LIFT = 0.1


def default_bonus(question: str, text: str) -> float:
    """:data:`DEFAULT_LIFT` for a candidate that states a default ("By default MLflow is embedded:
    ...", "`--unanswerable-share` (default 0.25)") when the question asks what happens or is used
    by default: the sentence that says so beats one that only shares the question's other words
    (a command that shows one way to do it). 0 otherwise."""
    wanted = _DEFAULT.search(question) and _DEFAULT.search(text)
    return DEFAULT_LIFT if wanted else 0.0


def condition_bonus(question: str, text: str) -> float:
    """:data:`CONDITION_LIFT` for a candidate stating a condition ("except when the service binds
    to a loopback address") when the question asks "when ...?"; 0 otherwise."""
    wanted = _WANTS_CONDITION.search(question) and _CONDITION.search(text)
    return CONDITION_LIFT if wanted else 0.0


def structure_bonus(question: str, candidate: Candidate, text: str) -> float:
    """Lifts for a candidate whose form fits the question: a table row whose key the question
    names (:data:`KEY_LIFT` times :func:`key_share`), a figure next to the noun a "how many"
    question counts (and a drop for no figure at all), an enumeration for "which <plural noun>",
    a path for "where", a stated default for "by default" (:func:`default_bonus`), a condition
    for "when" (:func:`condition_bonus`)."""
    bonus = KEY_LIFT * key_share(question, candidate)
    noun = counted_noun(question)
    if noun and states_count_of(noun, text):
        bonus += NOUN_LIFT
    if _HOW_MANY.search(question) and not states_figure(text):
        bonus -= NO_COUNT_DROP
    bonus += list_bonus(question, text)
    if _WANTS_PLACE.search(question) and _PATH.search(text):
        bonus += PLACE_LIFT
    bonus += default_bonus(question, text) + condition_bonus(question, text)
    if text.rstrip().endswith(":"):
        bonus -= LEAD_IN_DROP  # "To use an OpenAI-compatible embeddings endpoint:" states nothing
    return bonus + qualifier_bonus(question, text) + subject_bonus(question, text)


#: "What does the drift job compare?", "What does the circuit breaker do?", "What is GenAI
#: Factory?": the thing asked about, and the verb asked for (none for "is" and "do").
_WHAT_DOES = re.compile(
    r"^\W*what (?:does|do|is|are) (?:the |a |an )?([\w`. -]+?)(?: (\w+))?\W*$", re.IGNORECASE
)
#: The words before a noun that make it the subject of the next word ("the breaker opens"), not
#: a modifier ("breaker states appear").
_DETERMINERS = frozenset(("the", "a", "an", "each", "every", "this", "its", "their", "your"))
#: The lift of a sentence that says what the asked thing does (:func:`subject_bonus`).
SUBJECT_LIFT = 0.15


def subject_bonus(question: str, text: str) -> float:
    """:data:`SUBJECT_LIFT` when ``text`` makes the thing a "what does X do" question asks about
    the subject of a verb: a word of the thing followed by the asked verb ("`drift` compares"
    for what the drift job compares), or, for "do", by a verb in the third person after a determiner
    ("the breaker opens"); for "what is X", the sentence opens with X and a verb ("GenAI Factory turns ...")."""
    asked = _WHAT_DOES.match(question)
    if asked is None:
        return 0.0
    thing, verb = asked.group(1).lower().split(), (asked.group(2) or "").lower()
    if question.lower().split()[1] in ("is", "are"):
        thing, verb = thing + ([verb] if verb else []), ""
        if text.startswith("`"):
            return 0.0  # a code name (`genai_factory.cli`) is not the thing its words spell
        opening = " ".join(re.findall(r"[a-z0-9]+", text.lower())[: len(thing) + 1])
        return SUBJECT_LIFT if opening.startswith(" ".join(thing) + " ") else 0.0
    nouns = {w for w in thing if w not in _STOPWORDS}
    if not nouns:
        return 0.0
    words = re.findall(r"[a-z0-9]+", _MARKUP.sub("", text).lower())
    for before, first, second in zip(["", *words], words, words[1:], strict=False):
        if first not in nouns:
            continue
        if (
            verb in ("", "do")
            and before in _DETERMINERS
            and second.endswith("s")
            and not second.endswith("ss")
        ):
            return SUBJECT_LIFT
        if verb not in ("", "do") and _stem(second).rstrip("e") == _stem(verb).rstrip("e"):
            return SUBJECT_LIFT
    return 0.0


_NUMBER = re.compile(r"(?<![\w.\[])(?<![A-Za-z]-)\d[\d,.]*(?![\w\]])")
_CITE = re.compile(r"\[(\d{1,2})\]")


def _numbers(text: str) -> set[str]:
    """The figures of ``text``, citations aside."""
    return {n.rstrip(".,") for n in _NUMBER.findall(_CITE.sub(" ", text))}


def unsupported_numbers(
    answer: str, hits: Sequence[ScoredChunk], *, source_chars: int = 600
) -> bool:
    """Whether the answer states a number that none of the sources it cites (all, if it cites
    none) contains: a small model's invented figure ("120 seconds [3]")."""
    numbers = {n.rstrip(".,") for n in _NUMBER.findall(_CITE.sub(" ", answer))}
    if not numbers:
        return False
    cited_numbers = {int(n) for n in _CITE.findall(answer) if 1 <= int(n) <= len(hits)}
    shown = [hit.chunk.text[:source_chars] for hit in hits]
    texts = [shown[n - 1] for n in sorted(cited_numbers)] or shown
    present = {n.rstrip(".,") for text in texts for n in _NUMBER.findall(text)}
    return not numbers <= present


def source_priors(hits: Sequence[ScoredChunk]) -> list[float]:
    """The prior of each source's sentences: :data:`RANK_LIFT` for the first source down to none
    for the last, less a drop for a weak source (:data:`WEAK_GAP`, :data:`WEAK_DROP`; by the
    reranker's score, in standard deviations, when the hits have one)."""
    last = max(len(hits) - 1, 1)
    reranked = [hit.scores.get("rerank") for hit in hits]
    top = reranked[0] if reranked else None
    priors = []
    for number, score in enumerate(reranked, 1):
        prior = RANK_LIFT * max(0, len(hits) - number) / last
        if top is not None and score is not None:
            prior -= WEAK_DROP * min(1.0, max(0.0, top - score - WEAK_GAP))
        priors.append(prior)
    return priors


#: The share of a question's content words a quoted example question must hold to be the same
#: question in other words.
QUOTED_SHARE = 0.6


def quotes_the_question(question: str, text: str) -> bool:
    """Whether ``text`` quotes an example question that asks what ``question`` asks, in other
    words (the guide's "How do I add my own documents?" for "How do I add my own documents to the
    knowledge base?"): a sentence about how such questions are handled does not answer one."""
    wanted = {_stem(w) for w in content_words(question)}
    return bool(wanted) and any(
        len(wanted & _stems(quoted)) >= QUOTED_SHARE * len(wanted)
        for quoted in _QUOTED_QUESTION.findall(text)
    )


def cuts_a_name(answer: str, source: str) -> bool:
    """Whether ``answer`` writes a code span of ``source`` cut short (`genai_factory.exceptions`
    for `genai_factory.exceptions.GenAIFactoryError`): a small model copying a sentence stops
    inside a long name, and the cut name names something else."""
    spans = set(_IDENTIFIER.findall(source))
    return any(
        full != cut and full.startswith(cut)
        for cut in _IDENTIFIER.findall(answer)
        for full in spans
    )


def cited(sentence: str, number: int) -> str:
    """``sentence`` with its source number before the final full stop: ``… 8000 [1].``"""
    text = sentence.strip()
    if text.endswith((".", "!", "?", ":")):
        return f"{text[:-1].rstrip()} [{number}]{'.' if text.endswith(':') else text[-1]}"
    return f"{text} [{number}]"


class SentenceExtractor:
    """Picks the best-matching sentence of the sources (see the module docstring)."""

    def __init__(
        self, embedder: Embedder, *, min_score: float = 0.65, source_chars: int = 600
    ) -> None:
        self.embedder = embedder
        self.min_score = min_score
        self.source_chars = source_chars

    async def ranked(
        self, question: str, hits: Sequence[ScoredChunk]
    ) -> list[tuple[Candidate, float]]:
        """Every candidate that reaches ``min_score``, best first, with its score."""
        asked = _plain(question)
        found = [  # a line quoting the question (an example request) does not answer it
            c
            for c in candidates(hits, source_chars=self.source_chars)
            if (not asked or asked not in _plain(c.text))
            and not quotes_the_question(question, c.text)
        ]
        if not found:
            return []
        # a question quoted as an example ('so "Which ... ?" goes to RAG') is not what the
        # sentence states: it is scored without it
        texts = [_QUOTED_QUESTION.sub(" ", c.text) for c in found]
        vectors = await self.embedder.embed([question, *(plain_words(t) for t in texts)])
        similarity = vectors[1:] @ vectors[0]  # unit rows: cosine similarity
        priors = source_priors(hits)
        scored = [
            (
                c,
                float(sim)
                + 0.5 * overlap(question, text)
                + answer_type_bonus(question, text)
                + structure_bonus(question, c, text)
                + (priors[c.source - 1] if c.source <= len(priors) else 0.0),
            )
            for c, text, sim in zip(found, texts, similarity, strict=True)
        ]
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return [pair for pair in scored if pair[1] >= self.min_score]

    async def best(
        self, question: str, hits: Sequence[ScoredChunk]
    ) -> tuple[Candidate, float] | None:
        """The best candidate and its score, or ``None`` when none reaches ``min_score``."""
        ranked = await self.ranked(question, hits)
        return ranked[0] if ranked else None

    async def _reply_words_and_ranking(
        self, question: str, answer: str, hits: Sequence[ScoredChunk]
    ) -> tuple[set[str], list[tuple[Candidate, float]]] | None:
        """The reply's content stems (citations aside) and the ranked candidates; ``None`` when
        the reply has no content word or no candidate reaches ``min_score``."""
        wanted = _stems(_CITE.sub(" ", answer))
        if not wanted:
            return None
        ranked = await self.ranked(question, hits)
        return (wanted, ranked) if ranked else None

    async def unsupported_short_answer(
        self, question: str, answer: str, hits: Sequence[ScoredChunk]
    ) -> str | None:
        """For a short answer (a phrase of at most :data:`SHORT_WORDS` words, citations aside):
        the cited sentence that answers the question best, when neither it nor a sentence scoring
        within :data:`SUPPORT_MARGIN` of it holds at least half of the phrase's content words
        (crudely stemmed); the sentence that holds the phrase, when the phrase is a figure and
        that sentence states several; else ``None``. (The cited source is no evidence: the phrase
        was copied from one of the sources.)

        A small model's short answer is either a span of the sentence that answers the question
        ("384 [1]") or a span of some other sentence ("one [1]" for how many steps an agent may
        take): the second is replaced by the sentence itself. A phrase made only of the question's
        own words ("The document [2]" for the largest document accepted) states nothing and is
        replaced too.
        """
        if not is_short(answer):
            return None
        found = await self._reply_words_and_ranking(question, answer, hits)
        if found is None:
            if not _numbers(answer) and _stems(_CITE.sub(" ", answer)) <= _stems(question):
                # "Add your own documents [2]": the question's own words, the title of a
                # section no sentence of which matches well: the section's opening answers.
                return section_opening(question, hits, source_chars=self.source_chars)
            return None
        wanted, ranked = found
        if not _numbers(answer) and wanted <= _stems(question):
            # "The document [2]" for "What is the largest document ...?": the question's own
            # words answer nothing, whichever sentence holds them.
            best = ranked[0][0]
            return cited(best.shown, best.source)
        top = ranked[0][1]
        # The words the reply adds to the question are its evidence: "one more model call [1]"
        # for how many tokens a model call may write shares "model call" with the row that says
        # 160, but not "one more", which come from another row.
        added = wanted - _stems(question) or wanted
        near = [c for c, score in ranked if score >= top - SUPPORT_MARGIN]
        if self._copied_from_elsewhere(answer, near, hits):
            best = ranked[0][0]
            return cited(best.shown, best.source)
        holding = [c for c in near if _holds(c.text, added)]
        if not holding:
            best = ranked[0][0]
            return cited(best.shown, best.source)
        if _WANTS_VALUE.search(question) and _names_row_key(wanted, holding[0]):
            # "`gateway.redis_prefix` [2]" for the default prefix: the reply names the setting of
            # a table row, not its value; the row (setting, variable, default, meaning) answers.
            return cited(holding[0].shown, holding[0].source)
        if _numbers(answer) and len(_numbers(holding[0].text)) > 1:
            # "20000 [1]" from "60 requests and 20000 tokens per minute": which figure answers is
            # the reader's to see, so the whole sentence is sent.
            return cited(holding[0].shown, holding[0].source)
        return None

    def _copied_from_elsewhere(
        self, answer: str, near: Sequence[Candidate], hits: Sequence[ScoredChunk]
    ) -> bool:
        """Whether a source writes the short ``answer`` word for word while no candidate in
        ``near`` does (``mode: `rag``` from the list of routes, while the best-matching row names
        `rag.retrieval.mode` and holds both words apart)."""
        phrase = f" {_plain(_CITE.sub(' ', answer))} "
        if not phrase.strip() or any(phrase in f" {_plain(c.text)} " for c in near):
            return False
        return any(phrase in f" {_plain(hit.chunk.text[: self.source_chars])} " for hit in hits)

    async def unsupported_answer(
        self, question: str, answer: str, hits: Sequence[ScoredChunk]
    ) -> str | None:
        """The cited sentence that answers the question best, when ``answer`` does not come from it
        or from a sentence scoring within :data:`SUPPORT_MARGIN` of it; else ``None``.

        A short answer is checked by :meth:`unsupported_short_answer`. A longer one must share at
        least :data:`COPIED_SHARE` of its content words (crudely stemmed) with one of those
        sentences: a small model reading several sources copies a sentence, and when it copies
        one that matches the question less well than another ("one more model call that may
        only give the final answer" for how many decisions an agent may make, beside the table
        row that says 5), or mixes the words of several, the best-matching sentence is the better
        answer. A copied part of a sentence that leaves out all of the sentence's figures is
        replaced by the whole sentence. Nothing is replaced when no sentence reaches
        ``min_score``.
        """
        if is_short(answer):
            return await self.unsupported_short_answer(question, answer, hits)
        found = await self._reply_words_and_ranking(question, answer, hits)
        if found is None:
            return None
        wanted, ranked = found
        top = ranked[0][1]
        near = [c for c, score in ranked if score >= top - SUPPORT_MARGIN]
        copied = [c for c in near if len(wanted & _stems(c.text)) >= COPIED_SHARE * len(wanted)]
        if copied:
            source = copied[0]
            if _WANTS_VALUE.search(question) and _names_row_key(wanted, source):
                return cited(source.shown, source.source)  # the setting's name, not its value
            figures, stated = _numbers(answer), _numbers(source.text)
            if figures < stated or cuts_a_name(answer, source.text):
                # A part of the sentence without the sentence's figures ("the key's requests are
                # refused until the period resets" from the sentence that says they get 402), or
                # with only some of them ("128 KiB" from "at most 40 messages and 128 KiB"): the
                # whole sentence answers, and shows which figure is which.
                return cited(source.shown, source.source)
            if not wanted & _stems(question) and len(wanted) <= PART_SHARE * len(
                _stems(source.text)
            ):
                # A clause cut from a longer sentence that names nothing the question asks about
                # ("The trace id always names exactly one request" from the sentence that says a
                # client's `traceparent` is recorded as a span link, so the trace id names one
                # request): the rest of the sentence is what the clause follows from.
                return cited(source.shown, source.source)
            return None
        best = ranked[0][0]
        return cited(best.shown, best.source)

    async def answer(self, question: str, hits: Sequence[ScoredChunk]) -> str | None:
        """The cited sentence that answers ``question``; else the opening of a source whose
        section the question names (:func:`section_opening`); else ``None``."""
        found = await self.best(question, hits)
        if found is None:
            return section_opening(question, hits, source_chars=self.source_chars)
        return cited(found[0].shown, found[0].source)


def section_opening(
    question: str, hits: Sequence[ScoredChunk], *, source_chars: int = 600
) -> str | None:
    """The first candidates of the first source whose section heading the question names
    (:func:`names_section`: "How do I add my own documents?" and "Add your own documents"),
    cited, up to :data:`MAX_CHARS`; ``None`` when no source's section is named. A how-to section
    often opens with a command and a short sentence that no single sentence score ranks high."""
    for number, hit in enumerate(hits, start=1):
        if not names_section(question, hit.chunk.heading):
            continue
        parts: list[str] = []
        for candidate in candidates([hit], source_chars=source_chars):
            if parts and len(" ".join([*parts, candidate.text])) > MAX_CHARS:
                break
            parts.append(candidate.text)
            if len(parts) == 2:
                break
        if parts:
            return cited(" ".join(parts), number)
    return None
