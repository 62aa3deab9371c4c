"""Configuration of training: the segmenter, the cycle GAN, textures, augmentation, fine-tuning."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from .base import Config


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Patch augmentation (:mod:`napari_nanogan.data.augment`): geometry, then intensity."""

    scale_range: tuple = (0.75, 1.33)
    contrast: tuple = (0.7, 1.3)
    brightness: float = 0.1
    gamma: tuple = (0.7, 1.5)
    blur_prob: float = 0.3
    blur_sigma: tuple = (0.3, 1.2)
    noise_prob: float = 0.5
    noise_sigma: tuple = (0.01, 0.08)
    #: Chance that a patch gets text, scale bars, arrows, panel letters, frames or an info bar drawn on it
    #: (``data.distractors``), with the particle pixels under them made background.
    distractor_prob: float = 0.0
    #: Chance that a patch's grey levels are mirrored (bright particles become dark and the reverse),
    #: before the intensity augmentation: polarity-robust training.
    invert_prob: float = 0.0
    #: Chance that a patch is given another microscope's look (``data.styles.restyle``: edge
    #: brightening or fringes, shading, uneven illumination, a grainy matrix), after any inversion.
    style_prob: float = 0.0
    #: Chance that a patch's background gets a polycrystalline matrix drawn on it
    #: (``data.styles.draw_matrix``: grains, boundaries and lamellae at the particles' scale).
    matrix_prob: float = 0.0

    def __post_init__(self):
        _check_probabilities(self, "distractor_prob", "invert_prob", "style_prob", "matrix_prob")


def _check_probabilities(config, *names: str) -> None:
    for name in names:
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name} is a probability, within 0..1; got {getattr(config, name)}")


#: Real images as the critics see them: geometric augmentation only.
GEOMETRY_ONLY = AugmentConfig(contrast=(1.0, 1.0), brightness=0.0, gamma=(1.0, 1.0), blur_prob=0.0, noise_prob=0.0)


#: The largest training patch side (px) taken (the recipes use 256; one larger than this is a slip, and its
#: batch would not fit in memory).
MAX_PATCH = 2048


@dataclass(frozen=True)
class TrainConfig(Config):
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
    distractor_prob : float
        Chance that a training patch gets figure marks drawn on it (text, scale bars,
        arrows, panel letters, frames, info bars; ``data.distractors``), which are background in its
        targets. 0 (default): none.
    invert_prob : float
        Chance that a training patch's grey levels are mirrored (bright particles become dark,
        dark ones bright; ``data.augment``), so the network learns particles of both polarities
        from every image. 0 (default): never.
    style_prob : float
        Chance that a training patch is drawn in another imaging style (``data.styles``: edge
        brightening or Fresnel fringes, shading, uneven illumination, a grainy matrix), so
        the network meets the looks of microscopes its data lack. 0 (default): never.
    matrix_prob : float
        Chance that a training patch's background gets a polycrystalline matrix drawn on it
        (``data.styles.draw_matrix``: grains of the particles' scale, etched or bright
        boundaries, lamellae), which stays background in its targets. 0 (default): never.
    precision : str
        Arithmetic of the forward and backward passes: ``"fp32"``, ``"bf16"`` (autocast;
        weights, optimiser and loss stay fp32), or ``"auto"`` (default): bf16 on CPUs that
        run it natively, fp32 elsewhere and on GPUs, ``$NANOGAN_PRECISION`` deciding if set
        (:func:`~napari_nanogan.models.runtime.training_precision`).
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
    distractor_prob: float = 0.0
    invert_prob: float = 0.0
    style_prob: float = 0.0
    matrix_prob: float = 0.0
    precision: str = "auto"

    def __post_init__(self):
        _check_probabilities(self, "distractor_prob", "invert_prob", "style_prob", "matrix_prob")
        for name in ("steps", "batch_size", "val_every", "checkpoint_every"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not 32 <= self.patch_size <= MAX_PATCH:  # (a multiple of the network's: train_segmenter checks it)
            raise ValueError(f"patch_size must be from 32 to {MAX_PATCH} px, not {self.patch_size} (patches are "
                             "crops of the training images; smaller images are padded to it)")
        for name in ("lr", "contact_weight", "weight_decay"):  # (lr 0: the weights stay as they start)
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number of at least 0, not {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")


#: Training arithmetic choices (``TrainConfig.precision``).
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class GanLossWeights(Config):
    """Weights of the cycle GAN's loss terms (see :mod:`napari_nanogan.training.cyclegan`)."""

    adv_image: float = 1.0
    adv_mask: float = 0.5
    cycle_mask: float = 5.0
    cycle_image: float = 2.0
    supervised_mask: float = 5.0
    supervised_image: float = 2.0
    diversity: float = 1.0
    adv_texture: float = 0.0
    adv_substrate: float = 0.0
    adv_particles: float = 0.0


@dataclass(frozen=True)
class GanTrainConfig(Config):
    """Cycle-GAN schedule.

    ``segmenter_augment``, ``contact_weight`` and ``segmenter_patch_size`` (default:
    ``patch_size``) shape the segmenter's supervised batch; ``val_every`` steps between
    validations of the segmenter when validation images are given (``segmenter_best.pt``
    keeps the best). ``critic_channels`` is the first layer's width of the image,
    substrate and particle critics (doubling per layer). The first ``critic_warmup``
    steps train the critics alone against the networks as they are: a run continued from
    trained weights starts with fresh critics, and a fresh critic needs on the order of
    1,500 steps of batch 8 to tell the shipped generator's images from real ones
    (``python -m bench.critic_probe``); until then its gradient is noise.
    """

    steps: int = 2000
    batch_size: int = 4
    patch_size: int = 128
    lr_generator: float = 2e-4
    lr_segmenter: float = 2e-4
    lr_critic: float = 2e-4
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    seed: int = 0
    weights: GanLossWeights = field(default_factory=GanLossWeights)
    segmenter_augment: bool = True
    contact_weight: float = 0.0
    val_every: int = 500
    segmenter_patch_size: int | None = None
    critic_channels: int = 32
    critic_warmup: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> "GanTrainConfig":
        data = dict(data)
        weights = GanLossWeights.from_dict(data.pop("weights", {}))
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names}, weights=weights)


