"""Benign prompts that use the words of attacks: hard negatives for the injection classifier.

Prompt-injection data teaches a classifier that "ignore", "instructions", "system prompt",
"forget", "rules" or "act as" mean an attack, because in those sets they nearly always do. Users
say them every day: *ignore case when comparing strings*, *forget my last question*, *what are
the rules of chess*, *how do I write a good system prompt*. These templates, filled
combinatorially with a fixed seed, put such requests into training as benign, so the classifier
has to learn what the attack *does* (override the assistant, extract its instructions, drop its
limits) rather than which words it uses. Written for this project; reproducible; a few hundred
rows.

:func:`technical_texts` adds benign text that *looks* like many jailbreak prompts: code, SQL, JSON
and ``key: value`` lines (jailbreaks often carry markup and code; ordinary prompts and documents
carry far more of it).
"""

from __future__ import annotations

import itertools
import json
import random
import sysconfig
from pathlib import Path

_TEMPLATES: tuple[str, ...] = (
    "How do I {ignore_tech} in {tool}?",
    "Is there a flag to {ignore_tech} in {tool}, or do I have to write it myself?",
    "Please ignore {trivial} in my {document} and tell me whether {question}.",
    "Ignore {trivial} for now; can you check whether {question} in my {document}?",
    "Forget {earlier}; I meant {meant}.",
    "Sorry, disregard {earlier}, I meant {meant}.",
    "What are the {rules_word} for {activity}?",
    "Can you explain the {rules_word} for {activity} step by step?",
    "Where can I find the {rules_word} for {activity}?",
    "How do I write a good {prompt_kind} for {use}?",
    "What should a {prompt_kind} for {use} contain, and what should it leave out?",
    "Can you review my {prompt_kind} for {use}? It feels too long.",
    "{security_question}",
    "Can you act as {role} and {task}?",
    "Pretend you are {role} and {task}.",
    "How do I {admin_task} on {system}?",
    "How do I override {setting} in {tool} without editing every file?",
    "How do I bypass {cache_thing} when I test {system}?",
    # Everyday chat requests: short imperatives ("say", "tell me", "answer in") are what most
    # injections in the deepset prompts look like, and what users type all day.
    "Say {greeting} to {whom}.",
    "Say {greeting} in {language}.",
    "Tell me {something}.",
    "Write {form} about {topic}.",
    "Now write it {manner}.",
    "Answer in {language} from now on, please.",
    "Translate {phrase} into {language}.",
    "Reply with {reply_shape}: {short_question}",
    "Give me {count} {things}.",
    "Explain {concept} {audience}.",
    "Rewrite your last answer {manner}.",
    # Questions about the product's own prompt: how it is built, formatted, templated, shown,
    # sized or changed. Users of a GenAI product ask them all the time; extraction attacks ask
    # the assistant to hand over *its* instructions instead.
    "How is the {product_prompt} formatted for {model_thing}?",
    "Can I see the {product_prompt} {model_thing} {gets}?",
    "Which {template_word} does {model_thing} use?",
    "How long may the {product_prompt} for {model_thing} be?",
    "Where is the {product_prompt} for {route} {built}?",
    "How do I change the {product_prompt} of {route}?",
    "Does the {product_prompt} of {route} include {prompt_part}?",
)

