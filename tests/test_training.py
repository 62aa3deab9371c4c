import dataclasses

import numpy as np
import pytest
import torch

from napari_nanogan.config import SegmenterConfig, TrainConfig
from napari_nanogan.config import AugmentConfig
from napari_nanogan.data.augment import sample_batch, sample_patch
from napari_nanogan.data.datasets import Sample
from napari_nanogan.io.masks import instance_labels
from napari_nanogan.data.procedural import particle_labels, render_sem
from napari_nanogan.models.checkpoint import load_checkpoint
from napari_nanogan.training.segmenter import learning_rate, train_segmenter

SMALL = SegmenterConfig(base_channels=4, depth=3)


def _samples(n=2, domain="sem"):
    out = []
    for seed in range(n):
        labels = particle_labels((96, 128), n_particles=15, mean_diameter=14, seed=seed)
        image = render_sem(labels, seed=seed)
        out.append(Sample(f"s{seed}", image, labels, float(np.percentile(image, 1)), float(np.percentile(image, 99.8)), domain))
    return out


def _run(out_dir, steps, stop_after=None, val=None, device="cpu", precision="auto"):
    config = TrainConfig(steps=steps, batch_size=2, patch_size=64, val_every=2, checkpoint_every=2, warmup_steps=1,
                         precision=precision)
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return stop_after is not None and calls["n"] > stop_after

    return list(train_segmenter({"sem": _samples()}, val or [], out_dir=out_dir, config=config, model_config=SMALL,
                                should_stop=should_stop, device=device))


def test_patch_sampling_shapes_and_ranges(rng):
    sample = _samples(1)[0]
    img, tgt = sample_patch(sample, 64, rng)
    assert img.shape == (1, 64, 64) and tgt.shape == (2, 64, 64)
    assert img.dtype == np.float32 and 0 <= tgt.min() and tgt.max() <= 1
    assert tgt[0].sum() > 0  # particles in the patch
    x, y = sample_batch({"a": _samples(1), "b": _samples(1, "b")}, 3, 32, rng, AugmentConfig())
    assert x.shape == (3, 1, 32, 32) and y.shape == (3, 2, 32, 32)
    # images smaller than the patch are padded, not failed
    small = Sample("t", sample.image[:20, :20], sample.labels[:20, :20], sample.low, sample.high)
    assert sample_patch(small, 64, rng)[0].shape == (1, 64, 64)


def test_contact_channel_follows_the_patch_geometry(rng):
    from napari_nanogan.data.targets import contact_zone

    sample = _samples(1)[0]
    assert sample.contact.shape == sample.labels.shape and sample.contact.any()
    img, tgt = sample_patch(sample, 64, np.random.default_rng(3), with_contact=True)
    ref_img, ref_tgt = sample_patch(sample, 64, np.random.default_rng(3))
    assert tgt.shape == (3, 64, 64)
    np.testing.assert_array_equal(img, ref_img)  # same draws: the extra channel changes nothing else
    np.testing.assert_array_equal(tgt[:2], ref_tgt)
    # contact only on or right next to particles
    assert tgt[2][ndi_dilate(tgt[0] > 0.5, 6) == 0].max() < 0.5
    np.testing.assert_array_equal(contact_zone(sample.labels), sample.contact)


def test_images_smaller_than_the_patch_mirror_their_targets_with_them(rng):
    # bright discs on black, no blur or noise: every bright pixel of the patch is particle, padding included
    labels = particle_labels((24, 24), n_particles=3, mean_diameter=8, seed=4)
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    small = Sample("t", image, labels, 20.0, 200.0)
    config = AugmentConfig(scale_range=(1.0, 1.0), blur_prob=0.0, noise_prob=0.0, brightness=0.0,
                           contrast=(1.0, 1.0), gamma=(1.0, 1.0))
    for _ in range(4):
        img, tgt = sample_patch(small, 64, rng, config)
        bright, particle = img[0] > 0.5, tgt[0] > 0.5
        assert particle[40:, 40:].any()  # the mirrored part has particles too
        assert (bright == particle).mean() > 0.97  # and they sit where the image shows them


