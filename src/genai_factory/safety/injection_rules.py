"""Hand-written rules for known prompt-injection and jailbreak patterns, in many languages.

Rules see :func:`~genai_factory.safety.normalize.canonical` text (case-folded, accents removed), so
the lexicons below are written plainly and normalised the same way when compiled. Each rule has a
stable name reported in verdicts. The rules need no trained artefact: they are the floor of the
injection guard, and the trained classifier adds recall on styles the rules do not name.

Families: ``instruction_override`` (ignore/forget the previous instructions), ``prompt_extraction``
(reveal your system prompt), ``jailbreak_persona`` (an AI without restrictions), ``hidden_instruction``
(a note to the AI inside a document or tool output), ``tool_abuse`` (destructive commands,
exfiltration, secret files, acting without the user's consent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from genai_factory.safety.normalize import canonical

# --- lexicons (English, German, French, Spanish, Italian, Portuguese, Dutch, Polish, Russian,
# Turkish, Chinese, Japanese). Stems: a word matches when it starts with one of them.
OVERRIDE_VERBS = (
    "ignore disregard forget skip override bypass neglect abandon discard circumvent "
    "stop_following do_not_follow don't_follow no_longer_follow do_not_obey stop_obeying "
    "deviating_from contrary_to "
    "ignorier vergiss vergessen missacht uberspring befolge_nicht hor_auf abweichend "
    "ignorez oublie oubliez contourne ne_respecte ne_tiens_pas_compte ne_suis_plus "
    "ignora olvid omite descarta no_sigas haz_caso_omiso deja_de_seguir "
    "dimentica tralascia non_seguire non_rispettare "
    "esqueca desconsidere nao_siga deixe_de_seguir "
    "negeer vergeet volg_niet "
    "zignoruj ignoruj zapomnij pomin nie_przestrzegaj nie_stosuj zaboravi "
    "игнорир проигнорир забуд не_следуи не_выполняи не_соблюдаи "
    "unut gormezden yok_say dikkate_alma "
    "忽略 忘记 无视 忽视 不要遵循 無視 忘れ"
)
TARGET_NOUNS = (
    "instruction rule guideline directive prompt constraint restriction polic programming "
    "guardrail safety filter training "
    "anweisung regel richtlinie vorgabe befehl vorschrift einschrank instruktion ausfuhrung "
    "consigne regle contrainte securite "
    "instruccion regla directriz directiva restriccion norma indicacion "
    "istruzion regol direttiv vincol restrizion "
    "instruc regra diretriz restric "
    "instructie richtlijn "
    "polecen instrukcj instrukcij zasad regul ograniczen "
    "инструкц правил указани ограничени "
    "talimat kural yonerge "
    "指令 指示 规则 提示 限制 ルール"
)
EVERYTHING = "everything alles tout todo tutto wszystko все всё sve"
ABOVE = "above obig ci-dessus arriba sopra acima hierboven powyzej выше yukaridaki"
FORGET_VERBS = "forget vergiss oublie olvid dimentica esqueca zapomnij забуд vergeet unut"
POSSESSIVES = (
    "your yours ihre ihren deine deinen deiner votre vos tes ton ta tu tus tuo tua tuoi seu sua "
    "seus suas je jouw twoj twoje twoich swoj swoje swoich тво сво senin 你的"
)
PROMPT_ADJECTIVES = (
    "system initial original hidden secret internal pre first underlying developer "
    "systeem systemow системн sistem sistema systeme 系统 初始"
)
PROMPT_NOUNS = (
    "prompt message instruction rule configuration config directive guideline setting text "
    "nachricht anweisung mesaj instrukcj инструкц промпт сообщени 提示 指令 消息"
)
AI_WORDS = "ai ia ki llm model modelo modell modele assistant assistent chatbot bot gpt"
ANSWER_WORDS = "you respond answer reply responde respond repond odpowi отвеча antworte rispondi"
WITHOUT = "without no sans sin senza sem bez без ohne zonder"
LIMITS = (
    "restriction filter limit censor rule guideline ethic moral safety restriccion filtro regle "
    "regol restric cenzur ограничени цензур einschrank zensur beperking regel"
)
UNRESTRICTED = "unrestricted unfiltered uncensored amoral unethical unbound unchained jailbroken"
#: Words that make a "rule" a tool's setting, not the assistant's instruction ("ignore a lint
#: rule", "skip the firewall rule").
TOOL_RULES = (
    "lint linter eslint pylint ruff flake8 mypy css firewall iptables routing validation spam "
    "mail inbox cache compiler warning style formatting"
)


def _trie_pattern(words: list[str]) -> str:
    """A regex matching exactly ``words``, factored by common prefixes so it scans fast."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: dict[str, Any]) -> str:
        branches = []
        optional = "" in node
        for char in sorted(k for k in node if k):
            piece = r"\s+" if char == " " else re.escape(char)
            branches.append(piece + render(node[char]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if optional else body

    return render(trie)


def _alternation(words: str, *, stem: bool = True) -> str:
    """A regex alternation of the lexicon ``words`` (``_`` joins the words of one entry).

    Latin and Cyrillic entries match at a word start; with ``stem`` any word ending may follow.
    CJK entries (no word boundaries in the script) match anywhere.
    """
    entries = {canonical(e.replace("_", " ")) for e in words.split(" ") if e}
    cjk = sorted(e for e in entries if any(ord(c) >= 0x2E80 for c in e))
    alphabetic = sorted(entries - set(cjk))
    ending = r"\w*" if stem else r"(?!\w)"
    parts = [rf"(?<!\w){_trie_pattern(alphabetic)}{ending}"]
    if cjk:
        parts.append(_trie_pattern(cjk))
    return "(?:" + "|".join(parts) + ")"


def _gap(words: int) -> str:
    """Up to ``words`` words (or CJK characters) between two parts of a pattern."""
    return rf"(?:(?:\W+\w+){{0,{words}}}?\W*|[^\n]{{0,{2 * words}}}?)"


@dataclass(frozen=True)
class Rule:
    """A named pattern of one family."""

    name: str
    family: str
    pattern: re.Pattern[str]


def _rule(name: str, family: str, pattern: str) -> Rule:
    return Rule(name, family, re.compile(pattern, re.DOTALL))


def _override_rules() -> list[Rule]:
    verbs, targets = _alternation(OVERRIDE_VERBS), _alternation(TARGET_NOUNS)
    # ... nor the user's own instruction ("why does the model ignore my instruction?")
    not_a_tool = "".join(rf"(?<!\b{word} )" for word in [*TOOL_RULES.split(), "my"])
    return [
        _rule(
            "override_instructions", "instruction_override", verbs + _gap(5) + not_a_tool + targets
        ),
        _rule("instructions_overridden", "instruction_override", targets + _gap(2) + verbs),
        _rule(
            "forget_everything",
            "instruction_override",
            _alternation(FORGET_VERBS)
            + r"\W+"
            + _alternation(EVERYTHING, stem=False)
            # "forget everything (I said) about the blue dress" changes a topic, not the rules
            + r"(?!(?:\W+\w+){0,3}?\W+about\W+(?:my|the|a|an|his|her|their|our|this|that)\b)",
        ),
        _rule(
            "ignore_the_above",
            "instruction_override",
            _alternation(OVERRIDE_VERBS)
            + r"(?:\W+(?:all|everything|the|that|what|text|words|is|was|written|said|i|you))*\W+"
            + _alternation(ABOVE)
            + r"(?!\W*(?:table|figure|chart|image|example|code|list)s?\b)",
        ),
        _rule(
            "ignore_the_request",
            "instruction_override",
            r"(?:ignore|disregard)\W+(?:the\W+)?(?:user'?s?\W+)?(?:question|request|query|task)"
            r"\W+(?:you|and|that)\b",
        ),
    ]


def _extraction_rules() -> list[Rule]:
    return [
        _rule(
            "your_system_prompt",
            "prompt_extraction",
            _alternation(POSSESSIVES, stem=False)
            + _gap(2)
            + _alternation(PROMPT_ADJECTIVES)
            + r"[\W_]*"
            + _alternation(PROMPT_NOUNS),
        ),
        _rule(
            "repeat_text_above",
            "prompt_extraction",
            r"(?:repeat|print|output|show|reveal|display|quote|dump|write out|copy|echo|tell me|"
            r"summari[sz]e|translate)\b"
            + _gap(3)
            + r"(?:everything|all|the (?:text|words|lines?|instructions|content))\W+"
            + r"(?:above|before|prior|preceding|earlier)",
        ),
        _rule(
            "instructions_you_were_given",
            "prompt_extraction",
            r"(?:instructions?|rules|prompt|guidelines|directives)\W+(?:that\W+)?you\W+"
            r"(?:were|have been|'ve been|got|received|had)\W*(?:given|told|provided|programmed|"
            r"trained|received|before|at the start)?",
        ),
    ]


#: "Developer mode" on a phone, browser or console is a setting, not a persona.
_DEVICES = (
    r"(?:my|the|your|an?|this|android|ios|iphone|ipad|windows|chrome|firefox|pixel|samsung|"
    r"xiaomi|xbox|playstation|mac|macos|edge)\b"
)
DEVICE = rf"(?!\W+(?:on|in|for|of)\W+{_DEVICES})"
AFTER_ON = rf"(?!\W+{_DEVICES})"


def _persona_rules() -> list[Rule]:
    return [
        _rule(
            "do_anything_now",
            "jailbreak_persona",
            r"\bdo anything now\b|\b(?:enable|enabled|activate|activated|enter)\W+developer mode\b"
            + DEVICE
            + r"|\bdeveloper mode\W+(?:enabled|activated)\b"
            + DEVICE
            + r"|\bdeveloper mode\W+on\b"
            + AFTER_ON
            + r"|\byou are (?:now )?jailbroken\b"
            r"|\bstay in character\b",
        ),
        _rule(
            "you_are_dan",
            "jailbreak_persona",
            r"\b(?:you are|you're|tu es|eres|sei|jestes|ты|du bist)\W+(?:now\W+)?(?:dan|dude|stan)\b",
        ),
        _rule(
            "unrestricted_ai",
            "jailbreak_persona",
            _alternation(UNRESTRICTED) + _gap(1) + _alternation(AI_WORDS, stem=False),
        ),
        _rule(
            "disable_your_limits",
            "jailbreak_persona",
            r"\b(?:disable|deactivate|turn off|switch off|remove|lift|suspend|drop|bypass|"
            r"get rid of)\W+(?:all\W+)?(?:of\W+)?(?:your|ur)\W+(?:\w+\W+){0,2}?"
            + "".join(rf"(?<!\b{word} )" for word in TOOL_RULES.split())
            + r"(?:restrictions?|limitations?|limits|filters?|guardrails?|censorship|safety|"
            r"ethic\w*|moral\w*|guidelines?|content polic\w*|programming)\b",
        ),
        _rule(
            "ai_without_limits",
            "jailbreak_persona",
            r"(?:"
            + _alternation(AI_WORDS, stem=False)
            + "|"
            + _alternation(ANSWER_WORDS)
            + ")"
            + _gap(4)
            + _alternation(WITHOUT, stem=False)
            + _gap(2)
            + _alternation(LIMITS),
        ),
    ]


def _hidden_rules() -> list[Rule]:
    ai = r"(?:ai|llm|assistant|language model|chatbot|gpt|model|bot|agent)s?\b"
    return [
        _rule(
            "note_to_the_ai",
            "hidden_instruction",
            r"\b(?:note|message|instructions?|attention|important)\W+(?:\w+\W+){0,2}?"
            # addressed to the AI reading it ("to the AI", "for any AI"), not about "a bot"
            r"(?:to|for)\W+(?:the\W+|all\W+|any\W+)?(?!an?\W)(?:\w+\W+)?" + ai,
        ),
        _rule(
            "if_you_are_an_ai",
            "hidden_instruction",
            r"\bif you are an?\W+(?:\w+\W+)?" + ai + r"|\b" + ai + r"\W+(?:\w+\W+){0,2}?"
            r"(?:(?:reading|processing|summari[sz]ing) this\b"
            r"|when you (?:process|read|summari[sz]e|see) (?:this|these)\b)",
        ),
        _rule(
            "fake_authority",
            "hidden_instruction",
            r"\b(?:system|admin|administrator|developer|root)\W+(?:override|update|command|notice)\b"
            r"|\b(?:new|additional|further|updated) (?:instructions?|statement|task|order|command|"
            r"rules|directive|objective)\b\s*(?:[:\-\u2013]|from\b)"
            r"|\bneue (?:anweisung|aufgabe|instruktion|regel)\w*\s*[:\-\u2013]",
        ),
        _rule(
            "interruption",
            "hidden_instruction",
            # "attention - stop -", "stop: write ...": a break that starts a new order
            r"\b(?:attention|achtung|atencion|attenzione|uwaga)\s*[:\-\u2013!]+\s*(?:stop|stopp|halt)\b"
            r"|\b(?:stop|stopp)\s*[:\-\u2013!]+\s*(?:write|say|print|tell|answer|ignore|forget|"
            r"schreib\w*|sag\w*|antworte\w*|vergiss)\b",
        ),
        _rule(
            "injected_markup",
            "hidden_instruction",
            r"<\s*/?\s*(?:instructions?|system|sys|im_start|admin)\s*>|\[\s*(?:system|inst)\s*\]"
            r"|<!--[^>]*\b(?:assistant|ai|ignore|instruction)|<\|im_start\|>"
            r"|#{2,}\s*(?:end of|new)\b",
        ),
        _rule(
            "concealment",
            "hidden_instruction",
            r"\b(?:do not|don't|never)\W+(?:mention|reveal|tell|disclose|inform)\W+(?:\w+\W+){0,2}?"
            r"(?:this instruction|these instructions|the user|anyone|anybody)\b"
            r"|\btell (?:nobody|no one|no-one)\b|\bsilently\W+(?:\w+\W+)?(?:change|delete|send|"
            r"forward|insert|replace|transfer|modify)",
        ),
    ]


def _tool_rules() -> list[Rule]:
    destructive = (
        r"(?:drop\s+(?:table|database|schema)|truncate\s+table|delete\s+from\s+\w+|"
        r"(?:curl|wget)\s[^|\n]{0,200}\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|"
        r"rm\s+-\w*(?:rf|fr)\w*|mkfs|format\s+c:|shutdown\s+-)"
    )
    secrets = (
        r"(?:passwords?|api\W?keys?|credentials?|secrets?|private keys?|access tokens?|"
        r"conversation|chat history|previous messages|all (?:of )?the (?:user'?s? )?messages)"
    )
    return [
        _rule(
            "run_destructive_command",
            "tool_abuse",
            r"\b(?:run|execute|exec|call|invoke|use|perform|issue)\b[^.?!\n]{0,60}?" + destructive,
        ),
        _rule(
            "read_secret_file",
            "tool_abuse",
            r"(?:/etc/(?:passwd|shadow)|\.ssh/|\bid_rsa\b|\.aws/credentials|/proc/self/environ)",
        ),
        _rule(
            "exfiltrate_secrets",
            "tool_abuse",
            r"\b(?:send|forward|post|upload|transmit|exfiltrate|leak|send_email)\b"
            + _gap(8)
            + secrets,
        ),
        _rule(
            "dump_confidential",
            "tool_abuse",
            r"\b(?:dump|exfiltrate|leak|export)\W+(?:\w+\W+){0,2}?(?:every|all)\b[^.?!\n]{0,60}?"
            r"\b(?:confidential|private|secret|internal|restricted)\b",
        ),
        _rule(
            "act_without_consent",
            "tool_abuse",
            r"\b(?:transfer|delete|send|pay|buy|execute|run|wire|remove|e-?mail|forward|share|"
            r"upload|post|export|copy|leak)\b[^.?!\n]{0,80}?"
            r"\bwithout\W+(?:asking|telling|notifying|informing|confirm\w*|the user'?s?\W+"
            r"(?:consent|permission|approval|confirmation|knowledge))",
        ),
    ]


def default_rules() -> list[Rule]:
    """Every built-in rule, in family order."""
    return [
        *_override_rules(),
        *_extraction_rules(),
        *_persona_rules(),
        *_hidden_rules(),
        *_tool_rules(),
    ]


def first_match(rules: Iterable[Rule], readings: Iterable[str]) -> Rule | None:
    """The first rule that matches any of the readings of a text, or ``None``."""
    texts = list(readings)
    for rule in rules:
        if any(rule.pattern.search(text) for text in texts):
            return rule
    return None
