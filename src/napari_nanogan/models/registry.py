"""Model names: the weights shipped in the package, optional downloads, and the user's own models.

Names resolve to checkpoint files in this order: an existing file path; a model shipped
in ``napari_nanogan/weights`` (always offline); an entry of :data:`REMOTE_MODELS`,
fetched once with its sha256 checked into the cache folder (``$NANOGAN_CACHE_DIR``,
default: the platform's user cache); a model the user fine-tuned, in the user models
folder (``$NANOGAN_USER_MODELS``, else ``$XDG_DATA_HOME/napari-nanogan/models``, i.e.
``~/.local/share/napari-nanogan/models``; a model's name is its file stem).

This module deals in names and files only; the objects that run the networks are made
by :func:`napari_nanogan.segmentation.load_segmenter` and
:func:`napari_nanogan.synthesis.load_generator`.
"""

from __future__ import annotations

import os
import re
import shutil
import weakref
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from ..config import ModelKind
from .checkpoint import CheckpointError, load_checkpoint



#: Shipped segmenters: name -> file inside napari_nanogan/weights. ``default`` handles SEM
#: and TEM; ``sem-tio2`` is trained on the BAM TiO2 SEM images only (better there).
SHIPPED_SEGMENTERS = {"default": "segmenter_default.pt", "sem-tio2": "segmenter_sem_tio2.pt"}
#: Names that choose between shipped segmenters per image: name -> (general, bright).
#: ``auto`` takes ``sem-tio2`` for bright particles on a dark background (SEM), else
#: ``default`` (see :class:`napari_nanogan.segmentation.AutoSegmenter`).
AUTO_SEGMENTERS = {"auto": ("default", "sem-tio2")}
#: Shipped generators (mask -> image): name -> file inside napari_nanogan/weights. ``default``
#: makes TiO2-like SEM images (trained on BAM), ``tem`` bright-field TEM ones (dark particles
#: on a bright support; trained on the EMPS images of that kind).
SHIPPED_GENERATORS = {"default": "generator_default.pt", "tem": "generator_tem.pt"}
#: What ``nanogan segment``, the demo and the Segment panel use unless told otherwise.
DEFAULT_SEGMENTER = "auto"
#: What ``nanogan synthesize``, ``export`` and the Synthesize panel use unless told otherwise.
DEFAULT_GENERATOR = "default"
CACHE_ENV = "NANOGAN_CACHE_DIR"


@dataclass(frozen=True)
class RemoteModel:
    """A downloadable checkpoint: where it lives and what it must hash to."""

    url: str
    sha256: str
    kind: ModelKind = ModelKind.SEGMENTER
    description: str = ""


#: Optional larger models, fetched on first use. Empty until we publish one; the
#: fetching code path is exercised by the tests.
REMOTE_MODELS: dict[str, RemoteModel] = {}


class ModelNotFoundError(LookupError):
    """A model name or path that resolves to nothing."""


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("napari-nanogan"))


def shipped_path(filename: str) -> Path:
    return Path(str(resources.files("napari_nanogan") / "weights" / filename))


def available_models(kind: ModelKind | str = ModelKind.SEGMENTER) -> list[str]:
    """Shipped, downloadable and the user's own models holding a network of ``kind``."""
    kind = ModelKind.parse(kind, "model kind")
    shipped = SHIPPED_SEGMENTERS if kind == ModelKind.SEGMENTER else SHIPPED_GENERATORS
    names = [n for n, f in shipped.items() if shipped_path(f).is_file()]
    if kind == ModelKind.SEGMENTER:
        names = [n for n, members in AUTO_SEGMENTERS.items() if all(m in names for m in members)] + names
    names += [n for n, m in REMOTE_MODELS.items() if m.kind == kind]
    return names + [n for n in list_user_models(kind) if n not in names]


def fetch_remote(name: str, model: RemoteModel) -> Path:
    """Download (once) and verify a remote checkpoint; an actionable error when offline."""
    import pooch

    target = cache_dir()
    fname = f"{name}.pt"
    if (target / fname).is_file():
        path = target / fname
        if pooch.file_hash(str(path)) == model.sha256:
            return path
    try:
        return Path(pooch.retrieve(model.url, known_hash=f"sha256:{model.sha256}", fname=fname, path=target, progressbar=False))
    except Exception as exc:
        raise ModelNotFoundError(
            f"model {name!r} is not in the local cache ({target}) and could not be downloaded from {model.url} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}). "
            f"Connect to the internet once, or download the file by hand, check its sha256 ({model.sha256}) and "
            f"pass its path with --model, or put it in ${CACHE_ENV} as {fname}. "
            f"Offline models: {', '.join(SHIPPED_SEGMENTERS)}."
        ) from None


def resolve_model(name_or_path: str | os.PathLike, *, kind: ModelKind | str = ModelKind.SEGMENTER) -> Path:
    """The checkpoint file for a model name or path; :class:`ModelNotFoundError` lists the names that exist."""
    kind = ModelKind.parse(kind, "model kind")
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    name = str(name_or_path)
    if candidate.is_dir():
        raise ModelNotFoundError(f"{name} is a folder, not a checkpoint file")
    if kind == ModelKind.SEGMENTER and name in AUTO_SEGMENTERS:
        raise ModelNotFoundError(f"{name!r} is not one checkpoint: it chooses per image between the shipped models "
                                 f"{' and '.join(AUTO_SEGMENTERS[name])}; name one of them here")
    shipped = {ModelKind.SEGMENTER: SHIPPED_SEGMENTERS, ModelKind.GENERATOR: SHIPPED_GENERATORS}.get(kind, {})
    if name in shipped:
        path = shipped_path(shipped[name])
        if not path.is_file():
            raise ModelNotFoundError(f"shipped model {name!r} is missing from the installation ({path}); reinstall napari-nanogan")
        return path
    if name in REMOTE_MODELS and REMOTE_MODELS[name].kind == kind:
        return fetch_remote(name, REMOTE_MODELS[name])
    if _NAME.match(name):  # a name, never a path: "../x" must not reach outside the models folder
        user = user_models_dir() / f"{name}.pt"
        if user.is_file():
            return user
    choices = ", ".join(available_models(kind)) or "none"
    if not _NAME.match(name) or name.endswith(".pt"):
        raise ModelNotFoundError(f"{name}: no such file, and not a model name; model names: {choices}")
    raise ModelNotFoundError(f"no {kind} named {name!r} and no such file; available: {choices}")


# ---------------------------------------------------------------- the user's own models
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
    if not _NAME.match(name or ""):
        raise ValueError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit")
    if name in {*SHIPPED_SEGMENTERS, *SHIPPED_GENERATORS, *AUTO_SEGMENTERS, *REMOTE_MODELS}:
        # names resolve to the shipped models first: a model saved under one could never be loaded by name
        raise ValueError(f"model name {name!r} belongs to a shipped model; choose another name")
    return name


def user_model_path(name: str) -> Path:
    return user_models_dir() / f"{check_name(name)}.pt"


def list_user_models(kind: ModelKind | str | None = None) -> list[str]:
    """Names of the user's models; with ``kind``, only those holding that network."""
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
