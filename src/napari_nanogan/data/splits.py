"""Deterministic train/validation/test splits of the shared data sets, by source.

Images of one source (one paper's figures: one microscope, material and style) stay
on one side of a split, or a model is scored on near-copies of what it trained on.
Sources are ordered by a salted SHA-1 of their name; whole sources go to ``test``
until it holds ``n_test`` images, then to ``val`` until it holds ``n_val``, and the
rest train. The split depends only on the names, never on the file system order.
An image without a known source is a source of its own.
"""

from __future__ import annotations

import hashlib

SALT = "napari-nanogan-split-v1"


def _order(name: str, salt: str) -> str:
    return hashlib.sha1(f"{salt}:{name}".encode()).hexdigest()


def split_groups(groups: dict[str, str | None], *, n_test: int, n_val: int,
                 salt: str = SALT) -> dict[str, list[str]]:
    """Split item names into ``test``, ``val`` and ``train`` with every group on one side.

    Parameters
    ----------
    groups : dict of str to str or None
        Item name -> its source (e.g. a paper's DOI); None: the item is its own source.
    n_test, n_val : int
        Fewest items in ``test`` and ``val`` (whole groups are taken until reached).
    """
    members: dict[str, list[str]] = {}
    for name, group in groups.items():
        members.setdefault(f"group:{group}" if group else name, []).append(name)
    if n_test + n_val >= len(groups):
        raise ValueError(f"cannot hold out {n_test} + {n_val} of {len(groups)} items")
    out: dict[str, list[str]] = {"test": [], "val": [], "train": []}
    for key in sorted(members, key=lambda k: _order(k, salt)):
        part = "test" if len(out["test"]) < n_test else "val" if len(out["val"]) < n_val else "train"
        out[part] += members[key]
    if not out["train"]:
        raise ValueError(f"holding out {n_test} + {n_val} of {len(groups)} items by source leaves none to train on")
    return {part: sorted(names) for part, names in out.items()}


def split_names(names, *, n_test: int, n_val: int, salt: str = SALT) -> dict[str, list[str]]:
    """:func:`split_groups` with every name its own source."""
    return split_groups(dict.fromkeys(names), n_test=n_test, n_val=n_val, salt=salt)


# Held-out sizes of the shared data sets: BAM SEM has 30 fields of one sample (split by field),
# EMPS 366 figure crops from 247 papers (split by paper, ``metadata.csv``'s ``doi``).
BAM_HOLDOUT = {"n_test": 6, "n_val": 3}
EMPS_HOLDOUT = {"n_test": 55, "n_val": 30}
