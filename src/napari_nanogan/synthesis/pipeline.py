"""Masks to images: the Style U-Net draws, then the finishing and textures make it look measured."""

from __future__ import annotations

from typing import Container, Iterable, Iterator

import numpy as np
import torch

from ..config import MAX_MASK_SIDE, MIN_MASK_SIDE
from ..data.targets import separator_lines, targets_from_labels
from ..io.masks import check_mask
from ..io.pairs import Pair
from .finishing import finish
from .generator import Generator


def synthesis_seed(seed: int, k: int) -> int:
    """The seed of image ``k`` of a run with seed ``seed`` (distinct per k, reproducible)."""
    return int(seed) * 100_003 + int(k)


#: The foreground the generator is given on the lines that separate touching particles in a mask: a
#: contact, half particle. Drawn as background (0), touching particles came out with dark seams (contact
#: level 0.36 on BAM training masks against 0.67 in the real images; ../shared/tools/seam.py); at 0.5, 0.64.
CONTACT_LEVEL = 0.5


def mask_maps(mask: np.ndarray) -> np.ndarray:
    """Validate a binary or instance-label mask and return the generator's input maps [2, M, N]:
    particle foreground (:data:`CONTACT_LEVEL` on the lines between touching particles) and interior.

    Raises
    ------
    ValueError
        For non-2D masks, masks with negative or non-integer labels, and sizes out of range.
    """
    return _labels_and_maps(mask)[1]


def _labels_and_maps(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = np.shape(mask)
    if len(shape) == 2 and (min(shape) < MIN_MASK_SIDE or max(shape) > MAX_MASK_SIDE):
        raise ValueError(f"mask of shape {shape}: each side must be within {MIN_MASK_SIDE}..{MAX_MASK_SIDE} pixels")
    labels = check_mask(mask)
    if min(labels.shape) < MIN_MASK_SIDE or max(labels.shape) > MAX_MASK_SIDE:
        raise ValueError(f"mask of shape {labels.shape}: each side must be within {MIN_MASK_SIDE}..{MAX_MASK_SIDE} pixels")
    maps = targets_from_labels(labels)
    maps[0][separator_lines(labels)] = CONTACT_LEVEL
    return labels, maps


def synthesize(mask: np.ndarray, generator: Generator, *, seed: int = 0, raw: bool = False) -> np.ndarray:
    """One grey uint8 image of exactly the mask's height and width.

    The same (mask, seed, generator) gives the same image at the same precision
    (``generator.precision``: bf16 on CPUs with native bf16 kernels, else fp32; the two
    differ by a grey level or so, ``$NANOGAN_PRECISION`` fixes it); different seeds give
    different styles (latent) and textures (noise maps). Empty and all-foreground masks
    are valid; an empty one gives a bare substrate, an all-foreground one an image as dark
    as substrate in some styles (the shipped generators never saw a field without
    substrate: docs/model-card-generator.md, "Limitations"). ``raw=True``
    returns the network's output without the generator's finishing (blur, calibration,
    particle contrast, noise) and without its learned textures.
    """
    labels, maps = _labels_and_maps(mask)
    h, w = maps.shape[1:]
    m = generator.config.multiple
    ph, pw = -(-h // m) * m - h, -(-w // m) * m - w
    padded = np.pad(maps, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    rng = torch.Generator().manual_seed(int(seed))
    net = generator.sampler()
    device, dtype = generator.device, next(net.parameters()).dtype
    x = torch.from_numpy(padded)[None].to(device, dtype)  # [1, 2, H, W]
    z = net.sample_latents(1, generator=rng).to(device, dtype)
    noise = [t.to(device, dtype) for t in net.sample_noise(1, tuple(padded.shape[1:]), generator=rng)]
    with torch.inference_mode():
        out = net(x, z, noise)[0, 0, :h, :w].float().cpu().numpy()
    image = np.clip(np.round((out + 1) * 127.5), 0, 255).astype(np.uint8)
    if raw:
        return image
    return finish(image, labels, generator, seed)


def synthetic_pairs(masks: Iterable[tuple[str, np.ndarray, float | None, str]], generator: Generator, *, n: int,
                    seed: int = 0, model: str | None = None, model_sha256: str | None = None,
                    skip: Container[str] = (), extra: dict | None = None) -> Iterator[Pair]:
    """``n`` synthetic image-mask pairs per mask, one at a time (for ``nanogan export`` and the Export panel).

    ``masks`` yields (name, instance labels, pixel size in nm or None, where the mask came
    from); pair ``k`` of mask ``name`` is called ``<name>_<k>`` and drawn with
    :func:`synthesis_seed` ``(seed, k)``. Pairs named in ``skip`` (already written) are not
    drawn; ``extra`` goes into every pair's manifest entry.
    """
    for name, labels, pixel_size_nm, source in masks:
        for k in range(n):
            if f"{name}_{k}" in skip:
                continue
            s = synthesis_seed(seed, k)
            yield Pair(f"{name}_{k}", synthesize(labels, generator, seed=s), labels, source=source, seed=s,
                       model=model, model_sha256=model_sha256, pixel_size_nm=pixel_size_nm,
                       extra={"precision": generator.precision, **(extra or {})})