def test_distractors_are_drawn_as_background_and_leave_the_rest_alone():
    from napari_nanogan.data.augment import with_distractors

    rng = np.random.default_rng(5)
    img = rng.uniform(0.2, 0.8, (128, 128)).astype(np.float32)
    tgt = np.zeros((3, 128, 128), np.float32)
    tgt[:, 20:110, 20:110] = 1  # one large particle under most of the patch
    changed_any = False
    for _ in range(20):
        drawn, cleared = with_distractors(img, tgt, rng)
        changed = drawn != img
        changed_any |= changed.any()
        # every particle pixel under a mark became background in every target channel; none elsewhere
        assert (cleared[:, changed & (tgt[0] > 0.5)] == 0).all()
        # (a mark may cover a pixel with the grey it already had: cleared, though unchanged)
        assert (cleared[:, ~changed] != tgt[:, ~changed]).mean() < 1e-3
    assert changed_any

def test_sample_patch_draws_distractors_only_when_asked(monkeypatch):
    import napari_nanogan.data.augment as augment

    calls = []
    real = augment.with_distractors
    monkeypatch.setattr(augment, "with_distractors", lambda *a: calls.append(1) or real(*a))
    sample, rng = _samples(1)[0], np.random.default_rng(1)
    for _ in range(10):
        sample_patch(sample, 64, rng)  # off by default
    assert calls == []
    for _ in range(10):
        sample_patch(sample, 64, rng, AugmentConfig(distractor_prob=1.0))
    assert len(calls) == 10
    for _ in range(200):
        sample_patch(sample, 32, rng, AugmentConfig(distractor_prob=0.3))
    assert 30 < len(calls) - 10 < 90


def test_invert_prob_mirrors_the_patch_and_keeps_its_targets():
    sample = _samples(1)[0]
    plain_cfg = AugmentConfig(contrast=(1, 1), brightness=0.0, gamma=(1, 1), blur_prob=0.0, noise_prob=0.0)
    flip_cfg = AugmentConfig(contrast=(1, 1), brightness=0.0, gamma=(1, 1), blur_prob=0.0, noise_prob=0.0,
                             invert_prob=1.0)
    img, tgt = sample_patch(sample, 64, np.random.default_rng(5), plain_cfg)
    flipped, flipped_tgt = sample_patch(sample, 64, np.random.default_rng(5), flip_cfg)
    np.testing.assert_array_equal(tgt, flipped_tgt)
    inside, outside = tgt[0] > 0.5, tgt[0] < 0.5
    assert img[0][inside].mean() > img[0][outside].mean() + 0.2  # bright particles ...
    within = (img > 0) & (img < 1)  # (the gamma step clips below 0)
    assert within.mean() > 0.9
    np.testing.assert_allclose(flipped[within], 1.0 - img[within], atol=1e-6)  # ... made dark
    rng = np.random.default_rng(0)
    dark = [sample_patch(sample, 32, rng, dataclasses.replace(plain_cfg, invert_prob=0.3)) for _ in range(200)]
    n_dark = sum(i[0][t[0] > 0.5].mean() < i[0][t[0] < 0.5].mean() for i, t in dark if (t[0] > 0.5).any() and (t[0] < 0.5).any())
    assert 30 < n_dark < 90


