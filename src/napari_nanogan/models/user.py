"""The user's own models (fine-tuned bundles): a folder of checkpoints with model cards.

Folder: ``$NANOGAN_USER_MODELS``, else ``$XDG_DATA_HOME/napari-nanogan/models``
(``~/.local/share/napari-nanogan/models``). A model's name is its file stem.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

USER_MODELS_ENV = "NANOGAN_USER_MODELS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def user_models_dir() -> Path:
    env = os.environ.get(USER_MODELS_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "napari-nanogan" / "models"


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValueError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit")
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
