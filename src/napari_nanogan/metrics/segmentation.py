"""Standard segmentation scores: per-image foreground Dice/IoU and instance P/R/F1 at IoU 0.5.

Follows the acceptance protocol (``../shared/tools/evalseg.py``): one-to-one Hungarian
matching on IoU, instances under ``min_area`` pixels ignored on both sides for the
instance scores, foreground scores on every pixel; images are averaged for Dice/IoU
and instance counts are pooled over images for P/R/F1.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

MIN_AREA = 16


def _drop_small(labels: np.ndarray, min_area: int) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64)
    counts = np.bincount(labels.ravel())
    small = counts < min_area
    small[0] = False
    return np.where(small[labels], 0, labels)


def iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every truth instance (rows) with every predicted instance (columns)."""
    t_ids, t_inv = np.unique(truth, return_inverse=True)
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    inter = np.zeros((len(t_ids), len(p_ids)), np.int64)
    np.add.at(inter, (t_inv.ravel(), p_inv.ravel()), 1)
    union = inter.sum(1, keepdims=True) + inter.sum(0, keepdims=True) - inter
    iou = inter / np.maximum(union, 1)
    return iou[np.ix_(t_ids != 0, p_ids != 0)]


def instance_scores(truth: np.ndarray, pred: np.ndarray, *, threshold: float = 0.5, min_area: int = MIN_AREA) -> dict:
    """True/false positives, false negatives and matched IoUs for one image."""
    iou = iou_matrix(_drop_small(truth, min_area), _drop_small(pred, min_area))
    n_true, n_pred = iou.shape
    if n_true == 0 or n_pred == 0:
        return {"tp": 0, "fp": n_pred, "fn": n_true, "matched_iou": []}
    rows, cols = linear_sum_assignment(-iou)
    ok = iou[rows, cols] >= threshold
    tp = int(ok.sum())
    return {"tp": tp, "fp": n_pred - tp, "fn": n_true - tp, "matched_iou": iou[rows, cols][ok].tolist()}


def foreground_scores(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Foreground Dice and IoU of one image (1.0 when both are empty)."""
    t, p = np.asarray(truth) > 0, np.asarray(pred) > 0
    inter = np.logical_and(t, p).sum()
    total = t.sum() + p.sum()
    union = np.logical_or(t, p).sum()
    dice = 1.0 if total == 0 else 2 * inter / total
    iou = 1.0 if union == 0 else inter / union
    return float(dice), float(iou)


def summarize(pairs: Iterable[tuple[np.ndarray, np.ndarray]], *, min_area: int = MIN_AREA) -> dict:
    """Scores over (truth, prediction) label-image pairs of equal shapes."""
    dices, ious, matched = [], [], []
    tp = fp = fn = 0
    per_image = []
    for truth, pred in pairs:
        if truth.shape != pred.shape:
            raise ValueError(f"shape mismatch: prediction {pred.shape} vs truth {truth.shape}")
        d, i = foreground_scores(truth, pred)
        s = instance_scores(truth, pred, min_area=min_area)
        dices.append(d)
        ious.append(i)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
        matched += s["matched_iou"]
        per_image.append({"dice": d, "iou": i, "tp": s["tp"], "fp": s["fp"], "fn": s["fn"]})
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    return {
        "n": len(dices),
        "dice": float(np.mean(dices)) if dices else 0.0,
        "iou": float(np.mean(ious)) if ious else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(precision + recall, 1e-9),
        "ap50": tp / max(tp + fp + fn, 1),
        "matched_iou": float(np.mean(matched)) if matched else 0.0,
        "per_image": per_image,
    }
