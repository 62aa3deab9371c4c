"""Every configuration of napari-nanogan: frozen dataclasses, named choices, defaults written once.

The library, the command line and the napari panels read their defaults from here.
"""

from .base import INSTALL_DISTRIBUTED, Choice, Config, ModelKind
from .segmentation import (
    AUTO_ENLARGE_BELOW, AUTO_ENLARGE_KEEP_BELOW, AUTO_MIN_RATIO, BLOCK, CLIPPING_SHARE, ENLARGE_BELOW, INK_SHARE, MARGIN_DIAMETERS, MAX_ENLARGE, MAX_ENLARGED_PIXELS, MIN_MARGIN, MIN_RESIZE, MODEL_DIAMETER_PX, POLARITY_MARGIN, POLARITY_MORE, POLARITY_UNSURE_BELOW, SCALE_ENLARGE_MARGIN, SCALE_MARGIN, SCALE_MOVES, SCALE_OWN_BELOW, SCALE_OWN_MARGIN, SCALE_SHRINK_MARGIN, SCALE_STEP, SCALE_TOLERANCE, SCALE_BAR_INK_SHARE, SCALE_BAR_ZONE_HEIGHT, TILE, ClassicalConfig, Norm,
    Polarity, PostprocessConfig, SeedMethod, SegmenterConfig,
)
from .synthesis import (
    MAX_MASK_SIDE, MIN_MASK_SIDE, Finishing, GeneratorConfig, MaskDesign, TextureConfig, TextureRegion, Upsample,
)
from .training import (
    GENERATOR_DATASETS, GEOMETRY_ONLY, MIN_USEFUL_STEPS, PRECISIONS, PRESETS, TEXTURE_DEFAULTS, AugmentConfig, GanLossWeights, GanTrainConfig, Preset,
    TextureTrainConfig, TrainConfig,
)

__all__ = [
    "INSTALL_DISTRIBUTED", "Choice", "Config", "ModelKind",
    "AUTO_ENLARGE_BELOW", "AUTO_ENLARGE_KEEP_BELOW", "AUTO_MIN_RATIO", "BLOCK", "CLIPPING_SHARE", "ENLARGE_BELOW", "INK_SHARE", "MARGIN_DIAMETERS", "MAX_ENLARGE", "MAX_ENLARGED_PIXELS", "MIN_MARGIN", "MIN_RESIZE", "MODEL_DIAMETER_PX", "POLARITY_MARGIN", "POLARITY_MORE", "POLARITY_UNSURE_BELOW", "SCALE_ENLARGE_MARGIN", "SCALE_MARGIN", "SCALE_MOVES", "SCALE_OWN_BELOW", "SCALE_OWN_MARGIN", "SCALE_SHRINK_MARGIN", "SCALE_STEP", "SCALE_TOLERANCE", "SCALE_BAR_INK_SHARE", "SCALE_BAR_ZONE_HEIGHT", "TILE", "ClassicalConfig", "Norm", "Polarity",
    "PostprocessConfig", "SeedMethod", "SegmenterConfig",
    "MAX_MASK_SIDE", "MIN_MASK_SIDE", "Finishing", "GeneratorConfig", "MaskDesign", "TextureConfig", "TextureRegion",
    "Upsample",
    "GENERATOR_DATASETS", "GEOMETRY_ONLY", "MIN_USEFUL_STEPS", "PRECISIONS", "PRESETS", "TEXTURE_DEFAULTS", "AugmentConfig", "GanLossWeights", "GanTrainConfig", "Preset",
    "TextureTrainConfig", "TrainConfig",
]
