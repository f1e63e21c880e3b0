"""Durable state: the schema, the store's transactions, opening and migrating
the database (SQLite or PostgreSQL)."""
