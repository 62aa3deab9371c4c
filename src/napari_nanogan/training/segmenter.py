"""Segmenter training loop: a generator of :class:`TrainProgress` records.

    for record in train_segmenter(train, val, out_dir="runs/seg", should_stop=stop):
        ...  # progress bar, log, plot

Checkpoints: ``last.pt`` (weights + optimiser, for resume) every
``checkpoint_every`` steps and when stopped; ``best.pt`` (weights only, the shipping
artefact) whenever the validation score improves. A run started on a folder holding
``last.pt`` resumes from it; the step's random draws depend only on (seed, step),
so a resumed run samples the same patches as an uninterrupted one.

Under ``torchrun`` (``world``: :mod:`~napari_nanogan.training.ddp`) each process trains
a DistributedDataParallel copy on its share of every global batch; process 0 validates
and writes the checkpoints, and the run equals one process with the same batch.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .. import __version__
from ..config import AugmentConfig, ModelKind, PostprocessConfig, SegmenterConfig, TrainConfig
from ..data.augment import SampleSource, sample_batch
from ..data.datasets import Sample
from ..metrics.segmentation import summarize
from ..models.attention_unet import AttentionUNet
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.runtime import default_device, training_precision, working_format
from ..segmentation import Segmenter, segment
from .ddp import SINGLE, World, wrap
from .loop import Clock, TrainProgress, machine_description, run_folder
from .losses import segmentation_loss


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 2 % of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    t = (step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1)
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def evaluate(network: AttentionUNet, samples: list[Sample], postprocess: PostprocessConfig = PostprocessConfig()) -> dict:
    """Scores per domain on whole images, and ``score``: the mean of IoU and F1 over domains."""
    segmenter = Segmenter.from_network(network, postprocess=postprocess, device=next(network.parameters()).device)
    by_domain: dict[str, list] = {}
    for s in samples:
        labels = segment(s.image, segmenter, info_bar=None, polarity_check=False).labels  # (the network as trained)
        by_domain.setdefault(s.domain, []).append((s.labels, labels))
    scores = {d: {k: v for k, v in summarize(p).items() if k != "per_image"} for d, p in by_domain.items()}
    scores["score"] = float(np.mean([(v["iou"] + v["f1"]) / 2 for v in scores.values()])) if by_domain else 0.0
    return scores


#: What a resumed run may change: how long it runs, how often it checks and saves, its arithmetic.
RESUMABLE = ("steps", "val_every", "checkpoint_every", "precision")
#: The provenance entries that say what a run trains on (compared when it resumes).
_RUN_DATA = ("data", "pairs", "init", "at_model_scale", "domain_weights")


def changed_settings(before: dict, now: dict) -> list[str]:
    """What differs between a run's recorded provenance and the one a resume would give it ("lr 0.001 -> 0.01"),
    leaving out :data:`RESUMABLE`; entries one of them lacks (runs of older versions) are not compared."""
    import json

    def plain(value):  # (tuples and lists alike)
        return json.loads(json.dumps(value, default=str))

    changed = []
    old, new = plain(before.get("train_config", {})), plain(now.get("train_config", {}))
    for key in new:
        if key in old and key not in RESUMABLE and old[key] != new[key]:
            changed.append(f"{key} {old[key]} -> {new[key]}")
    for key in _RUN_DATA:
        if key in before and key in now and plain(before[key]) != plain(now[key]):
            changed.append(f"{key} {before[key]} -> {now[key]}" if len(str(before[key]) + str(now[key])) < 120
                           else f"{key} differs")
    return changed


def train_segmenter(
    train: dict[str, list[Sample] | SampleSource],
    val: list[Sample],
    *,
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    model_config: SegmenterConfig = SegmenterConfig(),
    augment: AugmentConfig | None = None,
    provenance: dict | None = None,
    init_from: str | Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    device: torch.device | str | None = None,
    domain_weights: dict[str, float] | None = None,
    world: World = SINGLE,
) -> Iterator[TrainProgress]:
    """Train (or resume training) an Attention U-Net segmenter.

    Parameters
    ----------
    train : dict of str to list of Sample or SampleSource
        Training samples per domain (or a source that draws new ones, such as
        :class:`~napari_nanogan.data.randomized.RandomizedSource`); each batch draws
        domains uniformly, or by ``domain_weights``.
    val : list of Sample
        Whole images for checkpoint selection (never the images you report on).
    out_dir : path
        Receives ``last.pt`` and ``best.pt``; resumes from ``last.pt`` if present.
    init_from : path, optional
        A segmenter checkpoint to start from (fine-tuning); ignored when resuming.
    should_stop : callable
        Polled every step; when it returns True the loop writes ``last.pt`` and ends.
    domain_weights : dict of str to float, optional
        How often each domain of ``train`` is drawn (default: uniformly), e.g. a
        quarter of the patches from synthetic pairs.
    world : World, optional
        This process's place among data-parallel processes (``torchrun``;
        :func:`~napari_nanogan.training.ddp.world_from_env`): ``config.batch_size`` is the
        global batch, shared out; ``device`` is the world's. Only process 0 validates
        and writes checkpoints; every process yields the same losses.
    """
    if not train or not any(train.values()):
        raise ValueError("no training samples")
    if config.patch_size % model_config.multiple:
        raise ValueError(f"patch_size {config.patch_size} must be a multiple of {model_config.multiple} for a network "
                         f"of depth {model_config.depth}")
    share = world.share(config.batch_size)
    if world.distributed:
        device = world.device()
    device = torch.device(device) if device is not None else default_device()
    precision = training_precision(device, config.precision)  # (a bad $NANOGAN_PRECISION fails before any file)
    out_dir, last_path = run_folder(out_dir)
    augment = augment or AugmentConfig(scale_range=tuple(config.scale_range), distractor_prob=config.distractor_prob,
                                       invert_prob=config.invert_prob, style_prob=config.style_prob,
                                       matrix_prob=config.matrix_prob)
    for pool in train.values():
        for sample in ([pool] if hasattr(pool, "draw") else pool):  # a list of samples, or a source of them
            sample.use_seed_depth(config.seed_depth if config.seed_depth > 0 else None)
    torch.manual_seed(config.seed)
    network = AttentionUNet(model_config)
    start, best, history, state = 0, -1.0, [], None
    best_path = out_dir / "best.pt"
    world.barrier()  # every process decides whether to resume from the same last.pt
    if last_path.exists():
        state = load_checkpoint(last_path, kind=ModelKind.SEGMENTER)
        if SegmenterConfig.from_dict(state["config"]) != model_config:
            raise ValueError(f"{last_path} was trained with another model configuration; use a new --out folder")
        changed = changed_settings(state["provenance"], dict(provenance or {}, train_config=config.to_dict()))
        if changed:
            raise ValueError(f"{last_path} is a run of other settings ({'; '.join(changed)}): resume it with its own, "
                             "or use a new --out")
        network.load_state_dict(state["state_dict"])
        if config.precision == "auto":  # a resumed run keeps its arithmetic (runs before the choice existed: fp32)
            precision = state["provenance"].get("precision", "fp32")
    elif init_from is not None:
        network.load_state_dict(load_checkpoint(init_from, kind=ModelKind.SEGMENTER)["state_dict"])
    # on the device before the optimizer exists: its loaded state follows its parameters' device
    # (a resume on a GPU otherwise mixes CPU moments with CUDA parameters)
    network.to(device)
    if device.type == "cpu":
        network = network.to(memory_format=torch.channels_last)
    model = wrap(network, world)  # the network itself for one process
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if state is not None:
        optimizer.load_state_dict(state["training"]["optimizer"])
        start, best = state["training"]["step"], state["training"]["best_score"]
        history = state["training"].get("history", [])
    provenance = dict(provenance or {})
    provenance.update(package_version=__version__, machine=machine_description(), train_config=config.to_dict(),
                      precision=precision)
    if world.distributed:
        provenance["processes"] = {"count": world.size, "backend": world.backend,
                                   "batch_per_process": config.batch_size // world.size}

    def payload(step: int, *, with_optimizer: bool, scores: dict | None = None) -> dict:
        prov = dict(provenance, step=step, saved=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        if scores is not None:
            prov["validation"] = scores
        data = {
            "kind": ModelKind.SEGMENTER.value,
            "config": model_config.to_dict(),
            "postprocess": PostprocessConfig().to_dict(),
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()},
            "provenance": prov,
        }
        if with_optimizer:
            data["training"] = {"step": step, "optimizer": optimizer.state_dict(), "best_score": best, "history": history}
        return data

    clock = Clock(config.steps, start)
    fmt = working_format(device)
    bf16 = precision == "bf16"
    for step in range(start, config.steps):
        if world.any(should_stop()):
            if world.main:
                save_checkpoint(last_path, payload(step, with_optimizer=True))
            world.barrier()
            yield clock.stopped(step, str(last_path))
            return
        rng = np.random.default_rng([config.seed, step])
        images, targets = sample_batch(train, config.batch_size, config.patch_size, rng, augment,
                                       with_contact=config.contact_weight > 0, domain_weights=domain_weights)
        pixel_weight = None
        if config.contact_weight > 0:  # Ronneberger-style: errors where particles touch cost more
            targets, contact = targets[:, :2], targets[:, 2:]
            pixel_weight = (1.0 + config.contact_weight * contact[share]).to(device)
        images = images[share].to(device).contiguous(memory_format=fmt)  # this process's share of the global batch
        targets = targets[share].to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        network.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        losses = segmentation_loss(logits.float(), targets, pixel_weight, world=world)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        done = step + 1
        record = {k: float(v.detach()) for k, v in losses.items()}
        validation, checkpoint = None, None
        if world.main and val and (done % config.val_every == 0 or done == config.steps):
            network.eval()
            validation = evaluate(network, val)
            history.append({"step": done, **{k: v for k, v in validation.items()}})
            if validation["score"] > best:
                best = validation["score"]
                save_checkpoint(best_path, payload(done, with_optimizer=False, scores=validation))
                checkpoint = str(best_path)
        if done % config.checkpoint_every == 0 or done == config.steps:
            if world.main:
                save_checkpoint(last_path, payload(done, with_optimizer=True))
            checkpoint = checkpoint or str(last_path)
        if world.main and not val and done == config.steps:
            save_checkpoint(best_path, payload(done, with_optimizer=False))
        if done == config.steps:
            world.barrier()  # the run ends for every process with its checkpoints on disk
        yield clock.record(done, record, validation, checkpoint)
