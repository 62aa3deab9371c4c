"""The classical baseline at its best on a set of images: Otsu + watershed tuned on the images it is scored on.

The acceptance checks compare the segmenter with "classical Otsu + watershed (tuned)" per
source of images. On the staged benches (``bench.textured_matrix``, ``bench.randomized_images``)
the baseline's smoothing, polarity and seed distance are chosen by grid search (:data:`GRID`, 54
settings; its smallest particle area fixed at 16 px) on the very images of each group that it is
then scored on: the best of that grid on those images, so the margin the segmenter keeps over it
errs on the baseline's side.
"""

from __future__ import annotations

import itertools

import numpy as np

from napari_nanogan.config import ClassicalConfig
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation.classical import otsu_watershed

#: Gaussian smoothing (px), particle polarity, and the watershed seeds' minimum distance (px): the
#: grid of ``bench.evaluate --baseline`` with seed distances for particles of up to ~80 px.
GRID = {"sigma": (0.0, 1.0, 2.0), "polarity": ("bright", "dark", "minority"), "min_distance": (3, 5, 8, 12, 20, 32)}


def tuned_classical(images: list[np.ndarray], truths: list[np.ndarray], *, min_area: int = 9) -> dict:
    """The grid's configuration with the best pooled instance F1 at IoU 0.5 on (``images``, ``truths``).

    Returns {"config": the chosen ClassicalConfig as a dict, "f1", "precision", "recall", "dice":
    its pooled scores, "labels": its labels per image}.
    """
    best = None  # (raw F1, config, labels, scores)
    for sigma, polarity, distance in itertools.product(*GRID.values()):
        config = ClassicalConfig(sigma=sigma, polarity=polarity, min_distance=distance)
        labels = [otsu_watershed(image, config) for image in images]
        scores = summarize(list(zip(truths, labels)), min_area=min_area)
        if best is None or scores["f1"] > best[0]:
            best = (scores["f1"], config, labels, scores)
    _, config, labels, scores = best
    return {"config": config.to_dict(), "labels": labels,
            **{k: round(float(scores[k]), 4) for k in ("f1", "precision", "recall", "dice")}}
