"""Deterministic train/validation/test splits of the shared data sets.

Order by a salted SHA-1 of each file stem, then take ``n_test`` for reporting,
``n_val`` for checkpoint selection and the rest for training. The split depends
only on the names, never on the file system order.
"""

from __future__ import annotations

import hashlib

SALT = "napari-nanogan-split-v1"


def split_names(names, *, n_test: int, n_val: int, salt: str = SALT) -> dict[str, list[str]]:
    ordered = sorted(names, key=lambda n: hashlib.sha1(f"{salt}:{n}".encode()).hexdigest())
    if n_test + n_val >= len(ordered):
        raise ValueError(f"cannot hold out {n_test} + {n_val} of {len(ordered)} items")
    return {
        "test": sorted(ordered[:n_test]),
        "val": sorted(ordered[n_test : n_test + n_val]),
        "train": sorted(ordered[n_test + n_val :]),
    }


# Held-out sizes of the shared data sets: BAM SEM has 30 fields, EMPS 366 images.
BAM_HOLDOUT = {"n_test": 6, "n_val": 3}
EMPS_HOLDOUT = {"n_test": 55, "n_val": 20}
