"""The shop's schema and queries: SQL text with bound parameters, never formatted."""

from __future__ import annotations

from sqlalchemy import Engine, text

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS products (
        sku TEXT PRIMARY KEY,
        unit_cents INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS orders (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id),
        total_cents INTEGER NOT NULL,
        receipt_sent INTEGER NOT NULL DEFAULT 0
    )
    """,
)

# Upsert by email (SQLite >= 3.24 and PostgreSQL share this syntax).
UPSERT_USER = text(
    "INSERT INTO users (id, email, name) VALUES (:id, :email, :name) "
    "ON CONFLICT (email) DO UPDATE SET name = excluded.name"
)
UNIT_PRICE = text("SELECT unit_cents FROM products WHERE sku = :sku")
ORDER_RECEIPT = text(
    "SELECT o.id, o.total_cents, u.email, u.name FROM orders o "
    "JOIN users u ON u.id = o.user_id WHERE o.id = :order_id AND o.receipt_sent = 0"
)
MARK_SENT = text("UPDATE orders SET receipt_sent = 1 WHERE id = :order_id")
ORDER_CUSTOMER = text(
    "SELECT u.email, u.name FROM orders o JOIN users u ON u.id = o.user_id "
    "WHERE o.id = :order_id"
)
INSERT_ORDER = text(
    "INSERT INTO orders (user_id, total_cents) VALUES (:user_id, :total_cents)"
)


def create_schema(engine: Engine) -> None:
    """Create the tables (idempotent)."""
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.execute(text(statement))
