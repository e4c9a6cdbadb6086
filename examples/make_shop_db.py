"""Write ``examples/shop.db``: a small, deterministic shop database for the SQL tools.

Tables: ``customers``, ``products``, ``orders`` and ``order_items`` (with foreign keys), about
fifty rows in all. Run ``python examples/make_shop_db.py [PATH]``; the same rows come out every
time. Try it with::

    genai-factory tools schema --db examples/shop.db
    genai-factory tools sql --db examples/shop.db \\
        "SELECT c.name, sum(i.quantity * i.unit_price) AS spent FROM customers c
         JOIN orders o ON o.customer_id = c.id JOIN order_items i ON i.order_id = o.id
         GROUP BY c.id ORDER BY spent DESC"
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL,
    signed_up DATE NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price REAL NOT NULL CHECK (price >= 0)
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    ordered_at DATE NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('placed', 'shipped', 'delivered', 'cancelled'))
);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price REAL NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
"""

CUSTOMERS = [
    (1, "Ada Lovelace", "ada@example.com", "GB", "2024-01-15"),
    (2, "Grace Hopper", "grace@example.com", "US", "2024-02-03"),
    (3, "Alan Turing", "alan@example.com", "GB", "2024-02-20"),
    (4, "Hedy Lamarr", "hedy@example.com", "AT", "2024-03-11"),
    (5, "Konrad Zuse", "konrad@example.com", "DE", "2024-04-02"),
    (6, "Katherine Johnson", "katherine@example.com", "US", "2024-05-27"),
    (7, "Edsger Dijkstra", "edsger@example.com", "NL", "2024-06-09"),
    (8, "Barbara Liskov", "barbara@example.com", "US", "2024-07-21"),
]

PRODUCTS = [
    (1, "Mechanical keyboard", "peripherals", 89.0),
    (2, "Wireless mouse", "peripherals", 25.5),
    (3, "27-inch monitor", "displays", 229.0),
    (4, "USB-C hub", "accessories", 39.9),
    (5, "Laptop stand", "accessories", 45.0),
    (6, "Noise-cancelling headphones", "audio", 199.0),
    (7, "Webcam 1080p", "peripherals", 59.0),
    (8, "Desk lamp", "accessories", 32.0),
]

ORDERS = [
    (1, 1, "2024-03-01", "delivered"),
    (2, 2, "2024-03-05", "delivered"),
    (3, 1, "2024-04-12", "delivered"),
    (4, 3, "2024-04-18", "cancelled"),
    (5, 4, "2024-05-02", "delivered"),
    (6, 5, "2024-05-20", "shipped"),
    (7, 2, "2024-06-14", "delivered"),
    (8, 6, "2024-07-01", "shipped"),
    (9, 7, "2024-07-19", "placed"),
    (10, 8, "2024-08-03", "placed"),
    (11, 3, "2024-08-10", "delivered"),
    (12, 6, "2024-08-22", "placed"),
]

ORDER_ITEMS = [
    (1, 1, 1, 89.0),
    (1, 2, 1, 25.5),
    (2, 3, 2, 219.0),
    (3, 6, 1, 199.0),
    (3, 4, 2, 39.9),
    (4, 5, 1, 45.0),
    (5, 7, 1, 59.0),
    (5, 8, 2, 32.0),
    (6, 1, 1, 85.0),
    (6, 3, 1, 229.0),
    (7, 2, 3, 25.5),
    (8, 6, 1, 189.0),
    (8, 4, 1, 39.9),
    (9, 5, 2, 45.0),
    (10, 7, 1, 59.0),
    (10, 2, 1, 25.5),
    (11, 8, 1, 32.0),
    (12, 3, 1, 229.0),
]


def make_shop_db(path: Path) -> Path:
    """Write the shop database to ``path`` (replacing it) and return the path."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", CUSTOMERS)
        conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", PRODUCTS)
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", ORDERS)
        conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?)", ORDER_ITEMS)
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("shop.db")
    print(make_shop_db(target))
