"""Segmentation losses on soft targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - Dice per channel, averaged; logits and target [N, C, H, W]."""
    prob = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (prob * target).sum(dims)
    total = prob.sum(dims) + target.sum(dims)
    return (1 - (2 * inter + eps) / (total + eps)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor,
                      pixel_weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """BCE + soft Dice on foreground and interior maps; returns the terms and their sum.

    ``pixel_weight`` ([N, 1, H, W], optional) weights the BCE per pixel (normalised by
    its sum, so the term keeps its scale); the Dice term stays unweighted.
    """
    if pixel_weight is None:
        bce = F.binary_cross_entropy_with_logits(logits, target)
    else:
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        weight = pixel_weight.expand_as(per_pixel)
        bce = (per_pixel * weight).sum() / weight.sum()
    dice = soft_dice_loss(logits, target)
    return {"bce": bce, "dice": dice, "total": bce + dice}
