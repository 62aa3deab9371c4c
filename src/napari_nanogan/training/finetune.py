"""One-click fine-tuning on the user's own annotated images.

Starts from the model the user segments with (``auto`` chooses, per the user's images,
the network it would use for them) and trains it on the user's pairs: first the
segmenter alone (supervised, touching particles weighted), then, in the longer presets,
the cycle GAN, so that the bundle's generator also learns the user's images. The
post-processing is then re-tuned on the user's training rows, and the particle-diameter
estimate calibrated on them: the shipped sizer the user segmented with still estimates
(its size model was fitted on its own outputs), times the factor that makes its estimates
match the annotated diameters. The result is a *bundle*
checkpoint (segmenter + generator + model card) that works as ``--model`` for both
``nanogan segment`` and ``nanogan synthesize``.

Validation: with few images a held-out image is a luxury, so each annotated image is
split by rows: the bottom ``val_fraction`` is held out (never trained on) and segmented
before and after exactly as the Segment panel and ``nanogan segment`` do (the chosen
model, the particle diameter estimated). The result says whether the model scores clearly
better there, no differently, or worse (:func:`judge`, ``FinetuneResult.verdict``), and
whether that judgement is rough (few held-out particles, or too few training steps).
"""

from __future__ import annotations

import dataclasses
import numbers
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Generator

import numpy as np

from .. import __version__
from ..config import MIN_USEFUL_STEPS, PRESETS, GanTrainConfig, GeneratorConfig, ModelKind, TrainConfig
from ..data.datasets import Sample
from ..measure import median_diameter
from ..metrics.segmentation import summarize
from ..models.attention_unet import AttentionUNet
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.registry import (DEFAULT_GENERATOR, DEFAULT_SEGMENTER, SHIPPED_SEGMENTERS, ModelNotFoundError,
                               resolve_model)
from ..segmentation import Segmenter, can_estimate_diameter, load_segmenter, segment
from ..segmentation.sizing import MIN_ESTIMATE_SIDE, estimate_diameter
from ..segmentation.tiles import MIN_SIDE
from .amend import finish_adapted_generator
from .cyclegan import train_cyclegan
from .data import model_scale_factor, shrink_sample
from .loop import TrainProgress
from .segmenter import train_segmenter
from .tuning import tune_postprocess


MIN_VAL_PARTICLES = 20
#: Held-out F1 must move by this much for a verdict on it; within it, foreground IoU by :data:`IOU_MARGIN`.
#: Smaller moves are no clear difference (one more particle found of 20 held out moves F1 by about 0.03).
F1_MARGIN = 0.01
IOU_MARGIN = 0.02
BETTER, SAME, WORSE = "better", "no clear difference", "worse"


def judge(before: dict, after: dict) -> str:
    """:data:`BETTER`, :data:`SAME` or :data:`WORSE`: held-out F1 first, foreground IoU where F1 moved under
    :data:`F1_MARGIN`, and no clear difference where neither moved by its margin."""
    for key, margin in (("f1", F1_MARGIN), ("iou", IOU_MARGIN)):
        change = after[key] - before[key]
        if abs(change) >= margin - 1e-9:  # (0.84 - 0.83 is 0.00999... in floating point)
            return BETTER if change > 0 else WORSE
    return SAME


@dataclass
class FinetuneResult:
    """What a fine-tuning run wrote and how its held-out scores moved (``verdict``: :func:`judge`; ``better``:
    clearly better; ``rough``: the verdict rests on under :data:`MIN_VAL_PARTICLES` held-out particles or on
    too few training steps to help)."""

    path: Path
    before: dict
    after: dict
    steps: int
    seconds: float
    warnings: list = field(default_factory=list)
    verdict: str = WORSE
    rough: bool = False
    size_calibration: dict | None = None  # see :func:`size_calibration`
    stopped: bool = False  # ``should_stop`` ended the training before all its planned steps

    @property
    def better(self) -> bool:
        return self.verdict == BETTER


