"""Frozen configuration dataclasses shared by the library, the CLI and the widgets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


def _from_dict(cls, data: dict):
    """Build ``cls`` from a dict, ignoring unknown keys (forward compatibility)."""
    names = {f.name for f in fields(cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
    return cls(**kwargs)


@dataclass(frozen=True)
class SegmenterConfig:
    """Architecture of the Attention U-Net segmenter.

    Attributes
    ----------
    base_channels : int
        Feature channels at full resolution; doubled at each level.
    depth : int
        Number of resolution levels (``depth - 1`` poolings).
    out_channels : int
        Output maps: 0 = particle foreground logit, 1 = particle interior (seed) logit.
    norm : str
        ``"group"`` (default) or ``"batch"`` normalisation. Group norm, because batch
        norm's running statistics, gathered over small batches that mix SEM (dark
        background) and TEM (bright background) patches, fit neither domain at
        inference: measured on the BAM validation images at step 1500, eval-mode batch
        norm gave IoU 0.65 where the same weights with per-tile statistics gave 0.84.
    """

    base_channels: int = 16
    depth: int = 4
    out_channels: int = 2
    norm: str = "group"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SegmenterConfig":
        return _from_dict(cls, data)

    @property
    def multiple(self) -> int:
        """Input sides must be a multiple of this (padding is added by inference)."""
        return 2 ** (self.depth - 1)


@dataclass(frozen=True)
class PostprocessConfig:
    """Turning probability maps into one label per particle.

    Attributes
    ----------
    fg_threshold : float
        Foreground probability above which a pixel belongs to a particle.
    seed_threshold : float
        Interior probability above which a pixel is a particle seed.
    min_seed_area : int
        Seeds smaller than this (pixels) are dropped as noise.
    min_area : int
        Particles smaller than this (pixels) are removed.
    seed_method : str
        ``"components"``: each 4-connected blob of interior probability above
        ``seed_threshold`` is a seed; ``"peaks"``: local maxima of the interior
        probability (smoothed by ``smooth_sigma``) at least ``min_distance`` apart;
        ``"distance"``: local maxima of the foreground's distance transform (the
        classical split, ignoring the interior map); ``"combined"``: local maxima of
        the mean of the interior probability and the normalised distance transform.
    smooth_sigma : float
        Gaussian smoothing (pixels) of the interior map before seeding and flooding.
    min_distance : int
        Smallest distance between two peak seeds (``"peaks"`` only).
    merge_depth : float
        After the watershed, neighbouring regions of one component are merged when
        the pass between them (the highest relief on their shared border) lies less
        than this below the lower of their two peaks: a particle whose interior
        probability dips in the middle gave it two seeds, but no real boundary
        separates them (merging by dynamics). 0 (default) merges nothing. In units of
        the relief: interior probability, or the normalised depth for distance seeds.
    """

    fg_threshold: float = 0.5
    seed_threshold: float = 0.5
    min_seed_area: int = 4
    min_area: int = 16
    seed_method: str = "components"
    smooth_sigma: float = 0.0
    min_distance: int = 5
    merge_depth: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PostprocessConfig":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TrainConfig:
    """Segmenter training schedule.

    Attributes
    ----------
    steps : int
        Optimiser steps in total.
    batch_size, patch_size : int
        Patches per step and their side in pixels.
    lr : float
        Peak AdamW learning rate (cosine decay after a short warm-up).
    weight_decay : float
        AdamW weight decay.
    val_every, checkpoint_every : int
        Steps between validation (checkpoint selection) and between checkpoints.
    scale_range : tuple of float
        Isotropic scale jitter of training patches.
    seed : int
        Seed of every random draw in training.
    warmup_steps : int
        Steps of linear learning-rate warm-up.
    contact_weight : float
        Extra BCE weight on the contact zone between touching particles
        (``data.targets.contact_zone``): pixel weight ``1 + contact_weight`` there, 1
        elsewhere. 0 (default) trains unweighted.
    seed_depth : float
        Depth cap (pixels) of the interior (seed) target: a pixel is interior at a
        distance from its particle's edge of ``min(seed_depth, half the particle's
        deepest distance)``. 0 removes the cap: seeds are every particle's inner core,
        so large overlapping particles get seeds far apart. Default 4.
    """

    steps: int = 3000
    batch_size: int = 4
    patch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_every: int = 250
    checkpoint_every: int = 100
    scale_range: tuple = (0.75, 1.33)
    seed: int = 0
    warmup_steps: int = 100
    contact_weight: float = 0.0
    seed_depth: float = 4.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of the Style U-Net generator (mask -> image).

    Attributes
    ----------
    in_channels : int
        Mask maps: particle foreground and particle interior (the segmenter's outputs).
    base_channels, depth : int
        U-Net width at full resolution and number of resolution levels.
    style_dim : int
        Size of the latent ``z`` and of the style vector ``w``.
    mapping_layers : int
        Depth of the MLP mapping ``z`` to ``w``.
    noise_init : float
        Initial per-channel strength of the injected noise (learned afterwards).
    """

    in_channels: int = 2
    base_channels: int = 16
    depth: int = 4
    style_dim: int = 64
    mapping_layers: int = 4
    noise_init: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GeneratorConfig":
        return _from_dict(cls, data)

    @property
    def multiple(self) -> int:
        return 2 ** (self.depth - 1)


DEFAULT_SEGMENTER = SegmenterConfig()
DEFAULT_POSTPROCESS = PostprocessConfig()
