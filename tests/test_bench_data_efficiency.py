"""The data-efficiency study's pipeline end to end on real BAM images, at smoke size."""

import json

import numpy as np
from conftest import DATA, requires_shared, requires_shipped

from bench import data_efficiency as bench

pytestmark = [requires_shared, requires_shipped]


def test_smoke_study_runs_resumes_and_plots(tmp_path):
    args = ["--mode", "smoke", "--data-root", str(DATA), "--work", str(tmp_path / "work"),
            "--arms", "real,mixed,gan_segmenter", "--json", str(tmp_path / "r.json"), "--figure", str(tmp_path / "r.png")]
    out = bench.main(args)
    assert [(r["arm"], r["k"]) for r in out["summary"]] == [("real", 1), ("mixed", 1), ("gan_segmenter", 1)]
    run = out["runs"][0]
    assert len(run["images"]) == 1 and run["gan"]["steps"] == 3
    for arm in ("real", "mixed", "gan_segmenter"):
        assert 0 <= run[arm]["iou"] <= 1 and 0 <= run[arm]["f1"] <= 1 and np.isfinite(run[arm]["d50_truth_nm"])
    diag = run["diagnostics"]
    assert 0 <= diag["real_model_on_synthetic"]["iou"] <= 1 and diag["contrast_real"]["cnr"] > 0
    # no image of the held-out splits is ever trained on
    from napari_nanogan.data.datasets import shared_splits

    held = {t[0] for part in ("val", "test") for t in shared_splits(DATA)["bam"][part]}
    assert not held & set(run["images"])
    assert (tmp_path / "r.png").stat().st_size > 10_000
    # a second run reuses every finished stage
    again = bench.main(args)
    same = json.dumps(again["runs"][0]["real"], sort_keys=True) == json.dumps(run["real"], sort_keys=True)  # NaN == NaN
    assert same and again["wall_seconds"] < 10
    assert json.dumps(json.loads((tmp_path / "r.json").read_text())["summary"]) == json.dumps(again["summary"])


def test_designer_masks_follow_the_chosen_images():
    from napari_nanogan.data.datasets import load_samples, shared_splits

    real = load_samples(shared_splits(DATA)["bam"]["train"][:2], domain="bam")
    mode = bench.Mode(ks=(2,), seeds=(0,), seg_steps=1, gan_steps=1, patch=64, n_synthetic=6, synth_size=256)
    masks = bench.synthetic_masks(real, mode, seed=0)
    assert len(masks) == 6 and all(m.shape == (256, 256) for m in masks)
    truth = np.median(np.concatenate([bench.whole_ecd(s.labels) for s in real]))
    designed = np.median(np.concatenate([bench.whole_ecd(m) for m in masks[1::2]]))
    assert abs(designed / truth - 1) < 0.25
