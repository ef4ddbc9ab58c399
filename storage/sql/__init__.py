"""The execution state as a relational schema (schema.sql, PostgreSQL) and its loader (postgres.py)."""
