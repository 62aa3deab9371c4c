import importlib.util

import numpy as np
import pytest

from conftest import SHARED
from napari_nanogan.data.procedural import particle_labels
from napari_nanogan.metrics.segmentation import foreground_scores, instance_scores, summarize

EVALSEG = SHARED / "tools" / "evalseg.py"


def _perturbed_pairs(n=4):
    pairs = []
    for seed in range(n):
        truth = particle_labels((120, 160), n_particles=30, mean_diameter=14, seed=seed)
        pred = particle_labels((120, 160), n_particles=30, mean_diameter=14, seed=seed)
        rng = np.random.default_rng(seed)
        pred = np.roll(pred, int(rng.integers(-2, 3)), axis=1)  # shifted: some matches fail
        pred[pred == 3] = 0  # a missed particle
        pred[5:12, 5:12] = 999  # a false positive
        pairs.append((truth, pred))
    return pairs


def test_known_answers():
    a = np.zeros((20, 20), int)
    a[2:8, 2:8] = 1
    a[10:18, 10:18] = 2
    b = np.zeros_like(a)
    b[2:8, 2:8] = 5
    s = summarize([(a, b)])
    assert s["precision"] == 1 and s["recall"] == 0.5 and s["f1"] == pytest.approx(2 / 3)
    assert foreground_scores(a, a) == (1.0, 1.0)
    assert foreground_scores(np.zeros((3, 3)), np.zeros((3, 3))) == (1.0, 1.0)
    assert instance_scores(a, np.zeros_like(a))["fn"] == 2
    tiny = np.zeros_like(a)
    tiny[0, 0] = 1  # under 16 px: ignored on both sides
    assert summarize([(tiny, np.zeros_like(a))])["f1"] == 0 and instance_scores(tiny, a)["fp"] == 2


@pytest.mark.skipif(not EVALSEG.is_file(), reason="reference metrics script ../shared/tools/evalseg.py not found")
def test_agrees_with_reference_script():
    spec = importlib.util.spec_from_file_location("evalseg", EVALSEG)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    pairs = _perturbed_pairs()
    ours = summarize(pairs)
    theirs = ref.summarize(pairs)
    for key in ("dice", "iou", "precision", "recall", "f1", "ap50", "matched_iou"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-12), key
    assert 0 < ours["f1"] < 1  # the fixture is neither trivial nor hopeless
