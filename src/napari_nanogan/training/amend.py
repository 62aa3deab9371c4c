"""Edits of trained checkpoints: what ``nanogan tune``, ``fit-size`` and ``tune-generator`` write.

Each takes a checkpoint, changes one part (the post-processing, the size model, the
finishing or the textures), records how in its provenance, and writes a new file; the
network's weights are never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..config import Finishing, ModelKind, PostprocessConfig, TextureConfig
from ..models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..segmentation.sizing import SizeModel


#: What makes another segmenter estimate the diameter for this one (a fine-tuned model's): a size model
#: fitted on this one's own outputs replaces it.
SIZER_KEYS = ("size_reference", "size_reference_sha256", "size_correction")


def amend_checkpoint(source, destination, *, kind: ModelKind, changes: dict | None = None,
                     remove: tuple[str, ...] = (), provenance: dict | None = None) -> Path:
    """A copy of ``source`` with ``changes`` set, ``remove`` keys dropped and ``provenance`` merged in.

    A fine-tuned bundle stays a bundle: its ``kind`` part is amended, its other parts and
    its model card are kept.
    """
    data = load_checkpoint(source, kind=kind)
    data.pop("format_version")
    for key in remove:
        data.pop(key, None)
    data.update(changes or {})
    data.setdefault("provenance", {}).update(provenance or {})
    return _save_part(source, destination, kind, data, sorted(changes or {}) + [f"-{k}" for k in remove])


def _save_part(source, destination, kind: ModelKind, part: dict, what: list[str]) -> Path:
    """Write ``part`` (one model, amended from ``source``); a fine-tuned bundle stays a bundle, its other
    parts and card kept.

    The card's scores (``before``, ``after``, ``better``) were measured on the model as
    fine-tuned: the card lists each later change (``amended``: the part and the keys set,
    or removed with ``-``; how is in the part's provenance) so that they are not read as
    the amended model's.
    """
    whole = load_checkpoint(source)
    if whole.get("kind") == ModelKind.BUNDLE.value:
        whole.pop("format_version")
        card = dict(whole.get("card") or {})
        if card:
            card["amended"] = [*card.get("amended", []), {
                "part": ModelKind(kind).value, "changed": what,
                "note": "the card's before/after scores were measured before this change"}]
        return save_checkpoint(destination, {**whole, ModelKind(kind).value: part, **({"card": card} if card else {})})
    return save_checkpoint(destination, part)


def with_postprocess(source, destination, postprocess: PostprocessConfig, tuning: dict) -> Path:
    """The segmenter with ``postprocess`` (``tuning``: how it was chosen)."""
    return amend_checkpoint(source, destination, kind=ModelKind.SEGMENTER, changes={"postprocess": postprocess.to_dict()},
                            provenance={"postprocess_tuning": tuning})


def with_size_model(source, destination, size_model: SizeModel, fitting: dict) -> Path:
    """The segmenter with a size model for ``diameter="auto"`` (``fitting``: data, command, metrics)."""
    return amend_checkpoint(source, destination, kind=ModelKind.SEGMENTER, changes={"size_model": size_model.to_dict()},
                            remove=SIZER_KEYS, provenance={"size_model": fitting})


def with_confidence_model(source, destination, model, fitting: dict,
                          postprocess: PostprocessConfig | None = None, *, final: bool = False) -> Path:
    """The segmenter with a confidence model (``fitting``: data, command, metrics), and with ``postprocess``
    (its ``min_confidence`` chosen with it) when given; ``final``: as the final particles' confidence model
    (:attr:`~napari_nanogan.segmentation.Segmenter.final_confidence_model`), the passes' one kept. A new
    passes' model leaves out the final one: that was fitted on the particles the old one kept."""
    key = "final_confidence_model" if final else "confidence_model"
    changes = {key: model.to_dict()}
    if postprocess is not None:
        changes["postprocess"] = postprocess.to_dict()
    return amend_checkpoint(source, destination, kind=ModelKind.SEGMENTER, changes=changes,
                            remove=() if final else ("final_confidence_model",), provenance={key: fitting})


def fit_finishing(real_images: list[np.ndarray], *, blur: float = 0.7, generator=None,
                  pairs: list[tuple[np.ndarray, np.ndarray]] | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  particle_spread: float | None = None) -> Finishing:
    """The finishing that makes a generator's images look like ``real_images``.

    The noise level is the median of the real images' (:func:`~napari_nanogan.synthesis.finishing.noise_level`).
    With ``generator`` and annotated ``pairs`` (image, labels), the grey-level gain and
    offset too: the masks are synthesized (seeds 100000 + i, the network's raw output,
    blurred by ``blur``) and mapped to the paired images' pooled mean and spread; and the
    particle-to-particle contrast spread
    (:func:`~napari_nanogan.synthesis.finishing.particle_contrast_spread`) that the real
    images have beyond the synthetic ones', unless ``particle_spread`` is given (0: none).
    """
    from ..synthesis import synthesize
    from ..synthesis.finishing import calibration, noise_level, particle_contrast_spread

    if not blur >= 0:
        raise ValueError("the blur must be a non-negative number of pixels")
    if not real_images:
        raise ValueError("no real images to measure the noise level on")
    if particle_spread is not None and not (np.isfinite(particle_spread) and particle_spread >= 0):
        raise ValueError("the particle contrast spread must be a finite number >= 0")
    gain, offset, spread = 1.0, 0.0, particle_spread or 0.0
    if pairs:
        from scipy import ndimage as ndi

        synthetic = []
        for i, (_, labels) in enumerate(pairs):
            raw = synthesize(labels, generator, seed=10**5 + i, raw=True).astype(np.float32)
            synthetic.append(ndi.gaussian_filter(raw, blur) if blur > 0 else raw)
            if progress is not None:
                progress(i + 1, len(pairs))
        gain, offset = calibration([image for image, _ in pairs], synthetic)
        if particle_spread is None:
            masks = [labels for _, labels in pairs]
            real = particle_contrast_spread([image for image, _ in pairs], masks)
            drawn = particle_contrast_spread(synthetic, masks)
            spread = float(np.sqrt(max(real**2 - drawn**2, 0.0)))
    noise = float(np.median([noise_level(image) for image in real_images]))
    return Finishing(blur_sigma=blur, noise_residual=noise, gain=gain, offset=offset, particle_spread=spread)


def _texture_part(path, kind: ModelKind) -> dict:
    """A texture checkpoint as a generator stores it (network, config, gain, provenance), or ValueError."""
    from ..synthesis.texture import LearnedTexture

    try:
        data = load_checkpoint(path, kind=kind)
        loaded = LearnedTexture.from_dict(data)  # loads, or says why not
    except (CheckpointError, KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    return {**loaded.to_dict(), "provenance": data.get("provenance", {})}


def with_finishing(source, destination, finishing: Finishing, *, texture: str | Path | None = None,
                   particle_texture: str | Path | None = None, texture_margin: int | None = None,
                   tuning: dict | None = None) -> dict:
    """The generator with ``finishing`` and, optionally, textures embedded or removed.

    ``texture`` / ``particle_texture``: a texture checkpoint (``nanogan train-texture``) to
    embed, ``"none"`` to remove the generator's, or None to keep what it has.
    ``texture_margin``: lay the substrate texture this many pixels from the particles.
    Returns what the new checkpoint holds (``finishing``, whether it has each texture).
    Raises ``ValueError`` naming the option at fault.
    """
    data = load_checkpoint(source, kind=ModelKind.GENERATOR)
    data.pop("format_version")
    data["postprocess"] = finishing.to_dict()
    changed = ["postprocess"]  # for a bundle's card
    for key, value, kind, flag in (("substrate_texture", texture, ModelKind.SUBSTRATE_TEXTURE, "--texture"),
                                   ("particle_texture", particle_texture, ModelKind.PARTICLE_TEXTURE,
                                    "--particle-texture")):
        if value is None:
            continue
        if str(value) == "none":
            data.pop(key, None)
            changed.append(f"-{key}")
            continue
        try:
            data[key] = _texture_part(value, kind)
        except ValueError as exc:
            raise ValueError(f"{flag}: {exc}") from None
        changed.append(key)
    if texture_margin is not None:
        if texture_margin < 0:
            raise ValueError("--texture-margin must be >= 0")
        if not data.get("substrate_texture"):
            raise ValueError("--texture-margin: the generator has no substrate texture (give --texture)")
        try:
            config = TextureConfig.from_dict({**data["substrate_texture"]["config"], "margin": texture_margin})
        except ValueError as exc:
            raise ValueError(f"--texture-margin: {exc}") from None
        data["substrate_texture"] = {**data["substrate_texture"], "config": config.to_dict()}
        changed += [] if "substrate_texture" in changed else ["substrate_texture"]
    data.setdefault("provenance", {})["postprocess_tuning"] = dict(tuning or {})
    _save_part(source, destination, ModelKind.GENERATOR, data, changed)
    return {"postprocess": finishing.to_dict(), "substrate_texture": "substrate_texture" in data,
            "particle_texture": "particle_texture" in data}


def finish_adapted_generator(adapted: dict, base: dict, images: list[np.ndarray], labels: list[np.ndarray]) -> dict:
    """A generator checkpoint fine-tuned by the cycle GAN, finished to look like ``images`` again.

    The cycle GAN trains the Style U-Net alone: its ``generator.pt`` has no finishing (blur,
    grey-level calibration, particle contrast, noise) and none of the ``base`` generator's textures, so its images
    would be noise-free and flat. This keeps the base's textures, refits their amplitude on
    the annotated ``images`` and ``labels`` (where they have enough of the region), and fits
    the finishing on them (:func:`fit_finishing`, with the base's blur and particle contrast
    spread). Returns the new checkpoint dict (``adapted`` is not changed).
    """
    from ..synthesis.generator import Generator
    from ..synthesis.texture import LearnedTexture

    if not images or len(images) != len(labels):
        raise ValueError(f"need as many masks as images (and at least one), got {len(images)} and {len(labels)}")
    part = {key: value for key, value in adapted.items() if key not in ("substrate_texture", "particle_texture")}
    refitted = {}
    for key in ("substrate_texture", "particle_texture"):
        if not base.get(key):
            continue
        texture = LearnedTexture.from_dict(base[key])
        try:
            texture.fit_gain(images, labels)
        except ValueError:  # none of that region in the annotated images: the base's amplitude stays
            pass
        part[key] = {**texture.to_dict(), "provenance": dict(base[key].get("provenance", {}))}
        refitted[key] = round(float(texture.gain), 4)
    generator = Generator.from_dict(part, device="cpu")  # calibrated on its raw output: textures play no part
    own = Finishing.from_dict(base["postprocess"]) if base.get("postprocess") else Finishing(blur_sigma=0.7)
    # the base's particle contrast spread is kept, not fitted on the k images: on the adaptation study
    # (bench.adaptation, k = 2, tem -> BAM) fitting it lowered F1 on every seed (0.672 -> 0.617, 0.489 -> 0.418, 0.484 -> 0.446)
    finishing = fit_finishing(list(images), blur=own.blur_sigma, generator=generator, pairs=list(zip(images, labels)),
                              particle_spread=own.particle_spread)
    part["postprocess"] = finishing.to_dict()
    part["provenance"] = {**part.get("provenance", {}), "finished_on": f"{len(images)} annotated images",
                          "texture_gains": refitted}
    return part
