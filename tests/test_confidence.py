"""A confidence per particle: features from the network's maps, a calibrated model, and where it shows up."""

import numpy as np
import pytest
from conftest import requires_shipped

from napari_nanogan.segmentation.confidence import FEATURES, ConfidenceModel, particle_confidence, particle_features
from napari_nanogan.training.confidence import fit_confidence, matched, reliability


def _maps():
    labels = np.zeros((40, 60), np.int32)
    labels[2:12, 2:12] = 1
    labels[2:12, 12:22] = 2  # touches 1
    labels[25:35, 40:50] = 3  # alone, and faint
    fg = np.where(labels > 0, 0.95, 0.02).astype(np.float32)
    fg[25:35, 40:50] = 0.55
    interior = np.zeros_like(fg)
    interior[5:9, 5:9] = interior[5:9, 15:19] = 0.9
    interior[28:32, 43:47] = 0.3
    return labels, fg, interior


def test_features_follow_the_maps():
    labels, fg, interior = _maps()
    f = particle_features(labels, fg, interior)
    assert f.shape == (3, len(FEATURES))
    col = {name: f[:, k] for k, name in enumerate(FEATURES)}
    np.testing.assert_allclose(col["mean_foreground"], [0.95, 0.95, 0.55], atol=1e-6)
    np.testing.assert_allclose(col["max_interior"], [0.9, 0.9, 0.3], atol=1e-6)
    assert col["shared_outline"][0] > 0 and col["shared_outline"][1] > 0 and col["shared_outline"][2] == 0
    assert col["edge_contrast"][2] < col["edge_contrast"][0]
    np.testing.assert_allclose(col["solidity"], 1.0)  # rectangles fill their hulls
    # uint8 maps (as segment() gives them) give the same features
    np.testing.assert_allclose(particle_features(labels, np.round(fg * 255).astype(np.uint8),
                                                 np.round(interior * 255).astype(np.uint8)), f, atol=0.01)
    assert particle_features(np.zeros((5, 5), int), fg[:5, :5], interior[:5, :5]).shape == (0, len(FEATURES))


def test_solidity_is_low_for_a_crescent_and_a_merged_pair():
    from skimage.draw import disk

    from napari_nanogan.segmentation.confidence import solidity

    labels = np.zeros((80, 120), np.int32)
    labels[disk((20, 20), 12)] = 1  # a disc
    labels[disk((20, 70), 14)] = 2
    labels[disk((24, 64), 12)] = 0  # a crescent: a disc with a disc bitten off
    labels[disk((60, 30), 10)] = 3  # two discs joined at a neck
    labels[disk((60, 52), 10)] = 3
    labels[58:62, 38:45] = 3
    s = solidity(labels, 4)
    assert s[0] > 0.95 and s[1] < 0.6 and s[2] < 0.9 and s[3] == 1.0  # label 4 has no pixels


