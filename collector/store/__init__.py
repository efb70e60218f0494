"""The ticket and device store: SQLite by default, PostgreSQL for production, one interface."""