def test_style_prob_restyles_the_image_and_keeps_its_targets():
    from napari_nanogan.data.styles import _edge, _shading, restyle

    sample = _samples(1)[0]
    plain_cfg = AugmentConfig(contrast=(1, 1), brightness=0.0, gamma=(1, 1), blur_prob=0.0, noise_prob=0.0)
    img, tgt = sample_patch(sample, 64, np.random.default_rng(5), plain_cfg)
    styled, styled_tgt = sample_patch(sample, 64, np.random.default_rng(5), dataclasses.replace(plain_cfg, style_prob=1.0))
    np.testing.assert_array_equal(tgt, styled_tgt)  # the particles stay where they are
    assert styled.dtype == np.float32 and np.isfinite(styled).all() and np.abs(styled - img).mean() > 0.01
    fg = tgt[0] > 0.5
    # the edge look lies along the outlines, and outside them it never takes the particle's side of the contrast
    from scipy import ndimage as ndi

    square = np.ones((3, 3), bool)  # (chessboard distance: never more than the Euclidean one)
    near = ndi.binary_dilation(fg, square, iterations=12) & ~ndi.binary_erosion(fg, square, iterations=12)
    rng = np.random.default_rng(0)
    bands = [_edge(fg, rng) for _ in range(40)]
    for band in bands:
        assert np.abs(band[~near]).max() < 0.07 and 0.2 <= np.abs(band).max() <= 1.0
        assert band[~fg].max() <= 0
    assert any(b[fg].max() > 0.2 for b in bands) and any(b[~fg].min() < -0.2 for b in bands)
    # shading tilts each particle across its width: within the particles only, of both signs
    shade = _shading(fg, np.random.default_rng(1))
    assert np.all(shade[~fg] == 0) and shade.max() > 0.5 and shade.min() < -0.5
    disc = np.hypot(*np.mgrid[-20:21, -20:21]) <= 15
    tilt = _shading(disc, np.random.default_rng(2))
    assert tilt.max() > 0.8 and tilt.min() < -0.8 and abs(tilt[disc].mean()) < 0.05
    # every call draws a look that applies: an image without particles gets a field-wide one, and one that is all
    # particle no edge (its outline is the patch border)
    empty = np.zeros((64, 64), np.float32) + 0.4
    for seed in range(10):
        out = restyle(empty, np.zeros((64, 64)), np.random.default_rng(seed))
        assert out.shape == (64, 64) and np.isfinite(out).all() and out.std() > 0.005
    full = restyle(empty, np.ones((64, 64)), np.random.default_rng(3))
    assert np.isfinite(full).all()


def test_probabilities_out_of_range_are_refused():
    with pytest.raises(ValueError, match="invert_prob"):
        TrainConfig(invert_prob=1.5)
    with pytest.raises(ValueError, match="distractor_prob"):
        TrainConfig(distractor_prob=-0.1)
    with pytest.raises(ValueError, match="invert_prob"):
        AugmentConfig(invert_prob=2.0)
    with pytest.raises(ValueError, match="style_prob"):
        TrainConfig(style_prob=1.1)
    with pytest.raises(ValueError, match="matrix_prob"):
        AugmentConfig(matrix_prob=-0.5)


def test_matrix_prob_draws_a_matrix_that_stays_background(monkeypatch):
    from napari_nanogan.data import augment
    from napari_nanogan.data.styles import draw_matrix, grains

    sample = _samples(1)[0]
    plain_cfg = AugmentConfig(contrast=(1, 1), brightness=0.0, gamma=(1, 1), blur_prob=0.0, noise_prob=0.0)
    calls = []
    monkeypatch.setattr(augment, "draw_matrix", lambda img, fg, rng: calls.append(fg.shape) or img)
    for p, expected in ((0.0, 0), (1.0, 5)):
        for seed in range(5):
            sample_patch(sample, 64, np.random.default_rng(seed), dataclasses.replace(plain_cfg, matrix_prob=p))
        assert len(calls) == expected
    monkeypatch.undo()
    img, tgt = sample_patch(sample, 96, np.random.default_rng(5), plain_cfg)
    fg = tgt[0] > 0.5
    assert fg.any() and (~fg).any()
    contrast = float(np.median(img[0][fg]) - np.median(img[0][~fg]))
    for seed in range(6):
        drawn = draw_matrix(img[0], tgt[0], np.random.default_rng(seed))
        assert drawn.shape == img[0].shape and drawn.dtype == np.float32 and np.isfinite(drawn).all()
        change = drawn - img[0]
        assert 0.02 * contrast < change[~fg].std() < contrast  # visible, and the particles stay apart from it
        assert abs(change[fg].mean()) < 0.02 * contrast  # a texture of their own at most: their level stays
    # the grains are cells of about the asked area (before boundaries and lamellae)
    grain, edges = grains((200, 300), np.random.default_rng(0), cell_area=400.0)
    assert 0.5 * 150 < len(np.unique(grain)) <= 150 and 0.02 < edges.mean() < 0.3
    # without particles the field still gets a matrix, at a fixed fallback contrast
    out = draw_matrix(np.full((64, 64), 0.4, np.float32), np.zeros((64, 64)), np.random.default_rng(1))
    assert np.isfinite(out).all() and out.std() > 0.005