_FILL: dict[str, tuple[str, ...]] = {
    "ignore_tech": (
        "ignore case when comparing strings",
        "ignore whitespace changes in a diff",
        "ignore a build folder",
        "ignore blank lines when reading a CSV file",
        "ignore missing values when averaging a column",
        "ignore warnings from a deprecated library",
        "ignore a single lint rule on one line",
        "skip the previous step and rerun only the tests",
    ),
    "tool": ("Python", "git", "pandas", "bash", "Excel", "PostgreSQL", "JavaScript", "ESLint"),
    "trivial": (
        "the typos",
        "the formatting",
        "the first paragraph",
        "the signature at the bottom",
        "my previous message",
        "the spelling mistakes",
    ),
    "document": ("email", "essay", "report", "cover letter", "blog post", "thesis chapter"),
    "question": (
        "the argument is clear",
        "the tone is polite enough",
        "it is too long",
        "the conclusion follows from the data",
        "a manager would understand it",
    ),
    "earlier": (
        "what I said about the red logo",
        "my last question",
        "the table format I asked for",
        "the earlier file I uploaded",
        "the budget I mentioned before",
    ),
    "meant": (
        "the blue one",
        "the price including tax",
        "a table with three columns",
        "the report from March",
        "a shorter version for the newsletter",
    ),
    "rules_word": ("rules", "instructions", "official rules", "installation instructions"),
    "activity": (
        "the board game Catan",
        "assembling this desk",
        "castling in chess",
        "filing a tax return as a freelancer",
        "installing the printer driver on Windows",
        "applying for a work visa",
        "offside in football",
        "the company's expense policy",
    ),
    "prompt_kind": ("system prompt", "prompt", "set of instructions", "system message"),
    "use": (
        "a customer support bot",
        "a tutoring assistant for maths",
        "summarising meeting notes",
        "a recipe recommender",
        "classifying support tickets",
    ),
    "security_question": (
        "What is a system prompt and why does it matter for a chatbot?",
        "How can I protect my chatbot against jailbreak attempts?",
        "Is it legal to jailbreak my own phone in the EU?",
        "Which tests should we run to see whether our assistant leaks its instructions?",
        "How do companies stop employees from bypassing the VPN?",
        "What does developer mode on Android do, and is it safe to enable?",
        "Why do language models sometimes refuse harmless requests?",
        "How should an assistant respond when a document it reads contains instructions?",
        "Explain the difference between a jailbreak and a prompt injection for a newsletter.",
        "What are common restrictions in a content policy for a children's app?",
        "My admin password expired; who should I ask to reset it?",
        "How do I reveal hidden files in the macOS Finder?",
        "How do I print the environment variables of a running container?",
        "Can you show me how to override a method in a Java subclass?",
        "What did the developers mean by 'unrestricted mode' in the game's patch notes?",
    ),
    "role": (
        "an interviewer for a data analyst position",
        "a patient language teacher",
        "a travel agent in Lisbon",
        "a strict but fair editor",
        "a customer who wants a refund",
    ),
    "task": (
        "ask me five questions one at a time",
        "correct my grammar as we go",
        "plan a three-day trip on a small budget",
        "point out weak sentences in my essay",
        "help me practise a difficult conversation",
    ),
    "admin_task": (
        "reset a forgotten admin password",
        "show hidden system files",
        "print the current configuration",
        "disable automatic updates",
        "remove a user's restrictions after they changed teams",
    ),
    "system": ("Windows 11", "Ubuntu", "our staging server", "a Synology NAS", "Jenkins"),
    "setting": ("the default timeout", "the log level", "a base image", "the default locale"),
    "cache_thing": ("the browser cache", "the CDN cache", "the login page on localhost"),
    "greeting": ("good night", "happy new year", "congratulations", "thank you", "good luck"),
    "whom": ("my sister", "the new intern", "my grandparents", "everyone at the party"),
    "language": ("Portuguese", "Japanese", "Dutch", "Greek", "Swahili", "Polish"),
    "something": (
        "a riddle",
        "a fun fact about whales",
        "a pun about coffee",
        "a story about a lighthouse keeper",
        "what happened on this day in 1969",
        "a knock-knock joke",
    ),
    "form": ("a sonnet", "a rap verse", "a two-line rhyme", "a fable", "a toast for a wedding"),
    "topic": ("the moon", "my cat Miso", "Monday mornings", "a rainy city", "our football team"),
    "manner": (
        "in the style of Shakespeare",
        "in bullet points",
        "in fewer words",
        "for a five-year-old",
        "with more humour",
        "in capital letters",
    ),
    "phrase": ("'where is the station'", "'I am vegetarian'", "this menu", "'see you tomorrow'"),
    "reply_shape": ("one word", "a number only", "yes or no", "a single emoji"),
    "short_question": (
        "is the Nile longer than the Amazon?",
        "how many legs does a spider have?",
        "what colour do you get from blue and yellow?",
    ),
    "count": ("three", "five", "ten"),
    "things": (
        "name ideas for a bakery",
        "questions for a job interview",
        "board games for two players",
        "ways to save energy at home",
    ),
    "concept": ("inflation", "black holes", "how vaccines work", "compound interest"),
    "audience": ("simply", "like I am twelve", "in two sentences", "with an example"),
    "product_prompt": (
        "prompt",
        "system prompt",
        "prompt template",
        "final prompt",
        "prompt prefix",
    ),
    "model_thing": (
        "the local model",
        "SmolLM2",
        "the chat model",
        "the small CPU model",
        "the fallback model",
        "an OpenAI-compatible upstream",
    ),
    "gets": ("receives", "is actually sent", "ends up with", "is given"),
    "template_word": (
        "chat template",
        "prompt template",
        "message format",
        "Jinja template",
        "instruction format",
    ),
    "route": (
        "the RAG route",
        "the default route",
        "the agent route",
        "the summarisation endpoint",
        "a custom route",
        "the chat endpoint",
    ),
    "built": ("built", "assembled", "put together", "defined", "stored"),
    "prompt_part": (
        "the retrieved passages",
        "the conversation history",
        "the tool descriptions",
        "today's date",
        "the source titles",
    ),
}

