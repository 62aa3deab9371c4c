"""Generators ready for sampling, and loading them by name."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..config import Finishing, GeneratorConfig, ModelKind
from ..models.checkpoint import CheckpointError, load_checkpoint
from ..models.registry import DEFAULT_GENERATOR, resolve_model
from ..models.runtime import for_inference, inference_copy, inference_precision
from ..models.style_unet import StyleUNet
from .texture import LearnedTexture


@dataclass
class Generator:
    """A trained mask -> image generator ready for sampling.

    Attributes
    ----------
    network : StyleUNet
        On its device, in eval mode.
    name : str
    card : dict
        Provenance stored with the weights.
    finishing : Finishing
        Blur, grey-level calibration and noise after the network (stored as ``"postprocess"``).
    texture : LearnedTexture or None
        A learned substrate texture laid over the finished image.
    particle_texture : LearnedTexture or None
        A learned fine detail laid over the particles after that.
    precision : str
        ``"fp32"`` or ``"bf16"``: what sampling runs in (:meth:`sampler`); by default bf16 on
        CPUs that run it natively (:func:`~napari_nanogan.models.runtime.inference_precision`).
    """

    network: StyleUNet
    name: str = "unnamed"
    card: dict = field(default_factory=dict)
    finishing: Finishing = field(default_factory=Finishing)
    texture: LearnedTexture | None = None
    particle_texture: LearnedTexture | None = None
    precision: str = "fp32"
    _sampler: StyleUNet | None = field(default=None, init=False, repr=False, compare=False)

    def sampler(self) -> StyleUNet:
        """The network that draws images: :attr:`network`, or its bf16 copy (made once) in bf16."""
        if self._sampler is None:
            self._sampler = inference_copy(self.network, self.precision)
        return self._sampler

    def use_precision(self, precision: str) -> None:
        """Draw in ``precision`` (``"fp32"`` or ``"bf16"``) from now on; the textures too."""
        if precision != self.precision:
            self.precision, self._sampler = precision, None
        for part in (self.texture, self.particle_texture):
            if part is not None:
                part.use_precision(precision)

    @property
    def config(self) -> GeneratorConfig:
        return self.network.config

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @classmethod
    def from_checkpoint(cls, path, *, device=None, name: str | None = None) -> "Generator":
        return cls.from_dict(load_checkpoint(path, kind=ModelKind.GENERATOR), device=device,
                             name=name or os.path.basename(str(path)))

    @classmethod
    def from_dict(cls, data: dict, *, device=None, name: str = "unnamed") -> "Generator":
        """A generator from a checkpoint's contents (network, finishing, textures)."""
        network = StyleUNet(GeneratorConfig.from_dict(data["config"]))
        network.load_state_dict(data["state_dict"])
        textures = {key: LearnedTexture.from_dict(data[part]) if data.get(part) else None
                    for key, part in (("texture", "substrate_texture"), ("particle_texture", "particle_texture"))}
        return cls.from_network(network, name=name, card=data.get("provenance", {}),
                                device=device, finishing=Finishing.from_dict(data.get("postprocess", {})), **textures)

    @classmethod
    def from_network(cls, network: StyleUNet, *, name: str = "unnamed", card: dict | None = None, device=None,
                     finishing: Finishing | None = None, texture: LearnedTexture | None = None,
                     particle_texture: LearnedTexture | None = None) -> "Generator":
        network = for_inference(network, device)
        for part in (texture, particle_texture):  # each where its network runs (the CPU, also beside a GPU)
            if part is not None:
                part.use_precision(inference_precision(part.network.out.weight.device))
        return cls(network, name, card or {}, finishing or Finishing(), texture, particle_texture,
                   inference_precision(next(network.parameters()).device))


def load_generator(name_or_path: str | os.PathLike = DEFAULT_GENERATOR, *, device=None) -> Generator:
    """A generator from a shipped name, a remote name, a user model or a checkpoint path."""
    path = resolve_model(name_or_path, kind=ModelKind.GENERATOR)
    try:
        return Generator.from_checkpoint(path, device=device, name=str(name_or_path))
    except CheckpointError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: weights do not fit the stored configuration ({reason})") from None
