"""The warehouse_tsp problem: picker routing on representative tours (see README.md)."""
