"""Segmentation: EM images to one label per particle (Attention U-Net, tiles, scale, post-processing)."""

from .pipeline import SegmentationResult, segment, segment_steps
from .segmenter import AutoSegmenter, Segmenter, load_segmenter
from .sizing import can_estimate_diameter

__all__ = ["SegmentationResult", "segment", "segment_steps", "AutoSegmenter", "Segmenter", "load_segmenter",
           "can_estimate_diameter"]
