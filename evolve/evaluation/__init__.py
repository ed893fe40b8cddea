"""Evaluation: the pool of slots (local threads, Ray actors) and the sandbox it runs candidates in."""
