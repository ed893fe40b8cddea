"""The circle_packing problem (see README.md)."""