def test_at_model_scale_shrinks_images_of_large_particles_to_the_models_diameter():
    from napari_nanogan.training.data import at_model_scale
    from napari_nanogan.measure import median_diameter

    labels = particle_labels((256, 320), n_particles=12, mean_diameter=48, seed=1)
    image = render_sem(labels, seed=1)
    big = Sample("big", image, labels, float(np.percentile(image, 1)), float(np.percentile(image, 99.8)), "emps")
    d = median_diameter(labels)
    shrunk = at_model_scale(big)
    factor = 24.0 / d
    assert shrunk.image.shape == (round(256 * factor), round(320 * factor)) == shrunk.labels.shape
    assert abs(median_diameter(shrunk.labels) - 24.0) < 3.0
    assert shrunk.domain == "emps" and shrunk.name == "big" and shrunk.low < shrunk.high
    assert len(np.unique(shrunk.labels)) == len(np.unique(labels))  # no particle lost at this factor
    # particles at or below the model's diameter, and images without particles, are left as they are
    small = _samples(1)[0]
    assert at_model_scale(small) is small
    empty = Sample("e", image, np.zeros_like(labels), 0.0, 255.0)
    assert at_model_scale(empty) is empty
    # at most 8 times smaller, as at inference
    huge = at_model_scale(big, diameter_px=d / 20)
    assert huge.image.shape == (32, 40)


def ndi_dilate(mask, n):
    from scipy import ndimage as ndi

    return ndi.binary_dilation(mask, iterations=n)


def test_weighted_loss_counts_contact_pixels_more():
    from napari_nanogan.training.losses import segmentation_loss

    target = torch.zeros(1, 2, 8, 8)
    logits = torch.zeros(1, 2, 8, 8)
    logits[..., 0, 0] = 5.0  # one confidently wrong pixel
    weight = torch.ones(1, 1, 8, 8)
    plain = segmentation_loss(logits, target)["bce"]
    assert torch.allclose(segmentation_loss(logits, target, weight)["bce"], plain)  # uniform weight: same
    weight[..., 0, 0] = 6.0
    heavier = segmentation_loss(logits, target, weight)["bce"]
    weight[..., 0, 0], weight[..., 5, 5] = 1.0, 6.0
    elsewhere = segmentation_loss(logits, target, weight)["bce"]
    assert heavier > plain > elsewhere


def test_contact_weighted_training_runs_and_records_its_weight(tmp_path):
    config = TrainConfig(steps=2, batch_size=2, patch_size=64, val_every=1000, checkpoint_every=1000, warmup_steps=1,
                         contact_weight=5.0)
    recs = list(train_segmenter({"sem": _samples()}, [], out_dir=tmp_path, config=config, model_config=SMALL,
                                device="cpu"))
    assert all(np.isfinite(r.losses["total"]) for r in recs)
    prov = load_checkpoint(tmp_path / "best.pt", kind="segmenter")["provenance"]
    assert prov["train_config"]["contact_weight"] == 5.0


