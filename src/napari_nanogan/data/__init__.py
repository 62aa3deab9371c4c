"""Datasets, training targets, augmentation and procedural particle masks."""
