"""Built-in problems, one folder each (see `evolve.problems` for what a folder holds)."""
