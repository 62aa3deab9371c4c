"""What every configuration shares: plain-data round trips and named choices."""

from __future__ import annotations

import enum
from dataclasses import fields, is_dataclass


#: How to install the ``distributed`` extra (Dask, zarr), for the messages of what needs it.
INSTALL_DISTRIBUTED = ("pip install -e '.[distributed]' in the napari-nanogan source folder "
                       "(from a package index: pip install 'napari-nanogan[distributed]')")


class Choice(str, enum.Enum):
    """A named option stored as its string (``Choice("x") == "x"``; prints as ``x``)."""

    def __str__(self) -> str:
        return str(self.value)

    def __hash__(self) -> int:  # as its string's, so it finds and is found by plain-string keys
        return str.__hash__(self)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> list[str]:
        return [m.value for m in cls]

    @classmethod
    def parse(cls, value, what: str):
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{what} must be one of {', '.join(cls.values())}, not {value!r}") from None


def _plain(value):
    if isinstance(value, Choice):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


class Config:
    """Mixin of the frozen configuration dataclasses: ``to_dict`` / ``from_dict``.

    ``to_dict`` gives plain data (numbers, strings, tuples, dicts), which checkpoints
    store and ``torch.load(..., weights_only=True)`` reads back. ``from_dict`` ignores
    unknown keys (forward compatibility) and turns lists back into tuples.
    """

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names})


def coerce(config, name: str, choice: type[Choice]) -> None:
    """In ``__post_init__`` of a frozen dataclass: make field ``name`` a ``choice`` member (clear error if not)."""
    object.__setattr__(config, name, choice.parse(getattr(config, name), name))


class ModelKind(Choice):
    """What a checkpoint holds (its ``kind``)."""

    SEGMENTER = "segmenter"
    GENERATOR = "generator"
    CYCLEGAN = "cyclegan"
    BUNDLE = "bundle"  # a fine-tuned user model: a segmenter, maybe a generator, and a card
    SUBSTRATE_TEXTURE = "substrate-texture"
    PARTICLE_TEXTURE = "particle-texture"
    TEXTURE_RUN = "texture-run"  # a texture's training run (for resume)
