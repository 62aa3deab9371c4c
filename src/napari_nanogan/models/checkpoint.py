"""Checkpoints as plain data: format version, kind, config, state_dict, provenance.

Everything in a checkpoint is a tensor, a number, a string, a list or a dict, so it
loads with ``torch.load(..., weights_only=True)``: no class from a file is unpickled.
"""

from __future__ import annotations

import os
import warnings
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


def _refusal(path: Path, exc: Exception) -> str:
    """Why torch could not load a file, in our words.

    torch's own message is never passed on: for a file holding pickled objects it advises
    loading with ``weights_only=False``, which would run whatever code the file carries.
    """
    import pickle

    text = str(exc)
    try:
        empty = path.stat().st_size == 0
    except OSError:
        empty = False
    if empty:
        return "the file is empty"
    if "GLOBAL" in text or "global" in text.split("WeightsUnpickler error", 1)[-1]:
        return ("it holds Python objects, not only plain data (tensors, numbers, strings, lists, dicts); such files "
                "are never loaded, as loading them can run code: use a checkpoint written by napari-nanogan")
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text or "Weights only" in text:
        return "not a PyTorch checkpoint of plain data (another format, or a damaged file)"
    if isinstance(exc, EOFError):
        return "the file ends early (truncated); copy it again"
    if "zip" in text.lower() or "archive" in text.lower():
        return "not a PyTorch file, or a truncated or damaged one; copy it again"
    return f"not a PyTorch checkpoint ({type(exc).__name__})"


def load_checkpoint(path: str | os.PathLike, *, kind: ModelKind | str | None = None) -> dict[str, Any]:
    """Load a checkpoint safely; ``kind`` (e.g. ``ModelKind.SEGMENTER``) is checked when given.

    A fine-tuned bundle asked for one of its parts returns that part as a checkpoint of its own.
    """
    path = Path(path)
    kind = None if kind is None else ModelKind.parse(kind, "checkpoint kind").value  # plain data, as stored
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol notes: the refusal below says it all
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, wrong format ...
        raise CheckpointError(f"{path} is not a loadable napari-nanogan checkpoint: {_refusal(path, exc)}") from None
    if not isinstance(data, dict) or "format_version" not in data or ("state_dict" not in data and data.get("kind") != "bundle"):
        raise CheckpointError(f"{path} is not a napari-nanogan checkpoint (missing format_version/state_dict)")
    if not isinstance(data["format_version"], int):
        raise CheckpointError(f"{path} is not a napari-nanogan checkpoint (format_version {data['format_version']!r})")
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
