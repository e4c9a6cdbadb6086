"""The SQL grammar for small models, the known values it is built with, and that every schema the
agent constrains llama.cpp with compiles into a grammar llama.cpp accepts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genai_factory.agents.actions import AgentAction, action_schema, text_schema
from genai_factory.agents.assembly import action_format_for
from genai_factory.agents.calculator import CalculatorTool
from genai_factory.agents.knowledge import KnowledgeSearchTool
from genai_factory.agents.preload import preload_database
from genai_factory.agents.sql import execute_select, read_schema
from genai_factory.agents.sql_grammar import (
    asks_count,
    asks_when,
    known_values,
    literal_kind,
    select_pattern,
    sql_input_schema,
    tables_named,
    values_query,
)
from genai_factory.agents.sql_results import ColumnInfo
from genai_factory.agents.staged import EXPRESSION_PATTERN, StagedJsonFormat, pick_sql_example
from genai_factory.agents.tools import SqlQueryTool, SqlSchemaTool
from genai_factory.config import Settings
from genai_factory.messages import ChatOptions
from genai_factory.testing.fakes import FakeEmbedder

ACCEPTED = [
    "SELECT count(*) FROM customers",
    "SELECT count(*) FROM orders WHERE status = 'cancelled'",
    "SELECT name, price FROM products ORDER BY price DESC LIMIT 1",
    "SELECT avg(price) FROM products",
    "SELECT count(DISTINCT category) FROM products",
    "SELECT sum(quantity) FROM order_items WHERE unit_price > 30.5",
    "SELECT country, count(*) FROM customers GROUP BY country ORDER BY count(*) DESC",
    "SELECT email FROM customers WHERE name = 'Grace Hopper'",
    "SELECT name FROM customers WHERE signed_up < '2024-04-01'",
    "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
    "WHERE customers.name = 'Ada Lovelace'",
    "SELECT count(*) FROM orders WHERE customer_id = 3",  # a foreign key with a number
    "SELECT count(*) FROM orders WHERE ordered_at >= '2024-03-01'",
]
REFUSED = [
    "DELETE FROM customers",
    "SELECT count(*) FROM books",  # no such table
    "SELECT price FROM customers",  # no such column there
    "SELECT count(*) FROM orders WHERE status = 'Cancelled'",  # not a known value
    "SELECT count(*) FROM orders WHERE status = 'x' AND id = 1",  # one condition only
    "SELECT * FROM customers",
    "SELECT count(*) FROM customers; DROP TABLE customers",
    'SELECT name FROM customers WHERE name = "x"',
    "select count(*) from customers",
    "SELECT name FROM customers WHERE id = 10",  # a surrogate key is never tested
    # each column is compared with a literal of its own kind
    "SELECT count(*) FROM orders WHERE customer_id = 'Grace Hopper'",
    "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
    "WHERE orders.customer_id = 'Ada Lovelace'",
    "SELECT sum(quantity) FROM order_items WHERE product_id = 'Desk lamp'",
    "SELECT count(*) FROM orders WHERE ordered_at = 'Shipped'",
    "SELECT name FROM products WHERE price < 'cheap'",
    "SELECT email FROM customers WHERE name = 5",
]


@pytest.fixture(scope="module")
def shop() -> Path:
    return Path(__file__).parents[2] / "examples" / "shop.db"


@pytest.fixture(scope="module")
def pattern(shop: Path) -> re.Pattern[str]:
    schema = read_schema(str(shop))
    sql = values_query(schema)
    assert sql is not None
    found = select_pattern(schema, known_values(execute_select(str(shop), sql)))
    assert found is not None
    return re.compile(found)


@pytest.mark.parametrize("sql", ACCEPTED)
def test_grammar_accepts_simple_selects_on_real_names(pattern: re.Pattern[str], sql: str) -> None:
    assert pattern.fullmatch(sql)


@pytest.mark.parametrize("sql", REFUSED)
def test_grammar_refuses_everything_else(pattern: re.Pattern[str], sql: str) -> None:
    assert not pattern.fullmatch(sql)


@pytest.mark.parametrize(
    ("question", "sql", "accepted"),
    [
        (
            "How many orders has Grace Hopper placed?",
            "SELECT count(*) FROM orders JOIN customers "
            "ON customers.id = orders.customer_id WHERE customers.name = 'Grace Hopper'",
            True,
        ),
        (
            "How many orders has Grace Hopper placed?",
            "SELECT count(*) FROM orders WHERE customer_id = 1",
            False,
        ),  # a made-up key
        (
            "How many orders were shipped?",
            "SELECT count(*) FROM orders WHERE status = 'shipped'",
            True,
        ),  # a known value needs no copy
        (
            "How many orders were shipped?",
            "SELECT count(*) FROM orders WHERE ordered_at = '2024-03-01'",
            False,
        ),
        (
            "How many orders since 2024-03-01?",
            "SELECT count(*) FROM orders WHERE ordered_at >= '2024-03-01'",
            True,
        ),
        (
            "How many products cost more than 100?",
            "SELECT count(*) FROM products WHERE price > 100",
            True,
        ),
        (
            "How many products cost more than 100?",
            "SELECT count(*) FROM products WHERE price > 50",
            False,
        ),
        ("What is the cheapest product?", "SELECT name FROM products WHERE price < 1", False),
        (
            "How many orders did Ada Lovelace place?",
            "SELECT count(*) FROM orders WHERE status = 'placed'",  # a value it does not name
            False,
        ),
        (
            "How many orders did Ada Lovelace place?",
            "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
            "WHERE customers.name = 'Ada Lovelace'",
            True,
        ),
        (
            "What is the total quantity of all order items?",
            "SELECT sum(order_items.quantity) FROM order_items JOIN products "
            "ON products.id = order_items.product_id WHERE products.name = 'Laptop stand'",
            False,
        ),
        (
            "How many customers are from the us?",  # any case; written as the database has it
            "SELECT count(*) FROM customers WHERE country = 'US'",
            True,
        ),
        ("What is the cheapest product?", "SELECT name FROM products ORDER BY price LIMIT 1", True),
        # a lone count only when the question counts
        (
            "How much does the Laptop stand cost?",
            "SELECT count(*) FROM products WHERE name = 'Laptop stand'",
            False,
        ),
        (
            "How much does the Laptop stand cost?",
            "SELECT count(name) FROM products WHERE name = 'Laptop stand'",
            False,
        ),
        (
            "How much does the Laptop stand cost?",
            "SELECT price FROM products WHERE name = 'Laptop stand'",
            True,
        ),
        (
            "Which status is the most common?",  # a count beside its group is still allowed
            "SELECT status, count(*) FROM orders GROUP BY status ORDER BY count(*) DESC LIMIT 1",
            True,
        ),
        # the column whose one value the question names is not what it asks for
        (
            "When did Hedy Lamarr sign up?",
            "SELECT name FROM customers WHERE name = 'Hedy Lamarr'",
            False,
        ),
        (
            "When did Hedy Lamarr sign up?",
            "SELECT signed_up FROM customers WHERE name = 'Hedy Lamarr'",
            True,
        ),
        (
            "When did Hedy Lamarr sign up?",  # "When": a date
            "SELECT country FROM customers WHERE name = 'Hedy Lamarr'",
            False,
        ),
        (
            "When was the Desk lamp ordered?",  # a table without a date shows any column
            "SELECT price FROM products WHERE name = 'Desk lamp'",
            True,
        ),
        # a value the question names is read from its table
        ("Where is Alan Turing from?", "SELECT name FROM products WHERE category = 'audio'", False),
        ("Where is Alan Turing from?", "SELECT country FROM customers", True),
        (
            "Where is Alan Turing from?",
            "SELECT orders.status FROM orders JOIN customers ON customers.id = orders.customer_id "
            "WHERE customers.name = 'Alan Turing'",
            True,
        ),
        # and so is every table it names, through a join when it names two
        (
            "How many orders has Grace Hopper placed?",
            "SELECT count(*) FROM customers WHERE name = 'Grace Hopper'",
            False,
        ),
        ("How many products do we sell?", "SELECT count(*) FROM customers", False),
        (
            "How many orders have ordered at before 2024-07-01?",  # "at" does not name 'AT'
            "SELECT count(*) FROM orders WHERE ordered_at < '2024-07-01'",
            True,
        ),
        # the product of two quantities, as a revenue is
        (
            "What is the total revenue of all delivered orders?",
            "SELECT sum(order_items.quantity * order_items.unit_price) FROM order_items "
            "JOIN orders ON orders.id = order_items.order_id WHERE orders.status = 'delivered'",
            True,
        ),
        (
            "What is the total revenue of all delivered orders?",
            "SELECT sum(order_items.order_id * order_items.unit_price) FROM order_items "
            "JOIN orders ON orders.id = order_items.order_id WHERE orders.status = 'delivered'",
            False,
        ),  # a key is no quantity
        (
            "What is the total revenue of all delivered orders?",  # names no quantity
            "SELECT sum(order_items.quantity) FROM order_items "
            "JOIN orders ON orders.id = order_items.order_id WHERE orders.status = 'delivered'",
            False,
        ),
        (
            "What is the total quantity of all delivered orders?",  # names one
            "SELECT sum(order_items.quantity) FROM order_items "
            "JOIN orders ON orders.id = order_items.order_id WHERE orders.status = 'delivered'",
            True,
        ),
        (
            "What is the highest price of an order item?",  # "price" names unit_price
            "SELECT max(unit_price) FROM order_items",
            True,
        ),
        ("What is the average product price?", "SELECT avg(price) FROM products", True),
    ],
)
def test_with_the_question_literals_are_copied_from_it(
    shop: Path, question: str, sql: str, accepted: bool
) -> None:
    schema = read_schema(str(shop))
    values = known_values(execute_select(str(shop), values_query(schema) or ""))
    found = select_pattern(schema, values, question)
    assert found is not None
    assert bool(re.fullmatch(found, sql)) is accepted


@pytest.mark.parametrize(
    ("sql", "accepted"),
    [
        (
            "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
            "WHERE customers.name = 'Grace Hopper'",
            True,
        ),
        (
            "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
            "WHERE customers.name = 'Ada Lovelace'",
            False,
        ),
        (
            "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
            "WHERE customers.name LIKE '%Hopper%'",
            True,
        ),
        (
            "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.customer_id "
            "WHERE customers.name LIKE '%Ada%'",
            False,
        ),
    ],
)
def test_free_text_is_copied_from_the_question(shop: Path, sql: str, accepted: bool) -> None:
    question = "How many orders has Grace Hopper placed?"
    found = select_pattern(read_schema(str(shop)), None, question)  # no known values
    assert found is not None
    assert bool(re.fullmatch(found, sql)) is accepted


@pytest.mark.parametrize(
    ("question", "counting"),
    [
        ("How many orders were shipped?", True),
        ("What is the number of customers?", True),
        ("Count the orders whose status is placed.", True),
        ("Are there cancelled orders?", True),
        ("How much does the Laptop stand cost?", False),
        ("When did Hedy Lamarr sign up?", False),
        ("What is the total quantity of all order items?", False),
    ],
)
def test_a_count_is_asked_for_in_words(question: str, counting: bool) -> None:
    assert asks_count(question) is counting


@pytest.mark.parametrize(
    ("question", "when"),
    [
        ("When did Hedy Lamarr sign up?", True),
        ("Since when is Grace Hopper a customer?", True),
        ("How many orders were placed when the shop opened?", False),
        ("Where is Alan Turing from?", False),
    ],
)
def test_a_date_is_asked_for_with_when(question: str, when: bool) -> None:
    assert asks_when(question) is when


@pytest.mark.parametrize(
    ("question", "tables"),
    [
        ("How many customers are there?", {"customers"}),
        ("Which customer signed up first?", {"customers"}),
        ("What is the total quantity of all order items?", {"order_items"}),  # not orders
        ("How many orders and products are there?", {"orders", "products"}),
        ("When did Hedy Lamarr sign up?", set()),
        ("How many orders were ordered in 2024?", {"orders"}),  # "ordered" names nothing
    ],
)
def test_the_tables_a_question_names(shop: Path, question: str, tables: set[str]) -> None:
    assert tables_named(read_schema(str(shop)), question) == tables


@pytest.mark.parametrize(
    ("name", "declared", "references", "kind"),
    [
        ("customer_id", "INTEGER", "customers.id", "number"),
        ("customer_id", "", "customers.id", "number"),  # an undeclared foreign key
        ("order_id", "", None, "number"),
        ("price", "REAL", None, "number"),
        ("total", "numeric(10,2)", None, "number"),
        ("count", "bigint", None, "number"),
        ("name", "TEXT", None, "text"),
        ("code", "character varying", "countries.code", "text"),  # a key made of text
        ("signed_up", "DATE", None, "date"),
        ("created", "timestamp with time zone", None, "date"),
        ("every", "interval", None, "any"),
        ("flag", "boolean", None, "any"),
        ("note", "", None, "any"),
    ],
)
def test_each_column_is_compared_with_a_literal_of_its_kind(
    name: str, declared: str, references: str | None, kind: str
) -> None:
    column = ColumnInfo(
        name=name, type=declared, nullable=True, primary_key=False, references=references
    )
    assert literal_kind(column) == kind


def test_known_values_are_read_in_one_query(shop: Path) -> None:
    schema = read_schema(str(shop))
    values = known_values(execute_select(str(shop), values_query(schema) or ""))
    assert values[("orders", "status")] == ["delivered", "cancelled", "shipped", "placed"]
    assert ("customers", "signed_up") not in values  # a DATE column stays free
    assert ("products", "price") not in values


async def test_preload_records_automatic_steps_and_hints(shop: Path) -> None:
    tools: dict[str, Any] = {
        "sql_schema": SqlSchemaTool(str(shop)),
        "sql_query": SqlQueryTool(str(shop)),
    }
    preload = await preload_database(tools, constrain_sql=True, observation_chars=700)
    assert [s.tool for s in preload.steps] == ["sql_schema", "sql_query"]
    assert all(s.automatic and s.ok for s in preload.steps)
    assert "orders.status: delivered, cancelled, shipped, placed" in preload.hints[1]
    assert preload.hidden_tools == {"sql_schema"} and "sql_query" in preload.input_schemas
    plain = await preload_database(tools, constrain_sql=False, observation_chars=700)
    assert len(plain.steps) == 1 and plain.input_schemas == {}
    assert (await preload_database({"sql_query": tools["sql_query"]}, **_opts())).steps == []


def _opts() -> dict[str, Any]:
    return {"constrain_sql": True, "observation_chars": 700}


def test_auto_action_format_follows_the_provider() -> None:
    def settings(**llm: Any) -> Settings:
        return Settings(_env_file=None, llm=llm)  # type: ignore[call-arg]

    assert action_format_for(settings(provider="llamacpp")) == "json_staged"
    assert action_format_for(settings(provider="fake")) == "json_schema"
    remote = settings(provider="openai_compatible", base_url="http://127.0.0.1:1/v1")
    assert action_format_for(remote) == "native"
    forced = Settings(_env_file=None, agents={"action_format": "json_schema"})  # type: ignore[call-arg]
    assert action_format_for(forced) == "json_schema"


# -- every constrained schema compiles in llama.cpp ---------------------------------------------
@pytest.fixture(scope="module")
def grammar_check() -> Iterator[Any]:
    """A function telling whether llama.cpp accepts the grammar of a JSON schema (vocab only)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from genai_factory.llm.llamacpp import bundled_gguf_path

    llm = llama_cpp.Llama(model_path=str(bundled_gguf_path()), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)

    def check(schema: dict[str, Any]) -> bool:
        grammar = json_schema_to_gbnf(json.dumps(schema))
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    yield check
    llm.close()