@dataclass(frozen=True)
class TextureTrainConfig(Config):
    """Steps, batch and optimiser of a texture network's training (about 0.2 s/step on 2 CPU cores)."""

    steps: int = 24000
    batch_size: int = 8
    patch_size: int = 96
    lr: float = 2e-4
    checkpoint_every: int = 500
    seed: int = 0
    #: Patches hold at least this fraction of the texture's region (particles cover about 10 % of BAM).
    min_fraction: float = 0.5

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ValueError("steps, batch_size and checkpoint_every must be >= 1")
        if self.patch_size < 32 or self.patch_size % 8:
            raise ValueError(f"patch_size must be a multiple of 8 and >= 32, got {self.patch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 < self.min_fraction <= 1:
            raise ValueError(f"min_fraction must be in (0, 1], got {self.min_fraction}")


#: ``train-texture``'s defaults per region: steps, patch side, high-pass sigma (px), share of the patch in the region.
TEXTURE_DEFAULTS = {
    "substrate": {"steps": 24000, "patch_size": 96, "sigma": 16.0, "min_fraction": 0.5},
    "particles": {"steps": 6000, "patch_size": 48, "sigma": 2.0, "min_fraction": 0.25},
}


@dataclass(frozen=True)
class Preset(Config):
    """A fine-tuning recipe: steps of the segmenter on the user's pairs, then (optionally) of the cycle GAN.

    Attributes
    ----------
    segmenter_steps : int
        Supervised steps of the segmenter on the user's annotated rows (with contact weighting).
    gan_steps : int or None
        Then steps of the cycle GAN (generator and segmenter together), so that the bundle's
        generator draws the user's domain; 0 for none, None until stopped (Cancel keeps the model).
    description : str
    patch_size, batch_size : int
    """

    segmenter_steps: int
    gan_steps: int | None
    description: str
    patch_size: int = 192
    batch_size: int = 4


PRESETS = {
    "quick": Preset(300, 0, "300 segmenter steps: the segmenter adapts to your images (a few minutes on a laptop CPU)"),
    "standard": Preset(1000, 600, "1000 segmenter steps, then 600 cycle-GAN steps: the generator learns your images too "
                                  "(about half an hour on a laptop CPU)"),
    "thorough": Preset(1000, None, "1000 segmenter steps, then the cycle GAN until stopped (Cancel keeps the model)"),
}
#: A fine-tuning run that can train fewer steps than this before its time is up is too short to help.
MIN_USEFUL_STEPS = 100


#: The generators' data sets (``train-gan --dataset``, ``tune-generator --dataset``, ``train-texture --dataset``):
#: name -> (shared data set, folder under the data root, description).
GENERATOR_DATASETS = {
    "bam": ("bam", "bam_tio2_sem", "BAM training split (specimen rows)"),
    "emps-tem": ("emps", "emps", "EMPS training split, images with dark particles at the model's scale "
                                 "(training.data.bright_field_samples)"),
}
