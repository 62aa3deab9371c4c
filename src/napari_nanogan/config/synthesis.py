"""Configuration of the generator, its finishing and textures, and the mask designer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Choice, Config, coerce

#: Largest and smallest side (px) of a mask :func:`~napari_nanogan.synthesis.synthesize` accepts.
MAX_MASK_SIDE = 8192
MIN_MASK_SIDE = 8


class TextureRegion(Choice):
    SUBSTRATE = "substrate"
    PARTICLES = "particles"


class Upsample(Choice):
    BILINEAR = "bilinear"
    NEAREST = "nearest"


@dataclass(frozen=True)
class GeneratorConfig(Config):
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

    @property
    def multiple(self) -> int:
        return 2 ** (self.depth - 1)


@dataclass(frozen=True)
class TextureConfig(Config):
    """Architecture of a learned texture network and the band it fills.

    Attributes
    ----------
    z_channels : int
        Channels of the spatial noise at 1/8 resolution (the large-scale layout).
    widths : tuple of int
        Channels at 1/8, 1/4, 1/2 and full resolution (the shipped textures': 32, 24, 16,
        12; textures twice as wide synthesized 1.1-1.2 times slower, with FID 53.4 against 45.6).
    upsample : Upsample
        ``"nearest"`` or ``"bilinear"`` between resolutions.
    sigma : float
        High-pass scale (px): what is texture (finer) and what is the region's level.
    margin : int
        Particles dilated by this many pixels are excluded from the substrate; for
        ``region="particles"``, the particles eroded by this many pixels are filled.
    region : TextureRegion
        ``"substrate"`` or ``"particles"``: where the texture goes.
    blend : float
        Width (px) of the blend into the image at the region's edge (0: a hard edge).
    cond_channels : int
        0: the texture sees noise only; 2: also the region's mask and the depth inside it,
        at each resolution from 1/4 up.
    """

    z_channels: int = 16
    widths: tuple = (32, 24, 16, 12)
    upsample: Upsample = Upsample.BILINEAR
    sigma: float = 16.0
    margin: int = 3
    region: TextureRegion = TextureRegion.SUBSTRATE
    blend: float = 1.5
    cond_channels: int = 0

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(v) for v in self.widths))
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"widths must be 4 positive channel counts, got {self.widths}")
        coerce(self, "upsample", Upsample)
        coerce(self, "region", TextureRegion)
        if not self.sigma > 0 or self.margin < 0 or self.z_channels < 1:
            raise ValueError("sigma must be > 0, margin >= 0 and z_channels >= 1")
        if not self.blend >= 0 or self.cond_channels not in (0, 2):
            raise ValueError(f"blend must be >= 0 and cond_channels 0 or 2, got {self.blend} and {self.cond_channels}")

    def to_dict(self) -> dict:
        return {**super().to_dict(), "widths": list(self.widths)}


@dataclass(frozen=True)
class Finishing(Config):
    """What :func:`~napari_nanogan.synthesis.synthesize` does to the generator's output before any texture.

    In order: a mild blur, a grey-level calibration (``gain * image + offset``), each
    particle's contrast scaled by its own factor, then white noise up to the real images'
    noise level. Stored in a generator checkpoint under
    ``"postprocess"``; ``nanogan tune-generator`` measures and writes it.

    Attributes
    ----------
    blur_sigma : float
        Gaussian blur (px) of the generator's output; 0 for none.
    noise_residual : float
        Target noise level (grey levels; :func:`~napari_nanogan.synthesis.finishing.noise_level`)
        of the real images the generator learned from; Gaussian noise is added up to it,
        0 adds none. The network's images are smoother than real SEM images.
    gain, offset : float
        Grey-level calibration after the blur (``nanogan tune-generator --calibrate``):
        synthetic images of the training masks get the real images' mean and spread.
    particle_spread : float
        Log-SD of a per-particle factor on each particle's contrast to the background
        (:func:`~napari_nanogan.synthesis.finishing.vary_particle_contrast`): real SEM
        particles of one field differ in brightness, the network draws them alike.
        ``nanogan tune-generator --calibrate`` fits it (the real images' spread beyond the
        network's); 0 (default) varies nothing.
    """

    blur_sigma: float = 0.0
    noise_residual: float = 0.0
    gain: float = 1.0
    offset: float = 0.0
    particle_spread: float = 0.0

    def __post_init__(self):
        if not (math.isfinite(self.particle_spread) and self.particle_spread >= 0):
            raise ValueError(f"particle_spread must be a finite number >= 0, got {self.particle_spread}")
        for name in ("blur_sigma", "noise_residual", "gain", "offset", "particle_spread"):
            object.__setattr__(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class MaskDesign(Config):
    """Physical description of a particle field (:func:`~napari_nanogan.data.designer.design_mask`).

    Attributes
    ----------
    height, width : int
        Image size in pixels.
    pixel_size_nm : float
        Pixel side in nm.
    median_nm, sigma : float
        Log-normal ECD distribution: median in nm and spread (std of ln d).
    count : int or None
        Particles to place; when None, ``coverage`` decides.
    coverage : float
        Target fraction of the area covered by particles (used when ``count`` is None).
    elongation : float
        0 = round; larger values give more elongated particles (mean 1 - minor/major).
    clustering : float
        0 = dispersed; 1 = every particle touches an earlier one (agglomerates).
    facets : int
        0 = smooth (elliptical) outlines; 3 or more = faceted polygons with that many sides.
    overlap : float
        Largest fraction of a particle hidden behind its neighbours (0 = whole
        particles that touch at most; up to 0.9).
    seed : int
    """

    height: int = 712
    width: int = 1024
    pixel_size_nm: float = 7.344
    median_nm: float = 175.0
    sigma: float = 0.3
    count: int | None = 150
    coverage: float = 0.25
    elongation: float = 0.2
    clustering: float = 0.6
    facets: int = 0
    overlap: float = 0.4
    seed: int = 0

    def expected_count(self) -> int:
        if self.count is not None:
            return int(self.count)
        mean_area_px = math.pi / 4 * (self.median_nm / self.pixel_size_nm) ** 2 * math.exp(2 * self.sigma**2)
        return max(1, int(round(self.coverage * self.height * self.width / mean_area_px)))
