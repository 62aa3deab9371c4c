"""Model registry: weights shipped inside the package, plus optional downloads (pooch).

Names resolve in this order: an existing file path; a model shipped in
``napari_nanogan/weights`` (always offline); an entry of :data:`REMOTE_MODELS`,
fetched once with its sha256 checked into the cache folder
(``$NANOGAN_CACHE_DIR``, default: the platform's user cache); a model the user
fine-tuned (:mod:`napari_nanogan.models.user`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: Shipped segmenters: name -> file inside napari_nanogan/weights. ``default`` handles SEM
#: and TEM; ``sem-tio2`` is trained on the BAM TiO2 SEM images only (better there).
SHIPPED_SEGMENTERS = {"default": "segmenter_default.pt", "sem-tio2": "segmenter_sem_tio2.pt"}
#: Names that choose between shipped segmenters per image: name -> (general, bright).
#: ``auto`` takes ``sem-tio2`` for bright particles on a dark background (SEM), else
#: ``default`` (see :class:`napari_nanogan.inference.AutoSegmenter`).
AUTO_SEGMENTERS = {"auto": ("default", "sem-tio2")}
#: Shipped generators (mask -> image): name -> file inside napari_nanogan/weights. ``default``
#: makes TiO2-like SEM images (trained on BAM), ``tem`` bright-field TEM ones (dark particles
#: on a bright support; trained on the EMPS images of that kind).
SHIPPED_GENERATORS = {"default": "generator_default.pt", "tem": "generator_tem.pt"}
#: What ``nanogan segment``, the demo and the Segment panel use unless told otherwise.
DEFAULT_SEGMENTER = "auto"
CACHE_ENV = "NANOGAN_CACHE_DIR"


@dataclass(frozen=True)
class RemoteModel:
    """A downloadable checkpoint: where it lives and what it must hash to."""

    url: str
    sha256: str
    kind: str = "segmenter"
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


def available_models(kind: str = "segmenter") -> list[str]:
    """Shipped, downloadable and the user's own models holding a network of ``kind``."""
    from .user import list_user_models

    shipped = SHIPPED_SEGMENTERS if kind == "segmenter" else SHIPPED_GENERATORS
    names = [n for n, f in shipped.items() if shipped_path(f).is_file()]
    if kind == "segmenter":
        names = [n for n, members in AUTO_SEGMENTERS.items() if all(m in names for m in members)] + names
    names += [n for n, m in REMOTE_MODELS.items() if m.kind == kind]
    return names + [n for n in list_user_models(kind) if n not in names]


def available_segmenters() -> list[str]:
    return available_models("segmenter")


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


def resolve_model(name_or_path: str | os.PathLike, *, kind: str = "segmenter") -> Path:
    """The checkpoint file for a model name or path."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    name = str(name_or_path)
    if kind == "segmenter" and name in AUTO_SEGMENTERS:
        raise ModelNotFoundError(f"{name!r} is not one checkpoint: it chooses per image between the shipped models "
                                 f"{' and '.join(AUTO_SEGMENTERS[name])}; name one of them here")
    shipped = {"segmenter": SHIPPED_SEGMENTERS, "generator": SHIPPED_GENERATORS}.get(kind, {})
    if name in shipped:
        path = shipped_path(shipped[name])
        if not path.is_file():
            raise ModelNotFoundError(f"shipped model {name!r} is missing from the installation ({path}); reinstall napari-nanogan")
        return path
    if name in REMOTE_MODELS and REMOTE_MODELS[name].kind == kind:
        return fetch_remote(name, REMOTE_MODELS[name])
    from .user import user_models_dir

    user = user_models_dir() / f"{name}.pt"
    if user.is_file():
        return user
    choices = ", ".join(available_models(kind)) or "none"
    raise ModelNotFoundError(f"no {kind} named {name!r} and no such file; available: {choices}")


def _load(kind: str, cls, name_or_path, device):
    from .checkpoint import CheckpointError

    path = resolve_model(name_or_path, kind=kind)
    try:
        return cls.from_checkpoint(path, device=device, name=str(name_or_path))
    except CheckpointError:
        raise
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored configuration ({exc})") from None


def load_segmenter(name_or_path: str | os.PathLike = DEFAULT_SEGMENTER, *, device=None):
    """A :class:`~napari_nanogan.inference.Segmenter` from a shipped name, a remote name, a user model or a path.

    ``auto`` (the default) gives an :class:`~napari_nanogan.inference.AutoSegmenter`, which
    :func:`~napari_nanogan.inference.segment` accepts the same way.
    """
    from ..inference import AutoSegmenter, Segmenter

    name = str(name_or_path)
    if name in AUTO_SEGMENTERS and not Path(name).expanduser().is_file():
        general, bright = (_load("segmenter", Segmenter, m, device) for m in AUTO_SEGMENTERS[name])
        return AutoSegmenter(general, bright, name=name)
    return _load("segmenter", Segmenter, name_or_path, device)


def load_generator(name_or_path: str | os.PathLike = "default", *, device=None):
    """A :class:`~napari_nanogan.synthesis.Generator` from a shipped name, a remote name, a user model or a path."""
    from ..synthesis import Generator

    return _load("generator", Generator, name_or_path, device)