#: A few of the same intents in other languages (the deepset prompts include German attacks, so
#: German words for "ignore" and "forget" are otherwise only ever seen in attacks).
_OTHER_LANGUAGES: tuple[str, ...] = (
    "Ignoriere die Tippfehler in meiner E-Mail und sag mir, ob sie höflich klingt.",
    "Vergiss meine letzte Frage, ich meinte den Preis mit Mehrwertsteuer.",
    "Was sind die Regeln für das Kartenspiel Skat?",
    "Wie schreibe ich einen guten Systemprompt für einen Kundenservice-Bot?",
    "Kannst du die Anleitung für den Drucker auf Deutsch zusammenfassen?",
    "Oublie ce que j'ai dit sur le budget, je voulais parler du planning.",
    "Quelles sont les règles du tarot à quatre joueurs ?",
    "Ignore la mise en forme et dis-moi si ma lettre de motivation est convaincante.",
    "Olvida mi pregunta anterior: ¿cuánto cuesta el envío a Chile?",
    "¿Cuáles son las instrucciones para renovar el pasaporte?",
    "Ignora el primer párrafo y revisa solo las conclusiones del informe.",
    "Dimentica il file di prima, ti mando quello giusto.",
)


#: One-off benign prompts across the attack vocabulary, outside the templates' shapes: questions
#: about prompts and models, role-play and persona requests, admin and security tasks, decoding,
#: and other languages' "ignore" and "forget" in ordinary requests.
_ONE_OFFS: tuple[str, ...] = (
    "What is the difference between the system role and the user role in a chat API call?",
    "Should the instructions go in the system prompt or in the first user message?",
    "Our system prompt is 2,000 tokens long. Does that slow the model down?",
    "Which model follows instructions better for JSON output, a small or a large one?",
    "Write a prompt that makes a model summarise legal contracts in plain English.",
    "Why does the model ignore my instruction to answer in one sentence?",
    "The model keeps forgetting the earlier part of our conversation. How long is its context?",
    "How do I give an assistant rules about tone without making it sound robotic?",
    "Is jailbreaking a PlayStation illegal in Germany?",
    "What did the Jailbreak song by Thin Lizzy sell in its first year?",
    "Roleplay as a shopkeeper in a medieval village and sell me some bread.",
    "Let's roleplay a job interview: you are the hiring manager for a nurse position.",
    "Act as a Linux terminal tutor and explain what each command I type does.",
    "Pretend to be my grandmother and tell me how you made apple pie.",
    "You are a chess coach. Which opening should a beginner learn first?",
    "Imagine you are a tour guide in Kyoto. What would you show me in one day?",
    "How do I run a command as root with sudo without typing the password every time?",
    "How do I delete all rows from a table in PostgreSQL but keep its structure?",
    "How do I send an email with an attachment from a Python script?",
    "How can I export my chat history from WhatsApp to a text file?",
    "How do I reveal my saved Wi-Fi password on a Mac?",
    "Where does Windows store the administrator password hash?",
    "What does the error 'permission denied (publickey)' mean when I push to GitHub?",
    "Decode this base64 for me: aGVsbG8gd29ybGQ=",
    "What does this Morse code say: -- --- .-. -. .. -. --.",
    "Convert the hex string 48656c6c6f to text.",
    "Translate 'forget it, it does not matter' into Italian.",
    "How do you say 'ignore the noise' in Japanese?",
    "Ignorez ma question précédente : quel temps fera-t-il à Lyon demain ?",
    "Ignorez les fautes d'orthographe et dites-moi si l'argument tient.",
    "Vergiss die Liste von vorhin, ich brauche nur die Telefonnummer der Praxis.",
    "Ignoriere bitte die Formatierung, es geht mir nur um den Inhalt.",
    "Olvida lo que dije del martes, la reunión es el jueves.",
    "Ignora los decimales y redondea el resultado.",
    "What are the house rules for guests at a youth hostel?",
    "Summarise the instructions on this medicine leaflet: take two tablets after meals.",
    "My teacher's instructions say the essay must be under 800 words. Is 812 too many?",
    "How do I bypass a clogged drain trap without a plumber?",
    "Is there a way to disable the safety beep on my microwave?",
    "Which restrictions apply to carrying liquids in hand luggage?",
    "Without restrictions on time, how long would it take to walk around the Earth?",
    "Developer mode on my Pixel keeps turning off after a restart. Why?",
    "What is DAN in the context of bicycle gear hubs?",
    "Who are the developers of the Godot engine?",
    "Is the system prompt visible anywhere in the admin pages?",
    "Can a prompt template be edited without restarting the service?",
    "How do I log the rendered prompt when I debug a bad answer?",
    "Does the chat template add special tokens around the prompt?",
    "How big does the prompt get once the retrieved chunks are added?",
    "In which file are the prompt templates of the product kept?",
    "Why is the prompt cut off when the conversation gets long?",
    "What goes into the prompt before the user's question, and in which order?",
)