def test_a_model_fitted_on_the_first_six_features_still_loads_and_predicts():
    """Fine-tuned bundles keep their starting network's confidence model, fitted before solidity was a feature."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, len(FEATURES)))
    y = rng.random(300) < 1 / (1 + np.exp(-x[:, 0]))
    six = fit_confidence(x[:, :6], y, np.arange(300) % 10)[0]
    assert six.features == FEATURES[:6]
    old = ConfidenceModel.from_dict(six.to_dict())  # as such a model was written
    assert old.features == FEATURES[:6]
    np.testing.assert_allclose(old.predict(x), six.predict(x[:, :6]), rtol=1e-5)
    with pytest.raises(ValueError, match="fit-confidence"):  # names and weights must agree
        ConfidenceModel.from_dict({**six.to_dict(), "features": list(FEATURES)})


@requires_shipped
def test_the_shipped_sem_tio2_confidence_of_six_features_still_scores_its_particles(sem_like):
    from napari_nanogan.segmentation import load_segmenter, segment

    model = load_segmenter("sem-tio2", device="cpu")
    assert model.confidence_model.features == FEATURES[:6]
    result = segment(sem_like[0], model)
    assert result.count > 5 and ((result.confidence > 0) & (result.confidence < 1)).all()


def test_solidity_of_thin_tiny_and_float_labelled_particles():
    from napari_nanogan.segmentation.confidence import solidity

    labels = np.zeros((20, 20), np.float64)  # float label images are read too
    labels[2, 2] = 1  # one pixel
    labels[5, 2:15] = 2  # a line
    for k in range(6):  # a diagonal staircase: its hull holds empty squares
        labels[8 + k, 2 + k] = 3
    s = solidity(labels, 4)
    assert s[[0, 1, 3]] == pytest.approx(1.0) and 0.3 < s[2] < 0.8


def test_without_a_model_the_confidence_is_the_mean_foreground():
    labels, fg, interior = _maps()
    np.testing.assert_allclose(particle_confidence(labels, fg, interior), [0.95, 0.95, 0.55], atol=1e-6)


def test_matched_means_an_annotated_particle_at_iou_half():
    truth = np.zeros((20, 20), int)
    truth[2:10, 2:10] = 1
    pred = np.zeros_like(truth)
    pred[2:10, 2:9] = 1  # IoU 0.875
    pred[12:18, 12:18] = 3  # nothing there
    pred[2:4, 12:14] = 2
    assert matched(truth, pred).tolist() == [True, False, False]


def test_fitted_confidence_is_calibrated_and_round_trips():
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=(n, len(FEATURES)))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - 1.0 * x[:, 2] + 0.3)))
    y = rng.random(n) < p
    images = np.arange(n) % 40
    model, held = fit_confidence(x, y, images)
    assert held.shape == y.shape
    cv = model.metrics["cross_validated"]
    assert cv["ece"] < 0.05 and cv["auc"] > 0.75, cv
    q = model.predict(x)
    assert reliability(q, y)["ece"] < 0.05 and np.corrcoef(q, p)[0, 1] > 0.95
    again = ConfidenceModel.from_dict(model.to_dict())
    np.testing.assert_allclose(again.predict(x), q, rtol=1e-5)
    with pytest.raises(ValueError, match="fit-confidence"):
        ConfidenceModel.from_dict({**model.to_dict(), "features": ["other"]})
    with pytest.raises(ValueError, match="some matched"):
        fit_confidence(x[:30], np.ones(30, bool), images[:30])


def test_segment_gives_a_confidence_per_particle_and_the_cli_keeps_it(tmp_path, tiny_checkpoint, sem_like, capsys):
    import tifffile

    from napari_nanogan.cli import main
    from napari_nanogan.io.images import read_label_table
    from napari_nanogan.segmentation import Segmenter, segment

    image, _ = sem_like
    result = segment(image, Segmenter.from_checkpoint(tiny_checkpoint, device="cpu"))
    assert result.confidence.shape == (result.count,)
    assert ((result.confidence >= 0) & (result.confidence <= 1)).all()
    tifffile.imwrite(tmp_path / "a.tif", image)
    assert main(["segment", str(tmp_path / "a.tif"), "--out", str(tmp_path / "out"), "--model", str(tiny_checkpoint)]) == 0
    table = read_label_table(tmp_path / "out" / "a_labels.tif", result.count)
    np.testing.assert_allclose(table, result.confidence, atol=1e-4)
    assert main(["measure", str(tmp_path / "out" / "a_labels.tif"), "--out", str(tmp_path / "sizes.csv")]) == 0
    header, *rows = (tmp_path / "sizes.csv").read_text().splitlines()
    column = header.split(",").index("confidence")
    labels = tifffile.imread(tmp_path / "out" / "a_labels.tif")
    assert len(rows) == len(np.unique(labels)) - 1
    first = rows[0].split(",")
    assert float(first[column]) == pytest.approx(result.confidence[int(first[1]) - 1], abs=1e-4)


def test_a_confidence_threshold_is_taken_only_where_it_lifts_f1():
    from napari_nanogan.training.confidence import choose_min_confidence

    p = np.array([0.9] * 80 + [0.1] * 40)
    matched_ = np.array([True] * 80 + [False] * 40)  # the doubtful ones are all false particles
    area = np.full(120, 100.0)
    threshold, f1 = choose_min_confidence(p, matched_, area, annotated=90)
    assert threshold > 0.1 and f1[round(threshold, 2)] > f1[0.0]
    honest = np.array([True] * 120)  # doubtful but real: dropping them only loses particles
    assert choose_min_confidence(p, honest, area, annotated=120)[0] == 0.0


def test_doubtful_particles_are_dropped_and_the_rest_renumbered():
    from napari_nanogan.segmentation.confidence import drop_doubtful

    labels = np.array([[1, 1, 0, 2], [3, 3, 0, 2]])
    out, kept = drop_doubtful(labels, np.array([0.9, 0.2, 0.7]), 0.5)
    assert out.tolist() == [[1, 1, 0, 0], [2, 2, 0, 0]] and kept.tolist() == [0.9, 0.7]


def test_features_of_a_missing_label_number_are_zero_not_infinite():
    from napari_nanogan.segmentation.confidence import particle_features

    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 2:8] = 1
    labels[12:18, 12:18] = 3  # no particle 2
    fg = np.full((20, 20), 0.8, np.float32)
    features = particle_features(labels, fg, fg)
    assert features.shape[0] == 3 and np.isfinite(features).all()
    assert features[1, 1] == 0.0 and features[0, 1] == features[2, 1] == pytest.approx(0.8)


def test_refitting_the_confidence_samples_every_particle_not_those_the_old_one_kept(tiny_checkpoint, sem_like):
    """``nanogan fit-confidence`` on a model whose min_confidence drops particles still learns from them."""
    import dataclasses

    from napari_nanogan.data.datasets import sample_from_arrays
    from napari_nanogan.segmentation import Segmenter, segment
    from napari_nanogan.training.confidence import sample_examples

    image, labels = sem_like
    segmenter = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")
    sample = sample_from_arrays("a", image[: labels.shape[0]], labels, domain="test")
    every = segment(sample.image, segmenter, info_bar=None, small_pass=False, scale_check=False, polarity_check=False,
                    postprocess=dataclasses.replace(segmenter.postprocess, min_confidence=0.0))
    assert every.count > 0
    segmenter.postprocess = dataclasses.replace(segmenter.postprocess, min_confidence=1.0)  # keeps none
    x, y, images, _ = sample_examples(segmenter, [sample])
    assert len(x) == every.count


def test_the_fit_takes_the_named_columns_and_the_shipped_set_is_the_networks_maps_alone():
    from napari_nanogan.segmentation.confidence import FIT_FEATURES

    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, len(FEATURES)))
    y = rng.random(400) < 1 / (1 + np.exp(-x[:, 6]))  # only the solidity column matters here
    maps_only, _ = fit_confidence(x, y, np.arange(400) % 10, names=FIT_FEATURES)
    with_shape, _ = fit_confidence(x, y, np.arange(400) % 10)
    assert maps_only.features == FIT_FEATURES and "solidity" not in FIT_FEATURES
    assert with_shape.features == FEATURES
    assert with_shape.metrics["cross_validated"]["auc"] > maps_only.metrics["cross_validated"]["auc"] + 0.1


def _solidity_model(threshold: float) -> ConfidenceModel:
    """A final confidence model that trusts solid particles only (solidity 1 -> 0.97, 0.45 -> 0.05)."""
    weights = np.zeros(len(FEATURES))
    weights[FEATURES.index("solidity")] = 12.0
    return ConfidenceModel(np.full(len(FEATURES), 0.7), np.ones(len(FEATURES)), weights, 0.0,
                           {"min_confidence": threshold})


def _with_a_crescent():
    labels, fg, interior = _maps()
    labels[20:38, 2:20] = 4  # a square ...
    labels[23:35, 5:20] = 0  # ... hollowed into a "C": solidity about 0.5
    fg[labels == 4] = 0.95
    return labels, fg, interior


def test_the_final_confidence_is_the_final_models_and_drops_under_its_threshold():
    from types import SimpleNamespace

    from napari_nanogan.segmentation.marks import judge_final

    labels, fg, interior = _with_a_crescent()
    passes = particle_confidence(labels, fg, interior)
    kept, confidence = judge_final(labels, passes, fg, interior, SimpleNamespace(final_confidence_model=None))
    assert kept is labels and confidence is passes  # no final model: as the passes left them
    only_reported = SimpleNamespace(final_confidence_model=_solidity_model(0.0))
    kept, confidence = judge_final(labels, passes, fg, interior, only_reported)
    assert kept is labels and confidence.shape == (4,) and confidence[3] < 0.1 < 0.9 < confidence[:3].min()
    dropping = SimpleNamespace(final_confidence_model=_solidity_model(0.5))
    kept, confidence = judge_final(labels, passes, fg, interior, dropping)
    assert kept.max() == 3 and not (kept[labels == 4]).any() and len(confidence) == 3
    empty = np.zeros_like(labels)
    assert judge_final(empty, np.zeros(0), fg, interior, dropping)[0] is empty


def test_a_final_confidence_model_is_stored_beside_the_passes_one_and_used_by_segment(tmp_path, tiny_checkpoint,
                                                                                      sem_like):
    import dataclasses

    from napari_nanogan.segmentation import Segmenter, segment
    from napari_nanogan.training.amend import with_confidence_model
    from napari_nanogan.training.confidence import sample_examples
    from napari_nanogan.data.datasets import sample_from_arrays

    image, labels = sem_like
    plain = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")
    before = segment(image, plain)
    assert before.count > 0 and plain.final_confidence_model is None
    rng = np.random.default_rng(0)
    weights = rng.normal(size=len(FEATURES))
    final = ConfidenceModel(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), weights, 0.1, {"min_confidence": 0.0})
    path = with_confidence_model(tiny_checkpoint, tmp_path / "final.pt", final, {"data": "test"}, final=True)
    loaded = Segmenter.from_checkpoint(path, device="cpu")
    assert loaded.confidence_model is plain.confidence_model is None and loaded.postprocess == plain.postprocess
    np.testing.assert_allclose(loaded.final_confidence_model.weights, weights)
    assert loaded.card["final_confidence_model"] == {"data": "test"}
    after = segment(image, loaded)
    np.testing.assert_array_equal(after.labels, before.labels)  # threshold 0: the same particles ...
    np.testing.assert_allclose(after.confidence, final.predict(particle_features(after.labels, after.foreground,
                                                                                 after.interior)), rtol=1e-5)
    dropping = dataclasses.replace(loaded, final_confidence_model=dataclasses.replace(
        final, metrics={"min_confidence": float(np.median(after.confidence)) + 1e-6}))
    fewer = segment(image, dropping)  # ... or fewer, each at least as sure as the threshold
    assert 0 < fewer.count < before.count and fewer.confidence.min() > np.median(after.confidence)
    # refitting samples each pass's particles, not what the final model kept
    sample = sample_from_arrays("a", image[: labels.shape[0]], labels, domain="test")
    assert len(sample_examples(dropping, [sample])[0]) == len(sample_examples(loaded, [sample])[0])


def test_the_final_particles_count_the_small_ones_the_final_model_left():
    from types import SimpleNamespace

    from napari_nanogan.segmentation.marks import final_particles

    labels, fg, interior = _with_a_crescent()  # particles 1-3 from the first pass, the crescent (4) added after
    grey = np.full(labels.shape, 100, np.uint8)  # no scale bar, no ink
    grey[labels > 0] = 150
    passes = particle_confidence(labels, fg, interior)
    for threshold, added in ((0.0, 1), (0.5, 0)):
        network = SimpleNamespace(final_confidence_model=_solidity_model(threshold))
        out, confidence, count = final_particles(grey, labels, passes, fg, interior, network, slice(None), 3)
        assert count == added and out.max() == 3 + added and len(confidence) == 3 + added


def test_kept_by_follows_the_passes_confidence_or_the_mean_foreground_without_a_model():
    import dataclasses
    from types import SimpleNamespace

    from napari_nanogan.config import PostprocessConfig
    from napari_nanogan.training.confidence import kept_by

    x = np.zeros((4, len(FEATURES)))
    x[:, 0] = [0.2, 0.5, 0.7, 0.9]
    plain = SimpleNamespace(confidence_model=None, postprocess=PostprocessConfig())
    assert kept_by(plain, x).all()  # min_confidence 0: every particle is judged
    plain.postprocess = dataclasses.replace(plain.postprocess, min_confidence=0.6)
    assert kept_by(plain, x).tolist() == [False, False, True, True]
    weights = np.zeros(len(FEATURES))
    weights[FEATURES.index("mean_foreground")] = -10.0  # a model that trusts the faint ones: its own view counts
    plain.confidence_model = ConfidenceModel(np.full(len(FEATURES), 0.55), np.ones(len(FEATURES)), weights, 0.0, {})
    assert kept_by(plain, x).tolist() == [True, True, False, False]


def test_fit_confidence_shape_stores_a_final_model_and_keeps_the_passes_one(tmp_path, tiny_checkpoint, monkeypatch,
                                                                             capsys):
    import json

    from napari_nanogan.cli import main
    from napari_nanogan.config import PostprocessConfig
    from napari_nanogan.models.checkpoint import load_checkpoint
    from napari_nanogan.training import confidence as fitting
    from napari_nanogan.training.amend import with_confidence_model

    rng = np.random.default_rng(3)
    n = 600
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, 0] = rng.uniform(0, 1, n)
    x[:, 4] = np.log(rng.uniform(20, 400, n))
    y = rng.random(n) < 1 / (1 + np.exp(-3 * x[:, 6]))  # the solidity column decides
    monkeypatch.setattr(fitting, "sample_examples", lambda *a, **k: (x, y, np.arange(n) % 12, int(y.sum())))
    monkeypatch.setattr("napari_nanogan.data.datasets.shared_splits", lambda root: {  # (the examples above)
        "bam": {"val": []}, "emps": {"val": []}})
    passes = ConfidenceModel(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.eye(len(FEATURES))[0] * 4, -2.0, {})
    start = with_confidence_model(tiny_checkpoint, tmp_path / "start.pt", passes, {},
                                  postprocess=PostprocessConfig(min_confidence=0.3))
    out = tmp_path / "final.pt"
    assert main(["fit-confidence", "--model", str(start), "--out", str(out), "--shape",
                 "--data-root", str(tmp_path / "data")]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    data = load_checkpoint(out, kind="segmenter")
    kept = int((passes.predict(x) >= 0.3).sum())
    assert 0 < kept < n and metrics["cross_validated"]["particles"] == kept and metrics["fitted_particles"] == n
    assert metrics["cross_validated"]["auc"] > metrics["maps_only_cross_validated"]["auc"] + 0.1
    assert data["final_confidence_model"]["features"] == list(FEATURES)
    assert data["postprocess"]["min_confidence"] == 0.3 and data["confidence_model"]["features"] == list(FEATURES)
    np.testing.assert_allclose(data["confidence_model"]["weights"], passes.weights, rtol=1e-6)
    # refitting the passes' model leaves the final one out (it was fitted on what the old one kept), and says so
    again = tmp_path / "again.pt"
    assert main(["fit-confidence", "--model", str(out), "--out", str(again), "--data-root", str(tmp_path / "data")]) == 0
    assert "fit it again with `nanogan fit-confidence --shape`" in capsys.readouterr().err
    assert "final_confidence_model" not in load_checkpoint(again, kind="segmenter")
