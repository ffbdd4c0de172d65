"""Storage: one database pool for SQLite and PostgreSQL, migrations and the stores."""