def test_seed_depth_sets_the_interior_target_of_every_training_sample(tmp_path):
    from napari_nanogan.data.targets import interior_from_labels

    labels = particle_labels((96, 128), n_particles=6, mean_diameter=36, seed=0)  # deep enough for the cap to bite
    samples = [Sample("big", render_sem(labels, seed=0), labels, 0.0, 255.0)]
    assert (samples[0].targets[1] > 0).sum() > (interior_from_labels(labels, max_depth=None)).sum()  # capped default
    config = TrainConfig(steps=1, batch_size=2, patch_size=64, val_every=1000, checkpoint_every=1000, warmup_steps=1,
                         seed_depth=0.0)
    list(train_segmenter({"sem": samples}, [], out_dir=tmp_path, config=config, model_config=SMALL, device="cpu"))
    np.testing.assert_array_equal(samples[0].targets[1] > 0, interior_from_labels(labels, max_depth=None))
    prov = load_checkpoint(tmp_path / "best.pt", kind="segmenter")["provenance"]
    assert prov["train_config"]["seed_depth"] == 0.0


def test_domain_weights_set_how_often_each_domain_is_drawn(monkeypatch):
    import napari_nanogan.data.augment as augment

    drawn = []
    monkeypatch.setattr(augment, "sample_patch", lambda sample, size, rng, config, with_contact=False:
                        drawn.append(sample.domain) or (np.zeros((1, size, size), np.float32), np.zeros((2, size, size), np.float32)))
    pools = {"real": _samples(1, "real"), "synthetic": _samples(1, "synthetic")}
    sample_batch(pools, 400, 8, np.random.default_rng(0), domain_weights={"real": 0.75, "synthetic": 0.25})
    assert 0.18 < drawn.count("synthetic") / 400 < 0.32
    drawn.clear()
    sample_batch(pools, 50, 8, np.random.default_rng(0), domain_weights={"real": 1.0})  # unnamed domains: never
    assert set(drawn) == {"real"}
    with pytest.raises(ValueError, match="non-negative"):
        sample_batch(pools, 2, 8, np.random.default_rng(0), domain_weights={"real": -1.0, "synthetic": 0.0})


def test_instance_labels_binary_masks_are_four_connected():
    m = np.zeros((5, 5), np.uint8)
    m[1, 1] = m[2, 2] = 255  # diagonal neighbours: two particles
    assert instance_labels(m).max() == 2


def test_learning_rate_schedule():
    c = TrainConfig(steps=100, lr=1e-3, warmup_steps=10)
    assert learning_rate(0, c) == pytest.approx(1e-4)
    assert learning_rate(10, c) == pytest.approx(1e-3)
    assert learning_rate(99, c) < 1e-4


def test_smoke_run_finite_losses_and_checkpoints(tmp_path):
    val = _samples(1)
    records = _run(tmp_path, steps=4, val=val)
    assert [r.step for r in records] == [1, 2, 3, 4]
    assert all(np.isfinite(r.losses["total"]) for r in records)
    assert records[1].validation is not None and "sem" in records[1].validation
    best = load_checkpoint(tmp_path / "best.pt", kind="segmenter")
    assert "training" not in best and best["provenance"]["validation"]["score"] >= 0
    last = load_checkpoint(tmp_path / "last.pt", kind="segmenter")
    assert last["training"]["step"] == 4


