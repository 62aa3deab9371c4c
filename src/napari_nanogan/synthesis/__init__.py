"""Synthesis: particle masks to realistic SEM/TEM images (Style U-Net, finishing, learned textures)."""

from .generator import Generator, load_generator
from .pipeline import mask_maps, synthesis_seed, synthesize, synthetic_pairs

__all__ = ["Generator", "load_generator", "mask_maps", "synthesis_seed", "synthesize", "synthetic_pairs"]
