"""A database as the first evolve wrote it, for the upgrade tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def write_first_schema(path: Path, campaign: str, problem: str) -> None:
    """The first schema (no validation, tokens, cost, choice or llm_calls), with one valid program."""
    with sqlite3.connect(path) as raw:
        raw.executescript(f"""
            CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name VARCHAR(255) UNIQUE, problem VARCHAR(255),
                                    config JSON, created_at DATETIME);
            CREATE TABLE programs (id INTEGER PRIMARY KEY, campaign_id INTEGER, iteration INTEGER, status VARCHAR(32),
                code TEXT, code_hash VARCHAR(64), score FLOAT, metrics JSON, features JSON, feedback TEXT, error TEXT,
                parent_id INTEGER, island INTEGER, generation INTEGER, proposer VARCHAR(255), proposal TEXT,
                eval_seconds FLOAT, propose_seconds FLOAT, created_at DATETIME);
            INSERT INTO campaigns VALUES (1, '{campaign}', '{problem}', '{{}}', '2026-11-01 00:00:00');
            INSERT INTO programs VALUES (1, 1, 0, 'valid', 'x = 0', 'h0', 1.5, '{{}}', '{{}}', '', '', NULL, 0, 0,
                                         'initial', '', 0.1, NULL, '2026-11-01 00:00:00');
        """)
