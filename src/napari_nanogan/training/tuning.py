"""Choosing post-processing parameters on validation images (``nanogan tune``)."""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

from ..config import PostprocessConfig, SeedMethod
from ..data.datasets import Sample
from ..measure import equivalent_diameters
from ..metrics.segmentation import summarize
from ..segmentation import Segmenter, segment
from ..segmentation.postprocess import instances_from_probabilities

_TUNE_DATA: tuple = ()  # (probs, truth_d50, size_weight) in a tune worker process


def _tune_worker_init(data: tuple) -> None:
    global _TUNE_DATA
    _TUNE_DATA = data


def _score_candidate(cfg: PostprocessConfig) -> dict:
    """One post-processing candidate scored on the tuning images (see :func:`tune_postprocess`)."""
    probs, truth_sizes, size_weight = _TUNE_DATA
    by_domain: dict[str, list] = {}
    for domain, truth, fg, interior in probs:
        by_domain.setdefault(domain, []).append((truth, instances_from_probabilities(fg, interior, cfg)))
    row = {**cfg.to_dict()}
    domain_scores = []
    for d, pairs in by_domain.items():
        v = summarize(pairs)
        ecd = np.concatenate([equivalent_diameters(pred, min_area=16, whole_only=True) for _, pred in pairs])
        # a domain with no whole annotated particle has no sizes to match: its score is (IoU + F1) / 2
        errors = {q: float(np.percentile(ecd, q) / truth_q - 1) if ecd.size else 1.0 for q, truth_q in truth_sizes[d].items()}
        penalty = size_weight * float(np.mean(np.abs(list(errors.values())))) if errors and size_weight else 0.0
        domain_scores.append((v["iou"] + v["f1"]) / 2 - penalty)
        row.update({f"{d}_iou": v["iou"], f"{d}_f1": v["f1"], **{f"{d}_d{q}_error": e for q, e in errors.items()}})
    row["score"] = float(np.mean(domain_scores))
    return row


def tune_postprocess(segmenter: Segmenter, samples: list[Sample], grid: dict | None = None,
                     size_weight: float = 0.0, size_quantiles: tuple[int, ...] = (50,),
                     progress: Callable[[int, int], None] | None = None,
                     workers: int = 1, fixed: dict | None = None) -> tuple[PostprocessConfig, dict]:
    """Choose post-processing parameters on validation images (never on reported ones).

    The network runs once per image; each candidate only re-runs the watershed. The
    score is the mean over domains of (foreground IoU + instance F1) / 2, minus
    ``size_weight`` times the mean relative error of the ``size_quantiles`` of the
    whole particles' equivalent-circle diameters (pooled over each domain's images): by
    default the median, D50; ``(10, 50, 90)`` asks for the distribution a user publishes.
    ``progress(done, total)`` is called after each image's network pass and each
    candidate (``total`` = images + candidates). ``workers`` > 1 scores the candidates in
    that many processes (the same result, in the same order). ``fixed``: post-processing
    values every candidate takes as they are (not searched), e.g. ``{"merge_interior": 0.5}``;
    unless given or searched, ``merge_interior`` is the segmenter's own (it was set on rods, which
    validation images may not hold).
    """
    if not size_quantiles or not all(isinstance(q, (int, np.integer)) and 1 <= q <= 99 for q in size_quantiles):
        raise ValueError(f"size_quantiles must be whole percentiles in 1-99, not {size_quantiles!r}")
    grid = grid or {
        "seed_method": ["components", "peaks", "distance", "combined"],
        "seed_threshold": [0.3, 0.5, 0.7],
        "smooth_sigma": [0.0, 1.0, 1.5, 2.0],
        "min_distance": [4, 5, 6, 8],
        "fg_threshold": [0.4, 0.5, 0.6],
        "merge_depth": [0.0, 0.1, 0.2, 0.3],
    }
    fixed = dict(fixed or {})
    if "merge_interior" not in grid:
        fixed.setdefault("merge_interior", float(segmenter.postprocess.merge_interior))
    grid = {k: v for k, v in grid.items() if k not in fixed}
    keys = list(grid)
    candidates = []
    for values in itertools.product(*grid.values()):
        cfg = PostprocessConfig(**dict(zip(keys, values)), **fixed)
        if cfg.seed_method == SeedMethod.COMPONENTS and "min_distance" in grid and cfg.min_distance != grid["min_distance"][0]:
            continue  # min_distance only matters for peak seeds
        if (cfg.seed_method in (SeedMethod.DISTANCE, SeedMethod.COMBINED) and "seed_threshold" in grid
                and cfg.seed_threshold != grid["seed_threshold"][0]):
            continue  # nor does the seed threshold for distance-based seeds
        candidates.append(cfg)
    total = len(samples) + len(candidates)
    probs = []
    for s in samples:
        probs.append((s.domain, s.labels, segment(s.image, segmenter, info_bar=None, polarity_check=False)))
        if progress is not None:
            progress(len(probs), total)
    truth_ecd: dict[str, list] = {}
    for domain, truth, _ in probs:
        truth_ecd.setdefault(domain, []).append(equivalent_diameters(truth, min_area=16, whole_only=True))
    truth_ecd = {d: np.concatenate(v) for d, v in truth_ecd.items()}
    truth_sizes = {d: {q: float(np.percentile(v, q)) for q in size_quantiles} if v.size else {}
                   for d, v in truth_ecd.items()}
    data = ([(domain, truth, res.foreground, res.interior) for domain, truth, res in probs], truth_sizes, size_weight)
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
    info = {"best_score": float(best), "candidates": len(table), "size_weight": size_weight, "fixed": fixed,
            "size_quantiles": [int(q) for q in size_quantiles],
            "val": {k: round(v, 4) for k, v in best_row.items() if k.split("_")[0] in truth_sizes}}
    return best_cfg, info