def test_constrained_schemas_compile(grammar_check: Any, shop: Path) -> None:
    schema = read_schema(str(shop))
    values = known_values(execute_select(str(shop), values_query(schema) or ""))
    sql = sql_input_schema(schema, values)
    asked = sql_input_schema(
        schema, values, "How many orders has Grace Hopper placed since 2024-03?"
    )
    assert sql is not None and asked is not None
    tools: list[Any] = [
        SqlQueryTool(str(shop)),
        CalculatorTool(),
        KnowledgeSearchTool(FakeEmbedder()),  # type: ignore[arg-type]
    ]
    staged = StagedJsonFormat(tools, {"sql_query": sql})
    schemas = [
        action_schema(tools),
        action_schema(tools, input_schemas={"sql_query": sql}),
        asked,
        action_schema(tools, tool_only=True),
        action_schema(tools, final_only=True),
        {"type": "object", "properties": {"e": {"type": "string", "pattern": EXPRESSION_PATTERN}}},
        {"type": "object", "properties": {"t": text_schema(100)}},
    ]
    for name in ("sql_query", "calculator", "knowledge_search", "final_answer"):
        options = staged.input_options(AgentAction(tool=name), ChatOptions())
        if options.json_schema is not None:
            schemas.append(options.json_schema)
    schemas.append(staged.options(ChatOptions(), final=False).json_schema or {})
    assert all(grammar_check(s) for s in schemas)
    assert not grammar_check({"type": "string", "pattern": "^a\\.b$"})  # the check does check


@pytest.mark.parametrize(
    ("question", "example"),
    [
        ("How many customers are there?", "How many books are there?"),
        ("What is the most expensive product?", "What is the most expensive book?"),
        ("What is the average product price?", "What is the average price of a book?"),
    ],
)
def test_the_sql_example_is_picked_by_word_overlap(question: str, example: str) -> None:
    assert pick_sql_example(question)[0] == example
    assert "books" in pick_sql_example(question)[1]  # never a real table: only the shape is shown
