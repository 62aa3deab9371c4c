"""Segmenter training loop: a generator of :class:`TrainProgress` records.

    for record in train_segmenter(train, val, out_dir="runs/seg", should_stop=stop):
        ...  # progress bar, log, plot

Checkpoints: ``last.pt`` (weights + optimiser, for resume) every
``checkpoint_every`` steps and when stopped; ``best.pt`` (weights only, the shipping
artefact) whenever the validation score improves. A run started on a folder holding
``last.pt`` resumes from it; the step's random draws depend only on (seed, step),
so a resumed run samples the same patches as an uninterrupted one.
"""

from __future__ import annotations

import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .. import __version__
from ..config import PostprocessConfig, SegmenterConfig, TrainConfig
from ..data.augment import AugmentConfig, sample_batch
from ..data.datasets import Sample
from ..inference import Segmenter, default_device, segment
from ..measure import equivalent_diameters
from ..metrics.segmentation import summarize
from ..models.attention_unet import AttentionUNet
from ..models.checkpoint import load_checkpoint, save_checkpoint
from .losses import segmentation_loss
from .progress import TrainProgress


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
        labels = segment(s.image, segmenter, info_bar=False).labels
        by_domain.setdefault(s.domain, []).append((s.labels, labels))
    scores = {d: {k: v for k, v in summarize(p).items() if k != "per_image"} for d, p in by_domain.items()}
    scores["score"] = float(np.mean([(v["iou"] + v["f1"]) / 2 for v in scores.values()])) if by_domain else 0.0
    return scores


_TUNE_DATA: tuple = ()  # (probs, truth_d50, size_weight) in a tune worker process


def _tune_worker_init(data: tuple) -> None:
    global _TUNE_DATA
    _TUNE_DATA = data


def _score_candidate(cfg: PostprocessConfig) -> dict:
    """One post-processing candidate scored on the tuning images (see :func:`tune_postprocess`)."""
    from ..postprocess import instances_from_probabilities

    probs, truth_d50, size_weight = _TUNE_DATA
    by_domain: dict[str, list] = {}
    for domain, truth, fg, interior in probs:
        by_domain.setdefault(domain, []).append((truth, instances_from_probabilities(fg, interior, cfg)))
    row = {**cfg.to_dict()}
    domain_scores = []
    for d, pairs in by_domain.items():
        v = summarize(pairs)
        ecd = np.concatenate([equivalent_diameters(pred, min_area=16, whole_only=True) for _, pred in pairs])
        d50_error = float(np.median(ecd) / truth_d50[d] - 1) if ecd.size else 1.0
        domain_scores.append((v["iou"] + v["f1"]) / 2 - size_weight * abs(d50_error))
        row.update({f"{d}_iou": v["iou"], f"{d}_f1": v["f1"], f"{d}_d50_error": d50_error})
    row["score"] = float(np.mean(domain_scores))
    return row


def tune_postprocess(segmenter: Segmenter, samples: list[Sample], grid: dict | None = None,
                     size_weight: float = 0.0,
                     progress: Callable[[int, int], None] | None = None,
                     workers: int = 1) -> tuple[PostprocessConfig, dict]:
    """Choose post-processing parameters on validation images (never on reported ones).

    The network runs once per image; each candidate only re-runs the watershed. The
    score is the mean over domains of (foreground IoU + instance F1) / 2, minus
    ``size_weight`` times the relative error of the median equivalent-circle diameter
    of whole particles (the D50 a user publishes; pooled over each domain's images).
    ``progress(done, total)`` is called after each image's network pass and each
    candidate (``total`` = images + candidates). ``workers`` > 1 scores the candidates in
    that many processes (the same result, in the same order).
    """
    import itertools

    grid = grid or {
        "seed_method": ["components", "peaks", "distance", "combined"],
        "seed_threshold": [0.3, 0.5, 0.7],
        "smooth_sigma": [0.0, 1.0, 1.5, 2.0],
        "min_distance": [4, 5, 6, 8],
        "fg_threshold": [0.4, 0.5, 0.6],
        "merge_depth": [0.0, 0.1, 0.2, 0.3],
    }
    keys = list(grid)
    candidates = []
    for values in itertools.product(*grid.values()):
        cfg = PostprocessConfig(**dict(zip(keys, values)))
        if cfg.seed_method == "components" and "min_distance" in grid and cfg.min_distance != grid["min_distance"][0]:
            continue  # min_distance only matters for peak seeds
        if (cfg.seed_method in ("distance", "combined") and "seed_threshold" in grid
                and cfg.seed_threshold != grid["seed_threshold"][0]):
            continue  # nor does the seed threshold for distance-based seeds
        candidates.append(cfg)
    total = len(samples) + len(candidates)
    probs = []
    for s in samples:
        probs.append((s.domain, s.labels, segment(s.image, segmenter, info_bar=False)))
        if progress is not None:
            progress(len(probs), total)
    truth_d50 = {}
    for domain, truth, _ in probs:
        truth_d50.setdefault(domain, []).append(equivalent_diameters(truth, min_area=16, whole_only=True))
    truth_d50 = {d: float(np.median(np.concatenate(v))) for d, v in truth_d50.items()}
    data = ([(domain, truth, res.foreground, res.interior) for domain, truth, res in probs], truth_d50, size_weight)
    best, best_cfg, best_row, table = -np.inf, PostprocessConfig(), {}, []

    def record(cfg, row):
        nonlocal best, best_cfg, best_row
        table.append(row)
        if row["score"] > best:
            best, best_cfg, best_row = row["score"], cfg, row
        if progress is not None:
            progress(len(samples) + len(table), total)

    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: this process has run torch's thread pools, which a fork may copy mid-use
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_tune_worker_init, initargs=(data,)) as pool:
            for cfg, row in zip(candidates, pool.map(_score_candidate, candidates)):
                record(cfg, row)
    else:
        _tune_worker_init(data)
        for cfg in candidates:
            record(cfg, _score_candidate(cfg))
    info = {"best_score": float(best), "candidates": len(table), "size_weight": size_weight,
            "val": {k: round(v, 4) for k, v in best_row.items() if k.split("_")[0] in truth_d50}}
    return best_cfg, info