def verdict_text(result: FinetuneResult, base: str, use: str, longer: str = "fine-tune longer") -> str:
    """What to do with a fine-tuned model, from its verdict, in the words of the panel and the CLI (``use``: how
    to choose it there; ``longer``: how to train longer there)."""
    if result.verdict != BETTER:
        how = "no clear difference from" if result.verdict == SAME else "NOT better than"
        return f"{how} {base} on your held-out rows: keep segmenting with {base} (or annotate more, or {longer})"
    if result.steps == 0:  # stopped before any step: the retuned post-processing alone
        return (f"better on your held-out rows through its retuned post-processing alone (no training step ran): "
                f"{use}, or {longer}")
    if result.rough:
        return ("better on your held-out rows, but the scores are rough (few held-out particles or training steps: "
                f"see the warnings): check it on another annotated image, then {use}")
    return f"better than {base} on your held-out rows: {use}"


def split_rows(samples: list[Sample], val_fraction: float = 0.25) -> tuple[list[Sample], list[Sample]]:
    """Per image: top rows for training, bottom ``val_fraction`` held out."""
    train, val = [], []
    for s in samples:
        cut = int(round(s.image.shape[0] * (1 - val_fraction)))
        if cut < 32 or s.image.shape[0] - cut < 32:
            raise ValueError(f"{s.name}: image of {s.image.shape[0]} rows is too small to hold out a validation part")
        for part, rows in ((train, slice(0, cut)), (val, slice(cut, None))):
            part.append(Sample(s.name, s.image[rows], s.labels[rows], s.low, s.high, s.domain))
    return train, val


def check_pairs(pairs: list[Sample], val_fraction: float = 0.25) -> None:
    """A ``ValueError`` naming the first pair that cannot be fine-tuned on (none, a mask empty or without any
    background, too few rows)."""
    if not pairs:
        raise ValueError("no annotated images to fine-tune on")
    for s in pairs:
        if s.labels.max() == 0:
            raise ValueError(f"{s.name}: the mask is empty; annotate some particles first")
        if s.labels.min() > 0:
            raise ValueError(f"{s.name}: the mask is particle everywhere, with no background; is it inverted "
                             "(particles 0, background 1)?")
    split_rows(pairs, val_fraction)