def test_resume_is_exact(tmp_path):
    _run(tmp_path / "full", steps=4)
    stopped = _run(tmp_path / "resumed", steps=4, stop_after=2)
    assert stopped[-1].stopped and stopped[-1].step == 2
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["training"]["step"] == 2
    resumed = _run(tmp_path / "resumed", steps=4)
    assert [r.step for r in resumed] == [3, 4]
    a = load_checkpoint(tmp_path / "full" / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")["state_dict"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_gpu(tmp_path):
    # the optimizer's saved moments are CPU tensors; a resume on a GPU must move them
    # with the parameters (it failed with "found at least two devices, cuda:0 and cpu")
    _run(tmp_path, steps=4, stop_after=2, device="cuda")
    assert [r.step for r in _run(tmp_path, steps=4, device="cuda")] == [3, 4]


def test_training_precision_is_chosen_recorded_and_refused_when_unknown(tmp_path, monkeypatch):
    from napari_nanogan.models.runtime import PRECISION_ENV, training_precision

    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        TrainConfig(precision="fp16")
    assert training_precision("cpu", "fp32") == "fp32" and training_precision("cpu", "bf16") == "bf16"
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    assert training_precision("cpu") == "fp32"  # auto follows $NANOGAN_PRECISION where set
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    assert training_precision("cpu") == "bf16"
    monkeypatch.delenv(PRECISION_ENV)
    runs = {}
    for precision in ("fp32", "bf16"):
        records = _run(tmp_path / precision, steps=2, precision=precision)
        assert all(np.isfinite(r.losses["total"]) for r in records)
        last = load_checkpoint(tmp_path / precision / "last.pt", kind="segmenter")
        assert last["provenance"]["precision"] == precision
        assert last["provenance"]["train_config"]["precision"] == precision
        assert all(v.dtype == torch.float32 for v in last["state_dict"].values() if v.is_floating_point())
        runs[precision] = records[0].losses["total"]
    # the same first batch and weights: bf16 arithmetic moves the loss a little, not a lot
    assert runs["fp32"] != runs["bf16"] and abs(runs["fp32"] - runs["bf16"]) < 0.05 * runs["fp32"]
    # a run resumed at auto keeps the arithmetic it started with; one from before the choice existed, fp32
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    _run(tmp_path / "old", steps=4, stop_after=2, precision="fp32")
    last = tmp_path / "old" / "last.pt"
    state = load_checkpoint(last, kind="segmenter")
    del state["provenance"]["precision"], state["format_version"]
    from napari_nanogan.models.checkpoint import save_checkpoint

    save_checkpoint(last, state)
    _run(tmp_path / "old", steps=4)
    assert load_checkpoint(last, kind="segmenter")["provenance"]["precision"] == "fp32"
    monkeypatch.setenv(PRECISION_ENV, "fp16")
    with pytest.raises(ValueError, match="NANOGAN_PRECISION"):
        _run(tmp_path / "refused", steps=1)
    assert not (tmp_path / "refused").exists()


def test_training_reduces_loss(tmp_path):
    torch.manual_seed(0)
    config = TrainConfig(steps=30, batch_size=4, patch_size=64, lr=3e-3, val_every=1000, checkpoint_every=1000, warmup_steps=3)
    recs = list(train_segmenter({"sem": _samples(3)}, [], out_dir=tmp_path, config=config, model_config=SMALL, device="cpu"))
    first = np.mean([r.losses["total"] for r in recs[:5]])
    last = np.mean([r.losses["total"] for r in recs[-5:]])
    assert last < first


def test_no_samples_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no training samples"):
        list(train_segmenter({}, [], out_dir=tmp_path))


def test_tune_postprocess_returns_a_grid_member(tiny_segmenter):
    from napari_nanogan.training.tuning import tune_postprocess

    grid = {"seed_method": ["components", "peaks"], "seed_threshold": [0.3, 0.6], "smooth_sigma": [0.0],
            "min_distance": [5], "fg_threshold": [0.5]}
    ticks = []
    cfg, info = tune_postprocess(tiny_segmenter, _samples(2), grid, progress=lambda d, t: ticks.append((d, t)))
    assert cfg.seed_method in ("components", "peaks") and cfg.seed_threshold in (0.3, 0.6)
    assert info["candidates"] == 4 and 0 <= info["best_score"] <= 1
    assert ticks == [(k, 6) for k in range(1, 7)]  # 2 network passes, then 4 candidates
    # the same choice and scores from two worker processes
    pooled_ticks = []
    cfg2, info2 = tune_postprocess(tiny_segmenter, _samples(2), grid, progress=lambda d, t: pooled_ticks.append((d, t)),
                                   workers=2)
    assert cfg2 == cfg and info2 == info and pooled_ticks == ticks
    # a value the grid does not search that was set on what validation may lack (rods) is the model's own
    import dataclasses

    tiny_segmenter.postprocess = dataclasses.replace(tiny_segmenter.postprocess, merge_interior=0.5)
    try:
        kept, info3 = tune_postprocess(tiny_segmenter, _samples(2), grid)
        assert kept.merge_interior == 0.5 and info3["fixed"] == {"merge_interior": 0.5}
        given, _ = tune_postprocess(tiny_segmenter, _samples(2), grid, fixed={"merge_interior": 0.0})
        assert given.merge_interior == 0.0
    finally:
        tiny_segmenter.postprocess = dataclasses.replace(tiny_segmenter.postprocess, merge_interior=0.0)


def test_equivalent_diameters_of_whole_particles_skip_border_and_fragments():
    from napari_nanogan.measure import equivalent_diameters

    yy, xx = np.mgrid[:100, :100]
    labels = np.zeros((100, 100), np.int32)
    labels[(yy - 50) ** 2 + (xx - 50) ** 2 <= 100] = 1  # whole disc, r = 10
    labels[(yy - 5) ** 2 + (xx - 90) ** 2 <= 64] = 2  # cut by the top border
    labels[80:83, 20:23] = 3  # 9-px fragment
    assert equivalent_diameters(labels).shape == (3,)
    assert equivalent_diameters(labels, min_area=16).shape == (2,)
    ecd = equivalent_diameters(labels, min_area=16, whole_only=True)
    assert ecd.shape == (1,)
    assert ecd[0] == pytest.approx(2 * np.sqrt((labels == 1).sum() / np.pi))
    assert ecd[0] == pytest.approx(20, rel=0.05)


def test_tune_size_weight_prefers_the_right_sizes(tiny_segmenter):
    from napari_nanogan.training.tuning import tune_postprocess

    grid = {"seed_method": ["combined"], "seed_threshold": [0.3], "smooth_sigma": [0.0, 2.0],
            "min_distance": [2, 4, 12], "fg_threshold": [0.3, 0.5, 0.7]}
    samples = _samples(2)
    _, plain = tune_postprocess(tiny_segmenter, samples, grid)
    _, sized = tune_postprocess(tiny_segmenter, samples, grid, size_weight=100.0)
    domain = samples[0].domain
    # on these images the best (IoU + F1) config overestimates D50 by about 46 %, the sized pick by about 11 %
    assert abs(sized["val"][f"{domain}_d50_error"]) < abs(plain["val"][f"{domain}_d50_error"])
    assert sized["size_weight"] == 100.0 and plain["candidates"] == sized["candidates"] == 18


def test_tune_size_quantiles_penalise_the_whole_distribution(tiny_segmenter):
    from napari_nanogan.training.tuning import tune_postprocess

    grid = {"seed_method": ["combined"], "seed_threshold": [0.3], "smooth_sigma": [0.0, 2.0],
            "min_distance": [2, 4, 12], "fg_threshold": [0.3, 0.5, 0.7]}
    samples = _samples(2)
    domain = samples[0].domain
    _, median_only = tune_postprocess(tiny_segmenter, samples, grid, size_weight=100.0)
    _, spread = tune_postprocess(tiny_segmenter, samples, grid, size_weight=100.0, size_quantiles=(10, 50, 90))
    assert spread["size_quantiles"] == [10, 50, 90] and median_only["size_quantiles"] == [50]
    assert {f"{domain}_d{q}_error" for q in (10, 50, 90)} <= set(spread["val"])
    assert f"{domain}_d10_error" not in median_only["val"]
    # the score is (IoU + F1) / 2 - weight x mean |error| over the quantiles
    mean_error = np.mean([abs(spread["val"][f"{domain}_d{q}_error"]) for q in (10, 50, 90)])
    expected = (spread["val"][f"{domain}_iou"] + spread["val"][f"{domain}_f1"]) / 2 - 100.0 * mean_error
    assert spread["best_score"] == pytest.approx(expected, abs=0.01)  # val entries are rounded to 4 decimals


def test_size_quantiles_flag_parses_and_refuses():
    import argparse

    from napari_nanogan.cli.tune import size_quantiles

    assert size_quantiles("10,50,90") == (10, 50, 90)
    for bad in ("", "0,50", "50,100", "ten"):
        with pytest.raises(argparse.ArgumentTypeError, match="whole percentiles in 1-99"):
            size_quantiles(bad)


def test_tune_with_sizes_survives_a_domain_without_whole_particles(tiny_segmenter):
    # every annotated particle touches the border: no size to match there, (IoU + F1) / 2 alone
    from napari_nanogan.training.tuning import tune_postprocess

    sample = _samples(1)[0]
    labels = np.zeros_like(sample.labels)
    labels[:, :40] = 1
    edge = Sample("edge", sample.image, labels, sample.low, sample.high, "edge")
    grid = {"seed_method": ["components"], "fg_threshold": [0.4, 0.5]}
    cfg, info = tune_postprocess(tiny_segmenter, [edge, *_samples(1)], grid, size_weight=1.0,
                                 size_quantiles=(10, 50, 90))
    assert cfg.fg_threshold in (0.4, 0.5) and np.isfinite(info["best_score"])
    assert "edge_d50_error" not in info["val"] and "sem_d50_error" in info["val"]
    with pytest.raises(ValueError, match="whole percentiles"):
        tune_postprocess(tiny_segmenter, [edge], grid, size_quantiles=(2.5,))


def test_randomized_pairs_at_the_model_s_scale_have_the_sizes_images_have_at_inference():
    from napari_nanogan.config import MAX_ENLARGE, MODEL_DIAMETER_PX
    from napari_nanogan.data.randomized import RandomizedSource
    from napari_nanogan.measure import median_diameter

    source = RandomizedSource.at_model_scale(1.1)  # the sizes of images resized for an estimate
    assert source.min_diameter == MODEL_DIAMETER_PX / 3 < MODEL_DIAMETER_PX / MAX_ENLARGE < source.max_diameter
    rng = np.random.default_rng(0)
    medians = [median_diameter(source.draw(rng, 192).labels) for _ in range(6)]
    assert all(5 < m < 36 for m in medians if np.isfinite(m)) and sum(np.isfinite(medians)) >= 3
    assert RandomizedSource.at_model_scale().max_diameter == 3 * MODEL_DIAMETER_PX  # own-scale sizes too


def test_a_patch_size_needs_only_the_networks_multiple(tmp_path):
    """40 px suits a depth-4 network (a multiple of 8); a size the network cannot halve to its bottom is named."""
    from napari_nanogan.config import SegmenterConfig, TrainConfig
    from napari_nanogan.data.procedural import particle_labels, render_sem
    from napari_nanogan.data.datasets import sample_from_arrays
    from napari_nanogan.training.segmenter import train_segmenter

    labels = particle_labels((96, 96), n_particles=8, mean_diameter=12, seed=0)
    train = {"a": [sample_from_arrays("a", render_sem(labels, seed=0), labels)]}
    small = SegmenterConfig(base_channels=4, depth=4)
    config = TrainConfig(steps=1, batch_size=1, patch_size=40, val_every=10, checkpoint_every=10)
    assert list(train_segmenter(train, [], out_dir=tmp_path / "ok", config=config, model_config=small))
    with pytest.raises(ValueError, match="multiple of 16"):
        next(train_segmenter(train, [], out_dir=tmp_path / "no", config=config,
                             model_config=SegmenterConfig(base_channels=4, depth=5)))
    for side in (24, 4096):
        with pytest.raises(ValueError, match="from 32 to 2048"):
            TrainConfig(patch_size=side)
