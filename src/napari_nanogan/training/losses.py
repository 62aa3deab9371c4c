"""Segmentation losses on soft targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _OneProcess:
    """Sums and means over one process: the values themselves."""

    @staticmethod
    def sum(x: torch.Tensor) -> torch.Tensor:
        return x

    mean = sum


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0, *, world=_OneProcess) -> torch.Tensor:
    """1 - Dice per channel, averaged; logits and target [N, C, H, W].

    ``world`` (:class:`~napari_nanogan.training.ddp.World`): the batch is split over
    processes; the Dice is that of the global batch.
    """
    prob = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = world.sum((prob * target).sum(dims))
    total = world.sum(prob.sum(dims) + target.sum(dims))
    return (1 - (2 * inter + eps) / (total + eps)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor,
                      pixel_weight: torch.Tensor | None = None, *, world=_OneProcess) -> dict[str, torch.Tensor]:
    """BCE + soft Dice on foreground and interior maps; returns the terms and their sum.

    ``pixel_weight`` ([N, 1, H, W], optional) weights the BCE per pixel (normalised by
    its sum, so the term keeps its scale); the Dice term stays unweighted. ``world``:
    the global batch is split over processes (:mod:`~napari_nanogan.training.ddp`);
    every term is then that of the global batch, on every process.
    """
    if pixel_weight is None:
        bce = world.mean(F.binary_cross_entropy_with_logits(logits, target))
    else:
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        weight = pixel_weight.expand_as(per_pixel)
        bce = world.sum((per_pixel * weight).sum()) / world.sum(weight.sum())
    dice = soft_dice_loss(logits, target, world=world)
    return {"bce": bce, "dice": dice, "total": bce + dice}
