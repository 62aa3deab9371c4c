"""Networks and checkpoints (imports torch)."""
