"""The user's own models (fine-tuned bundles): a folder of checkpoints with model cards.

Folder: ``$NANOGAN_USER_MODELS``, else ``$XDG_DATA_HOME/napari-nanogan/models``
(``~/.local/share/napari-nanogan/models``). A model's name is its file stem.
"""

from __future__ import annotations

import os
import re
import shutil
import weakref
from pathlib import Path
from typing import Callable

USER_MODELS_ENV = "NANOGAN_USER_MODELS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_listeners: list = []


def on_models_changed(callback: Callable[[], object]) -> None:
    """Call ``callback()`` whenever a user model is added or deleted in this process.

    Bound methods are held weakly, so a closed panel's list is not kept alive. The
    panels use it to refresh their model choices; notifications come from the thread
    that changed the folder (the panels only change it from the GUI thread).
    """
    ref = weakref.WeakMethod(callback) if hasattr(callback, "__self__") else (lambda: callback)
    _listeners.append(ref)


def notify_models_changed() -> None:
    alive = []
    for ref in _listeners:
        callback = ref()
        if callback is None:
            continue
        try:
            callback()
        except RuntimeError:  # its Qt widget was deleted with a closed panel
            continue
        alive.append(ref)
    _listeners[:] = alive


def user_models_dir() -> Path:
    env = os.environ.get(USER_MODELS_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "napari-nanogan" / "models"


def check_name(name: str) -> str:
    from .pretrained import AUTO_SEGMENTERS, REMOTE_MODELS, SHIPPED_GENERATORS, SHIPPED_SEGMENTERS

    if not _NAME.match(name or ""):
        raise ValueError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit")
    if name in {*SHIPPED_SEGMENTERS, *SHIPPED_GENERATORS, *AUTO_SEGMENTERS, *REMOTE_MODELS}:
        # names resolve to the shipped models first: a model saved under one could never be loaded by name
        raise ValueError(f"model name {name!r} belongs to a shipped model; choose another name")
    return name


def user_model_path(name: str) -> Path:
    return user_models_dir() / f"{check_name(name)}.pt"


def list_user_models(kind: str | None = None) -> list[str]:
    """Names of the user's models; with ``kind``, only those holding that network."""
    from .checkpoint import CheckpointError, load_checkpoint

    folder = user_models_dir()
    if not folder.is_dir():
        return []
    names = []
    for path in sorted(folder.glob("*.pt")):
        if kind is not None:
            try:
                load_checkpoint(path, kind=kind)
            except CheckpointError:
                continue
        names.append(path.stem)
    return names


def delete_user_model(name: str) -> None:
    path = user_model_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"no user model named {name!r} in {user_models_dir()}")
    path.unlink()
    notify_models_changed()


def model_card(name: str) -> dict:
    """The model card stored in a user model (fine-tuning provenance and scores)."""
    from .checkpoint import load_checkpoint

    data = load_checkpoint(user_model_path(name))
    return dict(data.get("card") or data.get("provenance") or {})


def export_user_model(name: str, destination) -> Path:
    """Copy a user model to ``destination`` (a file or a folder); never overwrites."""
    src = user_model_path(name)
    dest = Path(destination)
    if dest.is_dir():
        dest = dest / src.name
    if dest.exists():
        raise FileExistsError(f"{dest} exists; not overwriting it")
    shutil.copyfile(src, dest)
    return dest
