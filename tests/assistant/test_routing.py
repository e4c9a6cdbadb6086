"""The auto-routing heuristic on a labelled set of questions: agent (data about the shop database,
arithmetic) against everything else (questions about the product's documentation, small talk and
general knowledge). The accuracy is printed (``pytest -s``) and guarded."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_factory.agents.sql import read_schema
from genai_factory.assistant.routing import DataTerms, agent_score, wants_agent

SHOP_DB = Path(__file__).parents[2] / "examples" / "shop.db"

AGENT = [
    "How many customers are there?",
    "How many orders were placed in August 2024?",
    "What is the total revenue from delivered orders?",
    "Which customer spent the most?",
    "List all products in the accessories category.",
    "What is the average price of our products?",
    "How many orders are still waiting to ship?",
    "Who are our customers in Germany?",
    "What's the most expensive product we sell?",
    "Show me the orders of Grace Hopper.",
    "What is 17 * 23?",
    "Compute (89 + 25.5) * 2",
    "What is 15% of 240?",
    "How much is 1024 divided by 16?",
    "What is the sum of 12.5, 30 and 7.25?",
    "Count the cancelled orders.",
    "Which products cost more than 100?",
    "What is the email of Hedy Lamarr?",
    "How many units of the wireless mouse were sold?",
    "SELECT name FROM customers WHERE country = 'US'",
    "Run a SQL query to find the number of products.",
    "What was the biggest order by value?",
    "How many customers signed up in 2024?",
    "What is the square root of 144?",
    "Which country do most of our customers come from?",
    "How many products are in the electronics category?",
    "What is the price of the wireless mouse?",
    "Which orders were shipped but not delivered yet?",
    "List the customers who signed up in March.",
    "What is the average order quantity?",
    "Which product sold the most units?",
    "How many orders has Ada Lovelace placed?",
    "What was our revenue in 2024?",
    "What is 2 to the power of 10?",
    "Calculate 3.5 * 12",
    "What is 100 minus 37?",
    "Which customers have cancelled orders?",
    "What is the total quantity of items ordered?",
    "How many customers come from France?",
    "What's the cheapest product in the accessories category?",
]

RAG = [
    "How do I configure a fallback model?",
    "How do I change the port of the service?",
    "What does the circuit breaker do?",
    "How do I ingest my own documents?",
    "Which environment variables does GenAI Factory read?",
    "What HTTP status code do I get when the model is not ready?",
    "How do I use an OpenAI-compatible server instead of llama.cpp?",
    "How are citations returned in the API response?",
    "What is the default embedding model?",
    "How do I run the tests?",
    "How does the retry policy work?",
    "How many retries does the model wrapper make by default?",
    "How do I count tokens and cost for a request?",
    "What is the chunk size used when indexing documents?",
    "How do I search the knowledge base from the command line?",
    "What is the difference between the chat and rag modes?",
    "Where is the data directory stored?",
    "How do I set an API key for a remote model?",
    "What does the /readyz endpoint return?",
    "How can I add a price table for a model?",
    "Which vector database server can replace the embedded vector store?",
    "Which port does the service listen on?",
    "What does the circuit breaker do?",
    "Which database does the gateway use for keys and the spend ledger?",
    "How many requests per minute does a key allow by default?",
    "Which model does the service use by default?",
    "What is the maximum number of tokens an answer may have?",
    "Which guards run on the model's answer?",
    "How many versions of the index are kept?",
    "Where are the order of guards and their actions configured?",
    "What is the status of a circuit breaker after five failures?",
    "Can I store interactions in PostgreSQL instead of SQLite?",
    "Which metrics does the service export to Prometheus?",
    "What happens when a customer's API key runs out of budget?",
    "How many tokens does a chunk hold?",
    "Which SQL databases can hold the interaction log?",
    "What is the price of a request to the embedded model?",
    "What is the price of the enterprise licence?",
    "How much does a support subscription cost per year?",
    "Which country's data protection rules does the PII guard follow?",
    "What does the champion alias mean in the registry?",
    "How many customers can use one API key?",
    "Which products does GenAI Factory integrate with for scale-out?",
    "What is the total cost shown on the operations page?",
    "Who can create admin keys?",
    "What is the default rate limit per key?",
    "Which vector store is the default?",
]

CHAT = [
    "Hello!",
    "Tell me a joke.",
    "Write a haiku about autumn.",
    "Thanks, that was helpful.",
    "What is the capital of France?",
    'Translate "good morning" into Spanish.',
    "Who wrote Pride and Prejudice?",
    "Give me three tips for a job interview.",
    "How are you today?",
    "What's a good name for a cat?",
    "Summarize the plot of Hamlet in one sentence.",
    "What is photosynthesis?",
    "Can you recommend a book about history?",
    "How many legs does a spider have?",
    "What day comes after Monday?",
]

#: Measured on this set of 100: 99 % with the schema-aware score (the keyword score before it:
#: 91 %, 9 wrong, 3 of them guide questions sent to the agent); the test fails below this.
MIN_ACCURACY = 0.95


@pytest.fixture(scope="module")
def shop_terms() -> DataTerms:
    schema = read_schema(str(SHOP_DB))
    columns = [c.name for t in schema.tables for c in t.columns]
    return DataTerms.from_names([t.name for t in schema.tables], columns)


def test_accuracy_on_the_labelled_set(shop_terms: DataTerms) -> None:
    labelled = [(q, True) for q in AGENT] + [(q, False) for q in RAG + CHAT]
    wrong = [
        (q, agent_score(q, shop_terms))
        for q, label in labelled
        if wants_agent(q, shop_terms) != label
    ]
    accuracy = 1 - len(wrong) / len(labelled)
    agent_recall = sum(wants_agent(q, shop_terms) for q in AGENT) / len(AGENT)
    others_kept = sum(not wants_agent(q, shop_terms) for q in RAG + CHAT) / len(RAG + CHAT)
    print(
        f"\nrouting accuracy {accuracy:.1%} on {len(labelled)} questions "
        f"(agent recall {agent_recall:.1%}, non-agent kept {others_kept:.1%}); wrong: {wrong}"
    )
    assert accuracy >= MIN_ACCURACY, wrong


def test_features_are_explained(shop_terms: DataTerms) -> None:
    score, fired = agent_score("How many orders were cancelled?", shop_terms)
    assert fired == ["table", "data_word"] and score == 3
    score, fired = agent_score("How do I configure the number of retries?", shop_terms)
    assert "how_to" in fired and score < 0
    assert agent_score("What is 6 * 7?")[1] == ["arithmetic"]


def test_a_document_question_with_data_words_stays_with_rag(shop_terms: DataTerms) -> None:
    question = "Which vector database server can replace the embedded vector store?"
    score, fired = agent_score(question, shop_terms)
    assert not wants_agent(question, shop_terms) and "data_word" not in fired, (score, fired)
    # data words need the schema: without a table or column named they do not count
    assert agent_score("Which one is the most popular?", shop_terms) == (0, [])


def test_a_column_lookup_by_name_reaches_the_agent(shop_terms: DataTerms) -> None:
    score, fired = agent_score("What is the email of Hedy Lamarr?", shop_terms)
    assert fired == ["column", "lookup"] and score == 3


def test_without_data_terms_only_arithmetic_and_sql_reach_the_agent() -> None:
    assert wants_agent("What is 2 + 2?")
    assert wants_agent("SELECT count(*) FROM orders")
    assert not wants_agent("How many orders were cancelled?")


def test_terms_cover_plurals_and_skip_generic_columns() -> None:
    terms = DataTerms.from_names(["orders", "order_items"], ["id", "name", "unit_price"])
    assert {"orders", "order", "items", "item", "order_items"} <= terms.tables
    assert {"unit_price", "price", "prices"} <= terms.columns
    assert not {"id", "name"} & terms.columns
