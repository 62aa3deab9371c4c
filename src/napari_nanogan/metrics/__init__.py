"""Evaluation metrics (segmentation scores; FID/KID live in ``metrics.fid``)."""

from .segmentation import foreground_scores, instance_scores, summarize

__all__ = ["foreground_scores", "instance_scores", "summarize"]
