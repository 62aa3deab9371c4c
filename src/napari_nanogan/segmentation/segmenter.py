"""Segmenters ready for inference, and loading them by name.

Two kinds share one interface (what :func:`~napari_nanogan.segmentation.segment_steps`
uses): ``name``, ``card``, ``sizer`` (the network whose size model estimates particle
diameters, at whose ``diameter_px`` images are resized) and ``candidates``, the networks
to try on an image in turn, each with a test its result must pass.

- :class:`Segmenter`: one trained network with its post-processing (and size model).
- :class:`AutoSegmenter`: chooses a network per image (the shipped ``auto``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import MODEL_DIAMETER_PX, ModelKind, PostprocessConfig, SegmenterConfig
from ..models.attention_unet import AttentionUNet
from ..models.checkpoint import CheckpointError, load_checkpoint
from ..models.registry import AUTO_SEGMENTERS, DEFAULT_SEGMENTER, resolve_model
from ..models.runtime import for_inference, inference_precision
from .confidence import ConfidenceModel
from .polarity import polarity_pass
from .sizing import CoarseSizing, SizeModel

#: A network to try on an image, and the test its foreground (uint8 probabilities, whole image) must pass
#: (None: always accepted).
Candidate = tuple["Segmenter", Callable[[np.ndarray], bool] | None]


@dataclass
class Segmenter:
    """A trained segmenter ready for inference.

    Attributes
    ----------
    network : AttentionUNet
        On its device, in eval mode (:func:`~napari_nanogan.models.runtime.for_inference`).
    postprocess : PostprocessConfig
        Probabilities to particles, as tuned on validation images.
    name : str
    card : dict
        Provenance stored with the weights (data, command, metrics).
    precision : str
        ``"fp32"`` or ``"bf16"`` (CPU autocast): by default bf16 on CPUs that run it natively
        (:func:`~napari_nanogan.models.runtime.inference_precision`).
    diameter_px : float
        Typical particle diameter (px) the network works best at.
    size_model : SizeModel or None
        Estimates an image's particle diameter (``segment(..., diameter="auto")``).
    coarse_sizing : CoarseSizing or None
        Or the network estimates it itself, at a coarse scale (used without a size model).
    confidence_model : ConfidenceModel or None
        Turns each particle's features into the probability that it is real: every pass's
        particles, and the scale and polarity checks, which compare mean confidences.
    final_confidence_model : ConfidenceModel or None
        Where fitted (``nanogan fit-confidence --shape``), judges the final particles
        instead: it sees each particle's shape too; its probability is the confidence
        reported, and particles under its ``metrics["min_confidence"]`` are dropped.
    size_reference : Segmenter or None
        Another segmenter whose size model estimates the diameter for this one (a
        fine-tuned model keeps the shipped sizer it started from: the size model was
        fitted on that network's outputs).
    size_correction : float
        Factor on the estimated diameter, calibrated on the annotated images a model was
        fine-tuned on (1 for the shipped models).
    """

    network: AttentionUNet
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    name: str = "unnamed"
    card: dict = field(default_factory=dict)
    precision: str = "fp32"
    diameter_px: float = MODEL_DIAMETER_PX
    size_model: SizeModel | None = None
    coarse_sizing: CoarseSizing | None = None
    confidence_model: ConfidenceModel | None = None
    size_reference: "Segmenter | None" = None
    size_correction: float = 1.0
    final_confidence_model: ConfidenceModel | None = None

    @property
    def config(self) -> SegmenterConfig:
        return self.network.config

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def sizing_fingerprint(self) -> str:
        """SHA-256 of what this segmenter's diameter estimates depend on: its weights and its size model."""
        import hashlib

        digest = hashlib.sha256()
        for name, tensor in sorted(self.network.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
        if self.size_model is not None:
            for part in (self.size_model.mean, self.size_model.std, self.size_model.reference,
                         self.size_model.log_diameter):
                digest.update(np.ascontiguousarray(part, np.float64).tobytes())
            digest.update(str(self.size_model.k).encode())
        if self.coarse_sizing is not None:
            digest.update(repr(self.coarse_sizing).encode())
        return digest.hexdigest()

    @property
    def sizer(self) -> "Segmenter":
        return self.size_reference if self.size_reference is not None else self

    def candidates(self, grey: np.ndarray, rows: slice, factor: float) -> list[Candidate]:
        return [(self, None)]

    @classmethod
    def from_checkpoint(cls, path, *, device: torch.device | str | None = None, name: str | None = None) -> "Segmenter":
        data = load_checkpoint(path, kind=ModelKind.SEGMENTER)
        network = AttentionUNet(SegmenterConfig.from_dict(data["config"]))
        network.load_state_dict(data["state_dict"])
        extras = {}
        for key, cls_, command in (("size_model", SizeModel, "fit-size"), ("coarse_sizing", CoarseSizing, "fit-size"),
                                   ("confidence_model", ConfidenceModel, "fit-confidence"),
                                   ("final_confidence_model", ConfidenceModel, "fit-confidence --shape")):
            stored = data.get(key)
            if stored:
                try:
                    extras[key] = cls_.from_dict(stored)
                except ValueError as exc:  # fitted by an older version: the network still works
                    warnings.warn(f"{path}: {key.replace('_', ' ')} not loaded ({exc}); refit it with "
                                  f"`nanogan {command}`", stacklevel=2)
        if data.get("size_reference"):  # a shipped segmenter estimates the diameter for this one
            try:
                reference = extras["size_reference"] = _load(data["size_reference"], device)
            except (OSError, ValueError, LookupError) as exc:
                warnings.warn(f"{path}: {data['size_reference']!r}, which estimates its particle diameter, is not "
                              f"available ({exc}); give the particle diameter", stacklevel=2)
            else:
                if data.get("size_reference_sha256") not in (None, reference.sizing_fingerprint()):
                    warnings.warn(f"{path}: {reference.name!r}, which estimates its particle diameter, has changed "
                                  "since this model was fine-tuned, so its diameter calibration may be off: give the "
                                  "particle diameter, or fine-tune again", stacklevel=2)
        return cls.from_network(network, postprocess=PostprocessConfig.from_dict(data.get("postprocess", {})),
                                name=name or os.path.basename(str(path)), card=data.get("provenance", {}),
                                device=device, size_correction=float(data.get("size_correction", 1.0)), **extras)

    @classmethod
    def from_network(cls, network: AttentionUNet, *, postprocess: PostprocessConfig | None = None,
                     name: str = "unnamed", card: dict | None = None, device=None,
                     size_model: SizeModel | None = None, coarse_sizing: CoarseSizing | None = None,
                     confidence_model: ConfidenceModel | None = None,
                     size_reference: "Segmenter | None" = None, size_correction: float = 1.0,
                     final_confidence_model: ConfidenceModel | None = None) -> "Segmenter":
        network = for_inference(network, device)
        return cls(network, postprocess or PostprocessConfig(), name, card or {},
                   precision=inference_precision(next(network.parameters()).device), size_model=size_model,
                   coarse_sizing=coarse_sizing, confidence_model=confidence_model, size_reference=size_reference,
                   size_correction=size_correction, final_confidence_model=final_confidence_model)


@dataclass
class AutoSegmenter:
    """Chooses a segmenter per image: ``bright`` for bright particles on a dark background, else ``general``.

    The shipped ``auto`` model: ``bright`` is ``sem-tio2`` (trained on SEM images of
    bright TiO2 particles on a dark substrate, better there), ``general`` is ``default``
    (SEM and TEM). ``general`` first runs once at half size, or at the smaller size a
    particle diameter asks for (:func:`~napari_nanogan.segmentation.polarity.polarity_pass`).
    Particles brighter than their background (secondary-electron SEM) go to ``bright``,
    unless its foreground then disagrees with that pass (IoU under ``min_agreement``): the
    specialist is outside the images it knows, and ``general`` segments the image
    instead. Darker particles (bright-field TEM), or none found, go to ``general``
    directly. ``general`` also estimates the particle diameter for ``diameter="auto"``:
    its size model was fitted on its own outputs.
    """

    general: Segmenter
    bright: Segmenter
    name: str = "auto"
    #: Set on the val images and the procedural sample (the auto card, "Data, and how the rule was set").
    min_agreement: float = 0.82

    @property
    def card(self) -> dict:
        return {"auto": f"per image: {self.bright.name} for bright particles on a dark background "
                        f"(foreground IoU >= {self.min_agreement} with {self.general.name}'s), else {self.general.name}",
                "general": self.general.card, "bright": self.bright.card}

    @property
    def sizer(self) -> Segmenter:
        return self.general

    @property
    def size_model(self) -> SizeModel | None:
        return self.general.size_model

    @property
    def coarse_sizing(self) -> CoarseSizing | None:
        return self.general.coarse_sizing

    @property
    def diameter_px(self) -> float:
        return self.general.diameter_px

    def candidates(self, grey: np.ndarray, rows: slice, factor: float) -> list[Candidate]:
        # at the scale the networks will see: `general` is trained for particles near its diameter
        first = polarity_pass(grey, self.general, rows, factor)
        if first.polarity <= 0:
            return [(self.general, None)]
        return [(self.bright, lambda fg: first.agreement(fg, rows) >= self.min_agreement), (self.general, None)]


def passes_only(segmenter: "Segmenter | AutoSegmenter") -> "Segmenter | AutoSegmenter":
    """``segmenter`` (an ``auto`` one's two networks) without a final confidence model: its particles judged as
    each pass judges them, which is what the scale, polarity and enlargement checks compare and what
    ``nanogan fit-confidence`` learns from."""
    if isinstance(segmenter, AutoSegmenter):
        return replace(segmenter, general=passes_only(segmenter.general), bright=passes_only(segmenter.bright))
    if getattr(segmenter, "final_confidence_model", None) is None:
        return segmenter
    return replace(segmenter, final_confidence_model=None)


def load_segmenter(name_or_path: str | os.PathLike = DEFAULT_SEGMENTER, *, device=None) -> Segmenter | AutoSegmenter:
    """A segmenter from a shipped name, a remote name, a user model or a checkpoint path.

    ``auto`` (the default) gives an :class:`AutoSegmenter`, which
    :func:`~napari_nanogan.segmentation.segment` takes like any segmenter.
    """
    name = str(name_or_path)
    if name in AUTO_SEGMENTERS and not Path(name).expanduser().is_file():
        general, bright = (_load(member, device) for member in AUTO_SEGMENTERS[name])
        return AutoSegmenter(general, bright, name=name)
    return _load(name_or_path, device)


def _load(name_or_path, device) -> Segmenter:
    path = resolve_model(name_or_path, kind=ModelKind.SEGMENTER)
    try:
        return Segmenter.from_checkpoint(path, device=device, name=str(name_or_path))
    except CheckpointError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: weights do not fit the stored configuration ({reason})") from None
