"""bench.auto_enlarge: shrunk copies keep their labels, and the arms differ only where an estimate is small."""

import numpy as np
from conftest import requires_shipped

from bench import auto_enlarge
from napari_nanogan.data.datasets import Sample
from napari_nanogan.data.procedural import particle_labels, render_sem
from napari_nanogan.measure import median_diameter


def _sample(diameter: float, shape=(600, 600), seed=0) -> Sample:
    labels = particle_labels(shape, n_particles=int(shape[0] * shape[1] / (4 * diameter**2)),
                             mean_diameter=diameter, seed=seed).astype(np.int32)
    image = render_sem(labels, seed=seed + 1, info_bar_rows=0).astype(np.float32)
    return Sample(f"disc{diameter:g}", image, labels, float(image.min()), float(image.max()), "test")


def test_copies_are_small_with_their_labels_and_skip_what_would_be_too_small():
    big, tiny_field = _sample(30.0, shape=(800, 800)), _sample(30.0, shape=(200, 200))
    copies = auto_enlarge.copies_of([big, tiny_field], seed=0, copies=3)
    assert len(copies) == 3  # every draw of the 800-px field; the 200-px one would shrink under 128 px a side
    for copy in copies:
        assert copy.labels.shape == copy.image.shape and min(copy.image.shape) >= auto_enlarge.COPY_MIN_SIDE
        assert 4.0 <= median_diameter(copy.labels) <= 12.5 and copy.domain == "test-shrunk"
    assert len({c.image.shape for c in copies}) == 3  # three draws, three sizes


@requires_shipped
def test_small_estimates_enlarge_and_find_more():
    from napari_nanogan.segmentation import load_segmenter

    from bench.failure_modes import stage

    image, labels, _ = stage("small_estimated")  # 8-px particles the size model puts at 8 px
    small = Sample("small", image.astype(np.float32), labels.astype(np.int32), 0.0, 255.0, "test")
    out = auto_enlarge.run_group(load_segmenter("default"), [small], [12.0], [15.0])
    never, enlarged = out["never"], out["below_12_keep_below_15"]
    assert enlarged["enlarged"] == 1 and never["enlarged"] == 0
    assert enlarged["f1"] > never["f1"] + 0.2 and out["typed"]["f1"] > never["f1"] + 0.2
