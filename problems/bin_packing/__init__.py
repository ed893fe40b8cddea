"""The bin_packing problem: FunSearch-style online bin packing (see README.md)."""
