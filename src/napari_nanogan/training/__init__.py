"""Training loops (generators of progress records with a stop callback)."""