def check_out_path(out_path) -> Path:
    """Where the fine-tuned model goes, checked before any training: a file path in a writable folder."""
    import os

    path = Path(out_path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the fine-tuned model a file path (e.g. {path / 'my-model.pt'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{path.parent}: cannot make the folder ({exc.strerror or type(exc).__name__})") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"{path.parent}: not writable; choose another place for the fine-tuned model")
    return path


def score(model, samples: list[Sample]) -> dict:
    """Scores of ``model`` on ``samples``, segmented as a user's images are (the diameter estimated where it can be)."""
    diameter = "auto" if can_estimate_diameter(model) else None
    pairs = [(s.labels, segment(s.image, model, info_bar=None, diameter=diameter).labels) for s in samples]
    out = summarize(pairs)
    out.pop("per_image")
    return out


def base_network(model, samples: list[Sample]):
    """The network to fine-tune: the segmenter itself, or the one an ``auto`` segmenter picks for most of ``samples``."""
    if isinstance(model, Segmenter):
        return model
    votes: dict[str, int] = {}
    networks = {}
    for s in samples:
        first = model.candidates(np.asarray(s.image, np.float32), slice(None), 1.0)[0][0]
        votes[first.name] = votes.get(first.name, 0) + 1
        networks[first.name] = first
    return networks[max(votes, key=votes.get)]


#: The most a fine-tuned model's diameter estimate is scaled by (either way): beyond it the
#: annotations and the images disagree about what a particle is.
MAX_SIZE_CORRECTION = 4.0


def size_calibration(segmenter, samples: list[Sample]) -> dict | None:
    """The factor that makes ``segmenter``'s diameter estimates match the annotated median diameters of ``samples``.

    The geometric mean of annotated / estimated over the samples (limited to
    :data:`MAX_SIZE_CORRECTION` either way), with both per sample; None where the
    segmenter cannot estimate, or no sample has an estimate and an annotated particle.
    The estimates include the segmenter's own ``size_correction``: the factor replaces it
    when that is 1, and multiplies it otherwise.
    """
    if not can_estimate_diameter(segmenter):
        return None
    estimated, annotated = [], []
    for s in samples:
        truth = median_diameter(s.labels)
        guess = estimate_diameter(s.image, segmenter) if min(s.image.shape) >= MIN_ESTIMATE_SIDE else None
        if guess is not None and np.isfinite(truth) and guess > 0:
            estimated.append(float(guess))
            annotated.append(float(truth))
    if not estimated:
        return None
    log_ratio = float(np.mean(np.log(np.array(annotated) / np.array(estimated))))
    correction = float(np.clip(np.exp(log_ratio), 1 / MAX_SIZE_CORRECTION, MAX_SIZE_CORRECTION))
    return {"correction": round(correction, 4), "estimated_px": [round(v, 2) for v in estimated],
            "annotated_px": [round(v, 2) for v in annotated]}


#: Scale jitter of the fine-tuning patches, whose particles are shrunk to the network's diameter:
#: ``diameter="auto"`` leaves images of particles up to ``AUTO_MIN_RATIO`` (1.25) times that unshrunk,
#: so the fine-tuned network must still see them at those sizes.
FINETUNE_SCALE_RANGE = (0.75, 1.6)


#: Post-processing candidates re-tuned on the user's training rows after training.
RETUNE_GRID = {"seed_method": ["components", "peaks", "combined"], "seed_threshold": [0.4, 0.5, 0.6],
               "fg_threshold": [0.4, 0.5, 0.6], "merge_depth": [0.0, 0.15], "min_distance": [4, 6],
               "smooth_sigma": [0.0, 1.5]}


def finetune(
    pairs: list[Sample],
    *,
    out_path: str | Path,
    preset: str = "quick",
    base_segmenter: str = DEFAULT_SEGMENTER,
    base_generator: str | None = DEFAULT_GENERATOR,
    unpaired_images: list[Sample] | None = None,
    provenance: dict | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    device=None,
    steps: int | None = None,
    gan_steps: int | None = -1,
) -> Generator[TrainProgress, None, FinetuneResult]:
    """Fine-tune on the user's pairs; yields progress (``record.stage`` says what), returns a :class:`FinetuneResult`.

    ``steps`` / ``gan_steps``: the segmenter's and the cycle GAN's steps instead of the ``preset``'s (``gan_steps``
    0: none, None: until stopped; -1, the default, and ``steps`` None: the preset's).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    recipe = PRESETS[preset]
    if steps is not None or gan_steps != -1:
        for name, value in (("steps", steps), ("gan_steps", gan_steps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                                      or value < (1 if name == "steps" else -1)):
                raise ValueError(f"{name} must be a whole number of {'1' if name == 'steps' else '0'} or more, "
                                 f"not {value!r}")
        recipe = dataclasses.replace(recipe, segmenter_steps=recipe.segmenter_steps if steps is None else int(steps),
                                     gan_steps=recipe.gan_steps if gan_steps == -1 else gan_steps)
    check_pairs(pairs)
    out_path = check_out_path(out_path)
    total = recipe.segmenter_steps + (recipe.gan_steps or 0)
    train, val = split_rows(pairs)
    yield TrainProgress(0, total, stage=f"loading {base_segmenter}")
    starting = load_segmenter(base_segmenter, device=device)
    yield TrainProgress(0, total, stage="scoring the starting model on your held-out rows")
    before = score(starting, val)
    network = base_network(starting, train)
    # trained at the network's particle size, as the user's images are segmented with a diameter;
    # never so small that a part has under 2 * MIN_SIDE pixels on a side
    factors = []
    for t in train:
        factor = model_scale_factor(t.labels, network.diameter_px)
        factors.append(min(1.0, max(factor, 2 * MIN_SIDE / min(t.image.shape))))
    small = [shrink_sample(t, f) for t, f in zip(train, factors)]
    warnings = []
    n_val = sum(int(len(np.unique(s.labels)) - 1) for s in val)
    few_held_out = n_val < MIN_VAL_PARTICLES
    if few_held_out:
        warnings.append(f"only {n_val} annotated particles held out for validation: before/after scores are rough")
    gen_path = None
    if base_generator is not None:
        try:
            gen_path = resolve_model(base_generator, kind=ModelKind.GENERATOR)
        except ModelNotFoundError:
            if recipe.gan_steps != 0:
                warnings.append("no generator to start from: fine-tuning the segmenter alone")
    base_path = resolve_model(network.name, kind=ModelKind.SEGMENTER)
    t0 = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="nanogan-finetune-"))
    try:  # the run folder (tens of MB of checkpoints) goes, however the run ends
        config = TrainConfig(steps=recipe.segmenter_steps, lr=3e-4, warmup_steps=20, val_every=10**9,
                             checkpoint_every=50, patch_size=recipe.patch_size, batch_size=recipe.batch_size,
                             contact_weight=5.0, scale_range=FINETUNE_SCALE_RANGE)
        steps, stopped = 0, False
        for record in train_segmenter({"user": small}, [], out_dir=run_dir / "segmenter", config=config,
                                      model_config=network.config, init_from=base_path, should_stop=should_stop,
                                      device=device):
            steps, stopped = record.step, stopped or record.stopped
            yield dataclasses.replace(record, total=total, stage="training the segmenter on your annotated rows")
        segmenter_file = run_dir / "segmenter" / ("best.pt" if (run_dir / "segmenter" / "best.pt").is_file()
                                                  else "last.pt")
        too_short = steps < min(MIN_USEFUL_STEPS, recipe.segmenter_steps)
        if too_short:
            warnings.append(f"stopped after {steps} training steps: too few to help; the model is kept, but compare it")
        gen_part, generator_adapted = None, False
        gan_planned = gen_path is not None and recipe.gan_steps != 0
        stopped = stopped or (gan_planned and should_stop())  # asked to stop before the cycle GAN began
        if gan_planned and not stopped:
            gen_cfg = GeneratorConfig.from_dict(load_checkpoint(gen_path, kind=ModelKind.GENERATOR)["config"])
            gan = GanTrainConfig(steps=recipe.gan_steps or 10**6, checkpoint_every=25, patch_size=128,
                                 batch_size=recipe.batch_size, contact_weight=5.0)
            for record in train_cyclegan(small, out_dir=run_dir / "gan", config=gan, generator_config=gen_cfg,
                                         segmenter_config=network.config, unpaired_images=unpaired_images,
                                         init_segmenter=segmenter_file, init_generator=gen_path,
                                         should_stop=should_stop, device=device):
                stopped = stopped or record.stopped
                yield dataclasses.replace(record, step=steps + record.step, total=total if recipe.gan_steps else 0,
                                          stage="training the generator and the segmenter together (cycle GAN)")
            if (run_dir / "gan" / "generator.pt").is_file():
                segmenter_file = run_dir / "gan" / "segmenter.pt"
                # the GAN trains the network alone: give it back the finishing and textures, fitted to the rows
                gen_part = finish_adapted_generator(load_checkpoint(run_dir / "gan" / "generator.pt",
                                                                    kind=ModelKind.GENERATOR),
                                                    load_checkpoint(gen_path, kind=ModelKind.GENERATOR),
                                                    [np.asarray(s.image, np.float32) for s in small],
                                                    [s.labels for s in small])
                generator_adapted = True
        if gen_part is None and gen_path is not None:  # the bundle synthesizes too, with the generator as it was
            gen_part = load_checkpoint(gen_path, kind=ModelKind.GENERATOR)
        seg_part = load_checkpoint(segmenter_file, kind=ModelKind.SEGMENTER)
        # the diameter is estimated as before, by the shipped sizer the user segmented with (its size model
        # was fitted on that network's outputs), then scaled by a factor calibrated on the annotations; a
        # sizer that is not shipped (a user's model) travels inside the bundle instead
        sizer = starting.sizer
        reference = sizer if sizer.name in SHIPPED_SEGMENTERS and can_estimate_diameter(sizer) else None
        own = network if reference is None else None
        # the starting network's confidence models, not refitted (their inputs are the network's outputs, which
        # fine-tuning moves only a little); the post-processing re-tuned on the training rows
        for key, holder in (("size_model", own), ("coarse_sizing", own), ("confidence_model", network),
                            ("final_confidence_model", network)):
            if holder is not None and getattr(holder, key) is not None:
                seg_part[key] = getattr(holder, key).to_dict()
        tuned = Segmenter.from_network(AttentionUNet(network.config), postprocess=network.postprocess, device=device,
                                       size_model=own and own.size_model, coarse_sizing=own and own.coarse_sizing,
                                       confidence_model=network.confidence_model, name=out_path.stem,
                                       size_reference=reference,
                                       final_confidence_model=network.final_confidence_model)
        tuned.network.load_state_dict(seg_part["state_dict"])
        # measured as the fine-tuned model estimates (its sizer, no correction yet), then applied
        sizes = size_calibration(tuned, train)
        if sizes is not None:
            tuned.size_correction = sizes["correction"]
            seg_part["size_correction"] = sizes["correction"]
        if reference is not None:
            seg_part["size_reference"] = reference.name
            seg_part["size_reference_sha256"] = reference.sizing_fingerprint()
        yield TrainProgress(total, total, stage="tuning the post-processing on your training rows")
        # the starting model's min_confidence kept with its confidence model (tuning scores the watershed alone)
        postprocess, _ = tune_postprocess(tuned, small, grid=RETUNE_GRID,
                                          fixed={"min_confidence": float(network.postprocess.min_confidence)})
        tuned.postprocess = postprocess
        seg_part["postprocess"] = postprocess.to_dict()
        yield TrainProgress(total, total, stage="scoring the fine-tuned model on your held-out rows")
        after = score(tuned, val)
        seconds = time.perf_counter() - t0
        verdict, rough = judge(before, after), few_held_out or too_short
        card = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "software": f"napari-nanogan {__version__}",
            "base_segmenter": str(base_segmenter), "base_network": network.name,
            "base_generator": str(base_generator) if gen_part is not None else None,
            "generator_adapted": generator_adapted,
            "preset": preset, "planned_steps": [recipe.segmenter_steps, recipe.gan_steps], "steps": steps,
            "seconds": round(seconds, 1),
            "images": [s.name for s in pairs],
            "validation": "bottom 25 % of each image's rows, never trained on, segmented as nanogan segment does",
            "scale_factors": [round(f, 4) for f in factors],  # each training part shrunk to the model's particle size
            "size_reference": reference.name if reference is not None else None, "size_calibration": sizes,
            "before": before, "after": after, "verdict": verdict, "better": verdict == BETTER, "rough": rough,
            "warnings": warnings, **(provenance or {}),
        }
        strip = lambda d: {k: v for k, v in d.items() if k not in ("format_version", "training")}  # noqa: E731
        bundle = {"kind": ModelKind.BUNDLE.value, "segmenter": strip(seg_part), "card": card}
        if gen_part is not None:
            bundle["generator"] = strip(gen_part)
        path = save_checkpoint(out_path, bundle)
        return FinetuneResult(Path(path), before, after, steps, seconds, warnings, verdict, rough, sizes, stopped)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
