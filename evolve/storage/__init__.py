"""Rows: the program store over SQLAlchemy, its migrations, the run dir and its lock."""
