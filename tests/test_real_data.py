"""Quality on real EM images from ../shared/data (held-out test split), with the shipped model.

Thresholds sit below what docs/benchmarks.md reports for the whole test split, so a
regression fails while image-to-image spread does not.
"""

import numpy as np
import pytest

from conftest import DATA, requires_shared, requires_shipped

pytestmark = [requires_shared, requires_shipped]

# measured on the whole test split (docs/benchmarks.md): BAM IoU 0.85, F1 0.66, D50 error 13 %; EMPS IoU 0.64
IOU_BAM, F1_BAM, D50_TOLERANCE = 0.80, 0.55, 0.25
IOU_EMPS = 0.50


@pytest.fixture(scope="module")
def segmenter():
    from napari_nanogan.models.pretrained import load_segmenter

    return load_segmenter("default", device="cpu")


@pytest.fixture(scope="module")
def splits():
    from napari_nanogan.data.datasets import shared_splits

    return shared_splits(DATA)


def test_bam_test_images_quality_and_sizes(segmenter, splits):
    from napari_nanogan.data.datasets import instance_labels
    from napari_nanogan.inference import segment
    from napari_nanogan.io.images import read_image, read_mask
    from napari_nanogan.measure import measure_particles
    from napari_nanogan.metrics.segmentation import summarize

    pairs, d_true, d_pred = [], [], []
    for _, image_path, mask_path in splits["bam"]["test"][:2]:
        image, meta = read_image(image_path)
        result = segment(image, segmenter)
        assert result.info_bar is not None and result.info_bar.start == 712
        truth = instance_labels(read_mask(mask_path)[:712])
        pairs.append((truth, result.labels[:712]))
        for labels, out in ((truth, d_true), (result.labels[:712], d_pred)):
            t = measure_particles(labels, pixel_size_nm=meta["pixel_size_nm"], info_bar_start=712)
            keep = t.included() & (t.columns["area_nm2"] >= 16 * meta["pixel_size_nm"] ** 2)
            out.append(t.columns["ecd_nm"][keep])
    scores = summarize(pairs)
    assert scores["iou"] >= IOU_BAM and scores["f1"] >= F1_BAM, {k: scores[k] for k in ("iou", "f1")}
    d50_true, d50_pred = np.median(np.concatenate(d_true)), np.median(np.concatenate(d_pred))
    assert abs(d50_pred - d50_true) / d50_true < D50_TOLERANCE, (d50_true, d50_pred)


def test_emps_test_images_quality(segmenter, splits):
    from napari_nanogan.inference import segment
    from napari_nanogan.io.images import read_image, read_mask
    from napari_nanogan.metrics.segmentation import summarize

    pairs = []
    # the whole split, as the thresholds assume: its first 10 images alone sit near 0.50 (0.5005 with
    # per-tile group-norm statistics, 0.4896 with image-wide ones), while the split scores about 0.64
    for _, image_path, mask_path in splits["emps"]["test"]:
        image, _ = read_image(image_path)
        pairs.append((read_mask(mask_path).astype(np.int64), segment(image, segmenter).labels))
    scores = summarize(pairs)
    assert scores["iou"] >= IOU_EMPS, scores["iou"]
