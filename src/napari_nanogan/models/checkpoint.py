"""Checkpoints as plain data: format version, kind, config, state_dict, provenance.

Everything in a checkpoint is a tensor, a number, a string, a list or a dict, so it
loads with ``torch.load(..., weights_only=True)``: no class from a file is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import ModelKind
from ..io.atomic import atomic_path

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file is not a napari-nanogan checkpoint we can load."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    import torch

    data = {"format_version": FORMAT_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, *, kind: ModelKind | str | None = None) -> dict[str, Any]:
    """Load a checkpoint safely; ``kind`` (e.g. ``ModelKind.SEGMENTER``) is checked when given.

    A fine-tuned bundle asked for one of its parts returns that part as a checkpoint of its own.
    """
    path = Path(path)
    kind = None if kind is None else ModelKind.parse(kind, "checkpoint kind").value  # plain data, as stored
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, wrong format ...
        raise CheckpointError(
            f"{path} is not a loadable napari-nanogan checkpoint "
            f"(only plain-data checkpoints are accepted): {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(data, dict) or "format_version" not in data or ("state_dict" not in data and data.get("kind") != "bundle"):
        raise CheckpointError(f"{path} is not a napari-nanogan checkpoint (missing format_version/state_dict)")
    if data["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {data['format_version']}; this napari-nanogan reads "
            f"up to {FORMAT_VERSION}: upgrade the package"
        )
    if kind is not None and data.get("kind") == "bundle" and kind != "bundle":
        # a fine-tuned user model: one file holding a segmenter and a generator
        part = data.get(kind)
        if not isinstance(part, dict) or "state_dict" not in part:
            raise CheckpointError(f"{path} is a model bundle without a {kind!r}")
        return {"format_version": data["format_version"], "kind": kind, **part}
    if kind is not None and data.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {data.get('kind')!r} model, not a {kind!r}")
    return data