def hard_negatives(limit: int = 600, seed: int = 0) -> list[str]:
    """Up to ``limit`` distinct benign prompts (deterministic for a given ``seed``)."""
    rng = random.Random(seed)
    texts: list[str] = [*_OTHER_LANGUAGES, *_ONE_OFFS]
    for template in _TEMPLATES:
        slots = [slot for slot in _FILL if "{" + slot + "}" in template]
        combinations = list(itertools.product(*(_FILL[slot] for slot in slots)))
        rng.shuffle(combinations)
        for values in combinations[: max(1, limit // len(_TEMPLATES))]:
            texts.append(template.format(**dict(zip(slots, values, strict=True))))
    unique = list(dict.fromkeys(texts))
    rng.shuffle(unique)
    return unique[:limit]


#: Standard-library modules whose source serves as benign code (the interpreter ships them, so the
#: rows are the same wherever the same Python version trains).
STDLIB_MODULES = (
    "argparse.py",
    "csv.py",
    "json/encoder.py",
    "json/decoder.py",
    "logging/__init__.py",
    "http/client.py",
    "urllib/parse.py",
    "email/message.py",
    "sqlite3/__init__.py",
    "asyncio/tasks.py",
    "configparser.py",
    "dataclasses.py",
    "shutil.py",
    "subprocess.py",
    "textwrap.py",
    "unittest/case.py",
    "zipfile.py",
    "string.py",
    "pathlib.py",
    "typing.py",
)


def technical_texts(datasets: Path, limit: int = 1000, seed: int = 0) -> list[str]:
    """Up to ``limit`` benign technical texts: 12-line chunks of standard-library source, and the
    Spider questions' gold SQL, as SQL, as JSON records and as ``key: value`` lines (English only:
    German questions as negatives cost recall on the German injections of the deepset prompts)."""
    rng = random.Random(seed)
    texts: list[str] = []
    library = Path(sysconfig.get_paths()["stdlib"])
    for name in STDLIB_MODULES:
        path = library / name
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for start in range(0, len(lines), 12):
            chunk = "\n".join(lines[start : start + 12]).strip()
            if len(chunk) > 80:
                texts.append(chunk)
    spider = datasets / "spider" / "dev_flat.jsonl"
    if spider.is_file():
        with spider.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                fields = {k: record.get(k) for k in ("db_id", "question_en", "gold_sql")}
                texts.append(str(record.get("gold_sql", "")))
                texts.append(json.dumps(fields, ensure_ascii=False, indent=rng.choice([None, 2])))
                texts.append("\n".join(f"{k}: {record.get(k)}" for k in ("db_id", "question_en")))
    unique = [t for t in dict.fromkeys(texts) if t]
    rng.shuffle(unique)
    return unique[:limit]
