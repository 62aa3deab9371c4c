"""One-click fine-tuning on the user's own annotated images.

Starts from the shipped segmenter (and the shipped generator, when there is one),
trains them together as a cycle GAN on the user's pairs for a time budget, and
writes a *bundle* checkpoint (segmenter + generator + model card) that works as
``--model`` for both ``nanogan segment`` and ``nanogan synthesize``.

Validation: with few images a held-out image is a luxury, so each annotated image
is split by rows: the bottom ``val_fraction`` is held out and scored before and
after (the model never trains on it). Too few held-out particles get a warning.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Generator

import numpy as np

from .. import __version__
from ..config import PRESETS, GanTrainConfig, GeneratorConfig, ModelKind, TrainConfig
from ..data.datasets import Sample
from ..metrics.segmentation import summarize
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.registry import ModelNotFoundError, resolve_model
from ..segmentation import Segmenter, segment
from ..segmentation.tiles import MIN_SIDE
from .cyclegan import train_cyclegan
from .data import model_scale_factor, shrink_sample
from .loop import TrainProgress
from .segmenter import train_segmenter


MIN_VAL_PARTICLES = 20


@dataclass
class FinetuneResult:
    path: Path
    before: dict
    after: dict
    steps: int
    seconds: float
    warnings: list = field(default_factory=list)


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
    """A ``ValueError`` naming the first pair that cannot be fine-tuned on (none, an empty mask, too few rows)."""
    if not pairs:
        raise ValueError("no annotated images to fine-tune on")
    for s in pairs:
        if s.labels.max() == 0:
            raise ValueError(f"{s.name}: the mask is empty; annotate some particles first")
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


def score(segmenter: Segmenter, samples: list[Sample]) -> dict:
    pairs = [(s.labels, segment(s.image, segmenter, info_bar=None).labels) for s in samples]
    out = summarize(pairs)
    out.pop("per_image")
    return out


def finetune(
    pairs: list[Sample],
    *,
    out_path: str | Path,
    preset: str = "quick",
    base_segmenter: str = "default",
    base_generator: str | None = "default",
    unpaired_images: list[Sample] | None = None,
    provenance: dict | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    device=None,
) -> Generator[TrainProgress, None, FinetuneResult]:
    """Fine-tune on the user's pairs; yields progress, returns a :class:`FinetuneResult`."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    check_pairs(pairs)
    out_path = check_out_path(out_path)
    budget = PRESETS[preset]
    train, val = split_rows(pairs)
    seg_path = resolve_model(base_segmenter, kind=ModelKind.SEGMENTER)
    base_segmenter_model = Segmenter.from_checkpoint(seg_path, device=device)
    # at the base model's particle size, as the user's images will be segmented with a diameter;
    # never so small that a part has under 2 * MIN_SIDE pixels on a side
    factors = []
    for s, t, v in zip(pairs, train, val):
        factor = model_scale_factor(s.labels, base_segmenter_model.diameter_px)
        smallest = min(*t.image.shape, *v.image.shape)
        factors.append(min(1.0, max(factor, 2 * MIN_SIDE / smallest)))
    train = [shrink_sample(t, f) for t, f in zip(train, factors)]
    val = [shrink_sample(v, f) for v, f in zip(val, factors)]
    warnings = []
    n_val = sum(int(len(np.unique(s.labels)) - 1) for s in val)
    if n_val < MIN_VAL_PARTICLES:
        warnings.append(f"only {n_val} annotated particles held out for validation: before/after scores are rough")
    before = score(base_segmenter_model, val)
    gen_path = None
    if base_generator is not None:
        try:
            gen_path = resolve_model(base_generator, kind=ModelKind.GENERATOR)
        except ModelNotFoundError:
            warnings.append("no generator to start from: fine-tuning the segmenter alone")
    seg_cfg = base_segmenter_model.config
    t0 = time.perf_counter()
    stop = lambda: should_stop() or (budget.seconds is not None and time.perf_counter() - t0 > budget.seconds)  # noqa: E731
    run_dir = Path(tempfile.mkdtemp(prefix="nanogan-finetune-"))
    try:  # the run folder (tens of MB of checkpoints) goes, however the run ends
        steps = 0
        if gen_path is not None:
            gen_cfg = GeneratorConfig.from_dict(load_checkpoint(gen_path, kind=ModelKind.GENERATOR)["config"])
            config = GanTrainConfig(steps=budget.max_steps, checkpoint_every=25, patch_size=budget.patch_size,
                                    batch_size=budget.batch_size)
            loop = train_cyclegan(train, out_dir=run_dir, config=config, generator_config=gen_cfg, segmenter_config=seg_cfg,
                                  unpaired_images=unpaired_images, init_segmenter=seg_path, init_generator=gen_path,
                                  should_stop=stop, device=device)
        else:
            config = TrainConfig(steps=budget.max_steps, lr=3e-4, warmup_steps=10, val_every=10**9, checkpoint_every=25,
                                 patch_size=2 * budget.patch_size, batch_size=budget.batch_size)
            loop = train_segmenter({"user": train}, [], out_dir=run_dir, config=config, model_config=seg_cfg,
                                   init_from=seg_path, should_stop=stop, device=device)
        for record in loop:
            steps = record.step
            yield record
        seconds = time.perf_counter() - t0
        if gen_path is not None:
            seg_part = load_checkpoint(run_dir / "segmenter.pt", kind=ModelKind.SEGMENTER)
            gen_part = load_checkpoint(run_dir / "generator.pt", kind=ModelKind.GENERATOR)
        else:
            seg_part = load_checkpoint(run_dir / "last.pt", kind=ModelKind.SEGMENTER)
            gen_part = None
        # the fine-tuned weights keep the base model's (validated) post-processing, and its size model
        # for diameter="auto", not refitted (its features are the network's outputs, which fine-tuning moves)
        seg_part["postprocess"] = base_segmenter_model.postprocess.to_dict()
        if base_segmenter_model.size_model is not None:
            seg_part["size_model"] = base_segmenter_model.size_model.to_dict()
        tuned = Segmenter.from_network(base_segmenter_model.network, postprocess=base_segmenter_model.postprocess, device=device)
        tuned.network.load_state_dict(seg_part["state_dict"])
        after = score(tuned, val)
        card = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "software": f"napari-nanogan {__version__}",
            "base_segmenter": str(base_segmenter), "base_generator": str(base_generator) if gen_path else None,
            "preset": preset, "steps": steps, "seconds": round(seconds, 1),
            "images": [s.name for s in pairs], "validation": "bottom 25 % of each image's rows, never trained on",
            "scale_factors": [round(f, 4) for f in factors],  # each image shrunk to the model's particle size
            "before": before, "after": after, "warnings": warnings, **(provenance or {}),
        }
        strip = lambda d: {k: v for k, v in d.items() if k not in ("format_version", "training")}  # noqa: E731
        bundle = {"kind": ModelKind.BUNDLE.value, "segmenter": strip(seg_part), "card": card}
        if gen_part is not None:
            bundle["generator"] = strip(gen_part)
        path = save_checkpoint(out_path, bundle)
        return FinetuneResult(Path(path), before, after, steps, seconds, warnings)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
