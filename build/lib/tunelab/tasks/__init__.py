"""Tasks: what differs between model families (classification, generation, ...)."""
