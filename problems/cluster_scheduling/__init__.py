"""The cluster_scheduling problem: a Borg-like placement score against stranded resources (see README.md)."""