def machine_description() -> str:
    import os

    dev = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {dev}, torch {torch.__version__}"


def train_segmenter(
    train: dict[str, list[Sample]],
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
) -> Iterator[TrainProgress]:
    """Train (or resume training) an Attention U-Net segmenter.

    Parameters
    ----------
    train : dict of str to list of Sample
        Training samples per domain; each batch draws domains uniformly.
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
    """
    if not train or not any(train.values()):
        raise ValueError("no training samples")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device) if device is not None else default_device()
    augment = augment or AugmentConfig(scale_range=tuple(config.scale_range))
    for samples in train.values():
        for sample in samples:
            sample.use_seed_depth(config.seed_depth if config.seed_depth > 0 else None)
    torch.manual_seed(config.seed)
    network = AttentionUNet(model_config)
    start, best, history, state = 0, -1.0, [], None
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if last_path.exists():
        state = load_checkpoint(last_path, kind="segmenter")
        if SegmenterConfig.from_dict(state["config"]) != model_config:
            raise ValueError(f"{last_path} was trained with another model configuration; use a new --out folder")
        network.load_state_dict(state["state_dict"])
    elif init_from is not None:
        network.load_state_dict(load_checkpoint(init_from, kind="segmenter")["state_dict"])
    # on the device before the optimizer exists: its loaded state follows its parameters' device
    # (a resume on a GPU otherwise mixes CPU moments with CUDA parameters)
    network.to(device)
    if device.type == "cpu":
        network = network.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if state is not None:
        optimizer.load_state_dict(state["training"]["optimizer"])
        start, best = state["training"]["step"], state["training"]["best_score"]
        history = state["training"].get("history", [])
    provenance = dict(provenance or {})
    provenance.update(package_version=__version__, machine=machine_description(), train_config=config.to_dict())

    def payload(step: int, *, with_optimizer: bool, scores: dict | None = None) -> dict:
        prov = dict(provenance, step=step, saved=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        if scores is not None:
            prov["validation"] = scores
        data = {
            "kind": "segmenter",
            "config": model_config.to_dict(),
            "postprocess": PostprocessConfig().to_dict(),
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()},
            "provenance": prov,
        }
        if with_optimizer:
            data["training"] = {"step": step, "optimizer": optimizer.state_dict(), "best_score": best, "history": history}
        return data

    t0 = time.perf_counter()
    step = start
    for step in range(start, config.steps):
        if should_stop():
            save_checkpoint(last_path, payload(step, with_optimizer=True))
            yield TrainProgress(step, config.steps, elapsed=time.perf_counter() - t0,
                                seconds_per_step=(time.perf_counter() - t0) / max(step - start, 1),
                                checkpoint=str(last_path), stopped=True)
            return
        rng = np.random.default_rng([config.seed, step])
        images, targets = sample_batch(train, config.batch_size, config.patch_size, rng, augment,
                                       with_contact=config.contact_weight > 0, domain_weights=domain_weights)
        pixel_weight = None
        if config.contact_weight > 0:  # Ronneberger-style: errors where particles touch cost more
            targets, contact = targets[:, :2], targets[:, 2:]
            pixel_weight = (1.0 + config.contact_weight * contact).to(device)
        fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        images = images.to(device).contiguous(memory_format=fmt)
        targets = targets.to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        network.train()
        losses = segmentation_loss(network(images), targets, pixel_weight)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        done = step + 1
        record = {k: float(v.detach()) for k, v in losses.items()}
        elapsed = time.perf_counter() - t0
        validation, checkpoint = None, None
        if val and (done % config.val_every == 0 or done == config.steps):
            network.eval()
            validation = evaluate(network, val)
            history.append({"step": done, **{k: v for k, v in validation.items()}})
            if validation["score"] > best:
                best = validation["score"]
                save_checkpoint(best_path, payload(done, with_optimizer=False, scores=validation))
                checkpoint = str(best_path)
        if done % config.checkpoint_every == 0 or done == config.steps:
            save_checkpoint(last_path, payload(done, with_optimizer=True))
            checkpoint = checkpoint or str(last_path)
        if not val and done == config.steps:
            save_checkpoint(best_path, payload(done, with_optimizer=False))
        yield TrainProgress(done, config.steps, record, elapsed, elapsed / (done - start), validation, checkpoint)
