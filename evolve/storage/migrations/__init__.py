"""Alembic migrations of the program database (`env.py`, `versions/`); run by `evolve.storage._orm.upgrade`."""
