import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_nanogan.data.datasets import Sample
from napari_nanogan.data.procedural import particle_labels, render_sem
from napari_nanogan.models.checkpoint import load_checkpoint
from napari_nanogan.config import Preset
from napari_nanogan.training import finetune as ft


def _samples(n=1, shape=(128, 128)):
    out = []
    for s in range(n):
        lab = particle_labels(shape, n_particles=25, mean_diameter=12, seed=s)
        im = render_sem(lab, seed=s)
        out.append(Sample(f"s{s}", im, lab, float(np.percentile(im, 1)), float(np.percentile(im, 99.8)), "user"))
    return out


@pytest.fixture
def fast_preset(monkeypatch):
    monkeypatch.setitem(ft.PRESETS, "quick", Preset(2, 0, "test", patch_size=32, batch_size=2))
    monkeypatch.setitem(ft.PRESETS, "standard", Preset(2, 2, "test", patch_size=32, batch_size=2))


def _run(loop):
    records = []
    while True:
        try:
            records.append(next(loop))
        except StopIteration as done:
            return records, done.value


def test_the_verdict_needs_a_clear_move_of_held_out_f1_or_iou():
    base = {"f1": 0.80, "iou": 0.90}
    assert ft.judge(base, {"f1": 0.80, "iou": 0.902}) == ft.SAME  # a tie in F1, IoU 0.002 higher
    assert ft.judge(base, {"f1": 0.805, "iou": 0.90}) == ft.SAME
    assert ft.judge(base, {"f1": 0.83, "iou": 0.85}) == ft.BETTER  # F1 decides where it moved
    assert ft.judge(base, {"f1": 0.78, "iou": 0.95}) == ft.WORSE
    assert ft.judge(base, {"f1": 0.805, "iou": 0.93}) == ft.BETTER  # F1 within its margin: IoU decides
    assert ft.judge(base, {"f1": 0.795, "iou": 0.87}) == ft.WORSE
    assert ft.judge({"f1": 0.83, "iou": 0.9}, {"f1": 0.84, "iou": 0.9}) == ft.BETTER  # 0.00999... in floating point
    result = ft.FinetuneResult(Path("m.pt"), base, base, steps=300, seconds=1.0, verdict=ft.SAME)
    assert not result.better and "no clear difference from default" in ft.verdict_text(result, "default", "use it")


def test_split_rows_holds_out_the_bottom():
    train, val = ft.split_rows(_samples(1))
    assert train[0].image.shape == (96, 128) and val[0].image.shape == (32, 128)
    with pytest.raises(ValueError, match="too small"):
        ft.split_rows(_samples(1, (40, 64)))


def test_finetune_bundle_usable_for_segment_and_synthesize(tmp_path, tiny_checkpoint, tiny_generator_checkpoint, fast_preset):
    from napari_nanogan.synthesis import load_generator
    from napari_nanogan.segmentation import load_segmenter

    records, result = _run(ft.finetune(_samples(2), out_path=tmp_path / "mine.pt", base_segmenter=str(tiny_checkpoint),
                                       base_generator=str(tiny_generator_checkpoint), preset="standard", device="cpu"))
    assert [r.step for r in records if r.losses] == [1, 2, 3, 4]  # 2 segmenter steps, then 2 of the cycle GAN
    stages = [r.stage for r in records]
    assert stages[1].startswith("scoring the starting model") and stages[-1].startswith("scoring the fine-tuned")
    assert load_checkpoint(result.path)["card"]["generator_adapted"] is True
    # the cycle GAN trains the network alone: the bundle's generator has its finishing refitted on the rows
    assert load_checkpoint(result.path)["generator"]["postprocess"]["noise_residual"] > 0
    assert set(result.before) >= {"iou", "f1"} and set(result.after) >= {"iou", "f1"}
    assert result.warnings  # 2 small images hold out fewer than 20 particles
    bundle = load_checkpoint(result.path)
    assert bundle["kind"] == "bundle" and bundle["card"]["preset"] == "standard" and bundle["card"]["images"] == ["s0", "s1"]
    assert load_segmenter(result.path, device="cpu").config.base_channels == 4
    assert load_generator(result.path, device="cpu").config.base_channels == 8


def test_finetune_cancel_keeps_a_model(tmp_path, tiny_checkpoint, tiny_generator_checkpoint, fast_preset):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 1

    records, result = _run(ft.finetune(_samples(1), out_path=tmp_path / "c.pt", base_segmenter=str(tiny_checkpoint),
                                       base_generator=str(tiny_generator_checkpoint), should_stop=stop, device="cpu"))
    assert any(r.stopped for r in records) and result.path.is_file() and result.stopped
    assert any("too few to help" in w for w in result.warnings)
    bundle = load_checkpoint(result.path)
    assert bundle["card"]["generator_adapted"] is False and "generator" in bundle  # the base one, as it was


def test_finetune_says_whether_a_stop_came_before_its_planned_steps(tmp_path, tiny_checkpoint, tiny_generator_checkpoint,
                                                                  fast_preset):
    """Stop asked just after the segmenter's last step: the whole run (quick) or before the cycle GAN (standard)."""
    for preset, stopped in (("quick", False), ("standard", True)):
        asked = {"stop": False}
        loop = ft.finetune(_samples(1), out_path=tmp_path / f"{preset}.pt", base_segmenter=str(tiny_checkpoint),
                           base_generator=str(tiny_generator_checkpoint), preset=preset,
                           should_stop=lambda: asked["stop"], device="cpu")
        records = []
        while True:
            try:
                records.append(next(loop))
            except StopIteration as done:
                result = done.value
                break
            if records[-1].losses and records[-1].step == 2:  # the segmenter's last step is done
                asked["stop"] = True
        assert not any(r.stopped for r in records) and result.steps == 2
        assert result.stopped is stopped, preset


def test_finetune_without_generator_and_bad_input(tmp_path, tiny_checkpoint, fast_preset, monkeypatch):
    made = []
    mkdtemp = ft.tempfile.mkdtemp
    monkeypatch.setattr(ft.tempfile, "mkdtemp", lambda **kw: made.append(mkdtemp(dir=tmp_path, **kw)) or made[-1])
    _, result = _run(ft.finetune(_samples(1), out_path=tmp_path / "s.pt", base_segmenter=str(tiny_checkpoint),
                                 base_generator="no-such-generator", preset="standard", device="cpu"))
    assert any("segmenter alone" in w for w in result.warnings)
    assert "generator" not in load_checkpoint(result.path)
    assert made and not any(map(os.path.exists, made))  # the temporary run folder is gone
    with pytest.raises(ValueError, match="is a folder"):  # checked before training, not after
        next(ft.finetune(_samples(1), out_path=tmp_path, base_segmenter=str(tiny_checkpoint)))
    assert len(made) == 1
    empty = _samples(1)[0]
    empty.labels = np.zeros_like(empty.labels)
    with pytest.raises(ValueError, match="empty"):
        next(ft.finetune([empty], out_path=tmp_path / "e.pt", base_segmenter=str(tiny_checkpoint)))
    empty.labels = np.ones_like(empty.labels)  # no background at all: an inverted mask, most likely
    with pytest.raises(ValueError, match="no background; is it inverted"):
        next(ft.finetune([empty], out_path=tmp_path / "e.pt", base_segmenter=str(tiny_checkpoint)))
    with pytest.raises(ValueError, match="unknown preset"):
        next(ft.finetune(_samples(1), out_path=tmp_path / "e.pt", preset="forever"))


def test_finetune_cli_contract(tmp_path, tiny_checkpoint, tiny_generator_checkpoint, fast_preset, sem_like):
    from napari_nanogan.cli import main

    image, labels = sem_like
    tifffile.imwrite(tmp_path / "a.tif", image[: labels.shape[0]])
    tifffile.imwrite(tmp_path / "a_mask.tif", (labels > 0).astype(np.uint8) * 255)
    out = tmp_path / "model.pt"
    rc = main(["finetune", "--images", str(tmp_path / "a.tif"), "--masks", str(tmp_path / "a_mask.tif"), "--out", str(out),
               "--preset", "quick", "--base-segmenter", str(tiny_checkpoint), "--base-generator", str(tiny_generator_checkpoint)])
    assert rc == 0 and out.is_file()
    assert main(["segment", str(tmp_path / "a.tif"), "--out", str(tmp_path / "seg"), "--model", str(out)]) == 0
    assert main(["synthesize", str(tmp_path / "a_mask.tif"), "--out", str(tmp_path / "syn"), "--model", str(out)]) == 0
    assert tifffile.imread(tmp_path / "syn" / "a_mask_0.tif").shape == labels.shape
    assert main(["finetune", "--images", str(tmp_path / "a.tif"), "--masks", "x.tif", "y.tif", "--out", str(out)]) == 2


def test_finetune_steps_replace_the_presets(tmp_path, tiny_checkpoint, tiny_generator_checkpoint, fast_preset, sem_like,
                                            capsys):
    from napari_nanogan.cli import main

    image, labels = sem_like
    tifffile.imwrite(tmp_path / "a.tif", image[: labels.shape[0]])
    tifffile.imwrite(tmp_path / "a_mask.tif", (labels > 0).astype(np.uint8) * 255)
    out = tmp_path / "model.pt"
    rc = main(["finetune", "--images", str(tmp_path / "a.tif"), "--masks", str(tmp_path / "a_mask.tif"), "--out", str(out),
               "--preset", "standard", "--steps", "3", "--gan-steps", "0", "--base-segmenter", str(tiny_checkpoint),
               "--base-generator", str(tiny_generator_checkpoint)])
    assert rc == 0 and "preset standard: 3 segmenter steps" in capsys.readouterr().err
    card = load_checkpoint(out)["card"]
    assert card["planned_steps"] == [3, 0] and card["steps"] == 3 and not card["generator_adapted"]
    for bad, words in ((["--steps", "0"], "must be at least 1"), (["--gan-steps", "-1"], "must be at least 0"),
                       (["--steps", "x"], "expected a whole number >= 1")):
        with pytest.raises(SystemExit):
            main(["finetune", "--images", "a.tif", "--masks", "b.tif", "--out", str(out), *bad])
        assert words in capsys.readouterr().err
    with pytest.raises(ValueError, match="steps must be a whole number of 1 or more"):
        next(ft.finetune(_samples(1), out_path=tmp_path / "m2.pt", steps=0, base_segmenter=str(tiny_checkpoint)))


def test_finetune_cli_names_the_files_of_a_pair_it_refuses(tmp_path, tiny_checkpoint, sem_like, capsys):
    from napari_nanogan.cli import main

    image, labels = sem_like
    for folder in ("a", "b"):  # one stem in two folders: the stem alone would not say which
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "field.tif", image[: labels.shape[0]])
    tifffile.imwrite(tmp_path / "a" / "mask.tif", (labels > 0).astype(np.uint8) * 255)
    tifffile.imwrite(tmp_path / "b" / "mask.tif", np.zeros(labels.shape, np.uint8))
    rc = main(["finetune", "--images", str(tmp_path / "a" / "field.tif"), str(tmp_path / "b" / "field.tif"),
               "--masks", str(tmp_path / "a" / "mask.tif"), str(tmp_path / "b" / "mask.tif"),
               "--out", str(tmp_path / "m.pt"), "--base-segmenter", str(tiny_checkpoint)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{tmp_path / 'b' / 'field.tif'} (mask {tmp_path / 'b' / 'mask.tif'}): the mask is empty" in err
    assert not (tmp_path / "m.pt").exists()


def test_finetune_works_at_the_models_particle_size_and_keeps_the_size_model(tmp_path, sized_tiny_checkpoint,
                                                                            fast_preset, monkeypatch):
    # 48-px particles: the user's images are segmented with a diameter, i.e. 2 times smaller, so
    # fine-tuning trains at that size and scores as segment() does; the bundle keeps the base's size model,
    # and its final confidence model
    from napari_nanogan.segmentation import Segmenter
    from napari_nanogan.measure import median_diameter
    from napari_nanogan.segmentation import load_segmenter
    from napari_nanogan.config import PostprocessConfig
    from napari_nanogan.segmentation.confidence import FEATURES, ConfidenceModel
    from napari_nanogan.training.amend import with_confidence_model

    final = ConfidenceModel(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.linspace(-1, 1, len(FEATURES)), 0.2,
                            {"min_confidence": 0.0})
    sized_tiny_checkpoint = with_confidence_model(sized_tiny_checkpoint, tmp_path / "sized_final.pt", final, {},
                                                  final=True, postprocess=PostprocessConfig(min_confidence=0.05))

    lab = particle_labels((256, 256), n_particles=12, mean_diameter=48, seed=3)
    im = render_sem(lab, seed=3)
    big = Sample("big", im, lab, float(np.percentile(im, 1)), float(np.percentile(im, 99.8)), "user")
    scored = []
    real_score = ft.score
    monkeypatch.setattr(ft, "score", lambda seg, samples: scored.append([s.image.shape for s in samples])
                        or real_score(seg, samples))
    _, result = _run(ft.finetune([big, _samples(1)[0]], out_path=tmp_path / "big.pt",
                                 base_segmenter=str(sized_tiny_checkpoint), base_generator=None, device="cpu"))
    factor = 24.0 / median_diameter(lab[:192])  # the training rows' particles
    card = load_checkpoint(result.path)["card"]
    assert card["scale_factors"][0] == pytest.approx(factor, abs=1e-4) and card["scale_factors"][1] == 1.0
    assert scored[0] == scored[1] == [(64, 256), (32, 128)]  # held-out rows as they are: scored as segment() does
    tuned = load_segmenter(result.path, device="cpu")
    base = Segmenter.from_checkpoint(sized_tiny_checkpoint, device="cpu")
    assert tuned.size_model is not None
    np.testing.assert_array_equal(tuned.size_model.reference, base.size_model.reference)
    assert tuned.size_model.k == base.size_model.k
    np.testing.assert_allclose(tuned.final_confidence_model.weights, final.weights)
    assert tuned.postprocess.min_confidence == 0.05  # re-tuned, the confidence threshold kept with its model


def test_finetune_never_shrinks_a_held_out_part_below_what_segment_takes(tmp_path, tiny_checkpoint, fast_preset):
    # particles 200 px across in an image of 128 rows: 8 times smaller would leave 4 held-out rows
    from napari_nanogan.segmentation.tiles import MIN_SIDE

    lab = np.zeros((128, 400), np.int32)
    lab[10:120, 20:380] = 1
    im = np.where(lab > 0, 200, 30).astype(np.uint8)
    huge = Sample("huge", im, lab, 30.0, 200.0, "user")
    _, result = _run(ft.finetune([huge], out_path=tmp_path / "h.pt", base_segmenter=str(tiny_checkpoint),
                                 base_generator=None, device="cpu"))
    factor = load_checkpoint(result.path)["card"]["scale_factors"][0]
    assert factor == pytest.approx(2 * MIN_SIDE / 96, abs=1e-4)  # the 96 training rows keep 2 * MIN_SIDE (rounded in the card)
    assert set(result.after) >= {"iou", "f1"}


def test_finetune_calibrates_the_diameter_estimate_on_the_annotations(tmp_path, sized_tiny_checkpoint, fast_preset):
    # the base's size model says SIZED_DIAMETER px whatever the image; the user's particles are another size:
    # the fine-tuned model's estimate is scaled to the annotated diameters of its training rows
    from conftest import SIZED_DIAMETER
    from napari_nanogan.measure import median_diameter
    from napari_nanogan.segmentation import load_segmenter
    from napari_nanogan.segmentation.sizing import estimate_diameter

    pairs = _big_pairs()
    _, result = _run(ft.finetune(pairs, out_path=tmp_path / "cal.pt", base_segmenter=str(sized_tiny_checkpoint),
                                 base_generator=None, device="cpu"))
    card = load_checkpoint(result.path)["card"]
    truth = [median_diameter(s.labels[:144]) for s in pairs]  # the training rows (bottom quarter held out)
    expected = float(np.exp(np.mean(np.log(np.array(truth) / SIZED_DIAMETER))))
    assert card["size_calibration"]["annotated_px"] == pytest.approx(truth, abs=0.01)
    assert card["size_calibration"]["estimated_px"] == pytest.approx([SIZED_DIAMETER] * 2, abs=0.01)
    assert card["size_calibration"]["correction"] == pytest.approx(expected, abs=1e-3)
    assert abs(np.log(expected)) > 0.1  # the test means something: the base's estimate was off
    assert result.size_calibration == card["size_calibration"]
    tuned = load_segmenter(result.path, device="cpu")
    assert estimate_diameter(pairs[0].image, tuned) == pytest.approx(SIZED_DIAMETER * expected, rel=1e-3)


def test_finetune_from_auto_keeps_the_shipped_sizer(tmp_path, fast_preset, monkeypatch):
    # auto hands bright SEM images to sem-tio2, which has no size model of its own: the fine-tuned
    # network still gets its diameter estimated, by default's size model (what auto used), calibrated
    monkeypatch.setitem(ft.RETUNE_GRID, "seed_method", ["components"])
    from napari_nanogan.segmentation import can_estimate_diameter, load_segmenter, segment

    pairs = _samples(2, shape=(160, 160))
    _, result = _run(ft.finetune(pairs, out_path=tmp_path / "auto.pt", base_segmenter="auto", base_generator=None,
                                 device="cpu"))
    data = load_checkpoint(result.path, kind="segmenter")
    assert data["size_reference"] == "default" and "size_model" not in data
    tuned = load_segmenter(result.path, device="cpu")
    assert tuned.sizer.name == "default" and can_estimate_diameter(tuned)
    assert tuned.size_correction == pytest.approx(load_checkpoint(result.path)["card"]["size_calibration"]["correction"])
    out = segment(pairs[0].image, tuned, diameter="auto")
    assert out.diameter_estimated and out.diameter_px > 0


def test_finetune_cli_says_how_the_diameter_was_calibrated(tmp_path, sized_tiny_checkpoint, tiny_generator_checkpoint,
                                                           fast_preset, capsys):
    from napari_nanogan.cli import main

    lab = particle_labels((192, 192), n_particles=10, mean_diameter=36, seed=5)
    tifffile.imwrite(tmp_path / "a.tif", render_sem(lab, seed=5))
    tifffile.imwrite(tmp_path / "a_mask.tif", lab.astype(np.uint16))
    rc = main(["finetune", "--images", str(tmp_path / "a.tif"), "--masks", str(tmp_path / "a_mask.tif"),
               "--out", str(tmp_path / "m.pt"), "--base-segmenter", str(sized_tiny_checkpoint),
               "--base-generator", str(tiny_generator_checkpoint)])
    out = capsys.readouterr().out  # a result, on stdout
    correction = load_checkpoint(tmp_path / "m.pt")["card"]["size_calibration"]["correction"]
    assert rc == 0 and f"particle diameter estimates x {correction:.2f}, calibrated on your annotations" in out


def _big_pairs():
    pairs = []
    for seed in (5, 6):
        lab = particle_labels((192, 192), n_particles=10, mean_diameter=36, seed=seed)
        im = render_sem(lab, seed=seed)
        pairs.append(Sample(f"p{seed}", im, lab, float(np.percentile(im, 1)), float(np.percentile(im, 99.8)), "user"))
    return pairs


def test_fine_tuning_a_fine_tuned_model_calibrates_from_its_raw_estimate(tmp_path, sized_tiny_checkpoint, fast_preset):
    # the second run measures without the first run's factor, so the factors do not compound
    from napari_nanogan.segmentation import load_segmenter
    from napari_nanogan.segmentation.sizing import estimate_diameter

    pairs = _big_pairs()
    _, first = _run(ft.finetune(pairs, out_path=tmp_path / "one.pt", base_segmenter=str(sized_tiny_checkpoint),
                                base_generator=None, device="cpu"))
    _, second = _run(ft.finetune(pairs, out_path=tmp_path / "two.pt", base_segmenter=str(tmp_path / "one.pt"),
                                 base_generator=None, device="cpu"))
    assert first.size_calibration["correction"] == pytest.approx(second.size_calibration["correction"], rel=1e-3)
    assert abs(np.log(first.size_calibration["correction"])) > 0.1
    one, two = (load_segmenter(tmp_path / f"{n}.pt", device="cpu") for n in ("one", "two"))
    assert estimate_diameter(pairs[0].image, two) == pytest.approx(estimate_diameter(pairs[0].image, one), rel=1e-3)


def test_fitting_a_size_model_replaces_the_size_reference(tmp_path):
    from napari_nanogan.models.checkpoint import save_checkpoint
    from napari_nanogan.segmentation.sizing import SizeModel
    from napari_nanogan.training.amend import with_size_model

    data = load_checkpoint(ft.resolve_model("default"), kind="segmenter")
    data.pop("format_version")
    save_checkpoint(tmp_path / "tuned.pt", {**data, "size_reference": "default", "size_correction": 1.7})
    model = SizeModel.from_dict(data["size_model"])
    with_size_model(tmp_path / "tuned.pt", tmp_path / "refit.pt", model, {"command": "test"})
    refit = load_checkpoint(tmp_path / "refit.pt", kind="segmenter")
    assert "size_reference" not in refit and "size_correction" not in refit and refit["size_model"]


def test_a_missing_or_changed_size_reference_warns_and_still_loads(tmp_path):
    from napari_nanogan.models.checkpoint import save_checkpoint
    from napari_nanogan.segmentation import Segmenter, can_estimate_diameter

    data = load_checkpoint(ft.resolve_model("sem-tio2"), kind="segmenter")
    data.pop("format_version")
    save_checkpoint(tmp_path / "gone.pt", {**data, "size_reference": "no-such-model", "size_correction": 1.5})
    with pytest.warns(UserWarning, match="not available"):
        gone = Segmenter.from_checkpoint(tmp_path / "gone.pt", device="cpu")
    assert not can_estimate_diameter(gone)
    save_checkpoint(tmp_path / "changed.pt", {**data, "size_reference": "default", "size_reference_sha256": "0" * 64})
    with pytest.warns(UserWarning, match="has changed since this model was fine-tuned"):
        changed = Segmenter.from_checkpoint(tmp_path / "changed.pt", device="cpu")
    assert can_estimate_diameter(changed) and changed.sizer.name == "default"
    reference = changed.sizer.sizing_fingerprint()
    save_checkpoint(tmp_path / "same.pt", {**data, "size_reference": "default", "size_reference_sha256": reference})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Segmenter.from_checkpoint(tmp_path / "same.pt", device="cpu")


def test_finetune_trains_at_the_sizes_segment_will_show(tmp_path, tiny_checkpoint, fast_preset, monkeypatch):
    # parts are shrunk to the network's diameter, but diameter="auto" leaves particles up to
    # AUTO_MIN_RATIO times it unshrunk: the scale jitter must reach that far
    from napari_nanogan.config import AUTO_MIN_RATIO

    seen = []
    real = ft.train_segmenter
    monkeypatch.setattr(ft, "train_segmenter", lambda *a, **k: seen.append(k["config"]) or real(*a, **k))
    _run(ft.finetune(_samples(1), out_path=tmp_path / "s.pt", base_segmenter=str(tiny_checkpoint),
                     base_generator=None, device="cpu"))
    low, high = seen[0].scale_range
    assert low <= 0.8 and high >= AUTO_MIN_RATIO


def _bundle(path):
    """A fine-tuned bundle of the shipped `default` segmenter and `tem` generator; returns the two parts."""
    from napari_nanogan.models.checkpoint import save_checkpoint

    seg = load_checkpoint(ft.resolve_model("default"), kind="segmenter")
    gen = load_checkpoint(ft.resolve_model("tem", kind="generator"), kind="generator")
    seg.pop("format_version"), gen.pop("format_version")
    save_checkpoint(path, {"kind": "bundle", "segmenter": seg, "generator": gen, "card": {"images": ["a.tif"]}})
    return seg, gen


def test_tuning_a_fine_tuned_bundle_keeps_its_generator_and_card(tmp_path):
    from napari_nanogan.config import PostprocessConfig
    from napari_nanogan.training.amend import with_postprocess

    seg, gen = _bundle(tmp_path / "mine.pt")
    with_postprocess(tmp_path / "mine.pt", tmp_path / "tuned.pt", PostprocessConfig(fg_threshold=0.42), {"command": "t"})
    tuned = load_checkpoint(tmp_path / "tuned.pt")
    assert tuned["kind"] == "bundle" and tuned["card"]["images"] == ["a.tif"]
    # the card's before/after scores describe the model before this change, and it says so
    assert [a["changed"] for a in tuned["card"]["amended"]] == [["postprocess"]]
    with_postprocess(tmp_path / "tuned.pt", tmp_path / "again.pt", PostprocessConfig(fg_threshold=0.5), {})
    assert len(load_checkpoint(tmp_path / "again.pt")["card"]["amended"]) == 2
    assert tuned["segmenter"]["postprocess"]["fg_threshold"] == 0.42
    assert tuned["segmenter"]["provenance"]["postprocess_tuning"] == {"command": "t"}
    assert load_checkpoint(tmp_path / "tuned.pt", kind="generator")["config"] == gen["config"]


def test_finishing_a_fine_tuned_bundle_keeps_its_segmenter_and_card(tmp_path):
    from napari_nanogan.config import Finishing
    from napari_nanogan.training.amend import with_finishing

    seg, gen = _bundle(tmp_path / "mine.pt")
    with_finishing(tmp_path / "mine.pt", tmp_path / "tuned.pt", Finishing(blur_sigma=0.5, noise_residual=0.02))
    tuned = load_checkpoint(tmp_path / "tuned.pt")
    assert tuned["kind"] == "bundle" and tuned["card"]["images"] == ["a.tif"]
    assert tuned["card"]["amended"][0]["part"] == "generator"
    assert tuned["card"]["amended"][0]["changed"] == ["postprocess"]  # textures kept as they were are not listed
    assert tuned["generator"]["postprocess"]["noise_residual"] == 0.02
    assert load_checkpoint(tmp_path / "tuned.pt", kind="segmenter")["config"] == seg["config"]


def test_finetune_cli_ctrl_c_stops_and_keeps_the_model_trained_so_far(tmp_path, tiny_checkpoint,
                                                                       tiny_generator_checkpoint, sem_like,
                                                                       monkeypatch, capsys):
    """A first Ctrl-C (SIGINT) stops as SIGTERM does: the model trained so far is judged and written, the exit
    status says the run did not finish (130), and Ctrl-C works as before once the command is over."""
    import signal

    from napari_nanogan.cli import main

    monkeypatch.setitem(ft.PRESETS, "quick", Preset(50, 0, "test", patch_size=32, batch_size=2))
    image, labels = sem_like
    tifffile.imwrite(tmp_path / "a.tif", image[: labels.shape[0]])
    tifffile.imwrite(tmp_path / "a_mask.tif", (labels > 0).astype(np.uint8) * 255)
    loop = ft.finetune

    presses = {"at": (3,)}

    def finetune_with_ctrl_c(*args, **kwargs):
        return (yield from _forward(loop(*args, **kwargs), at_steps=presses["at"]))

    monkeypatch.setattr(ft, "finetune", finetune_with_ctrl_c)
    out = tmp_path / "model.pt"
    before = signal.getsignal(signal.SIGINT)
    argv = ["finetune", "--images", str(tmp_path / "a.tif"), "--masks", str(tmp_path / "a_mask.tif"),
            "--out", str(out), "--base-segmenter", str(tiny_checkpoint), "--base-generator", str(tiny_generator_checkpoint)]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 130 and out.is_file() and load_checkpoint(out)["kind"] == "bundle"  # written, but stopped early
    assert "stopping: the model trained so far" in err
    steps = int(err.split("stopped as asked after ")[1].split()[0])
    assert 3 <= steps < 50  # stopped early, not after all 50 planned steps
    assert signal.getsignal(signal.SIGINT) is before
    presses["at"] = (3, 3)  # Ctrl-C twice: abort, writing nothing
    out.unlink()
    assert main(argv) == 130 and not out.exists()
    assert "nothing was written" in capsys.readouterr().err and signal.getsignal(signal.SIGINT) is before


def _forward(loop, *, at_steps):
    """``loop``'s records, with a Ctrl-C (SIGINT) raised after the segmenter's steps ``at_steps`` (a step named
    twice: two presses)."""
    import signal

    try:
        while True:
            try:
                record = next(loop)
            except StopIteration as done:
                return done.value
            if record.losses:
                for _ in range(at_steps.count(record.step)):
                    signal.raise_signal(signal.SIGINT)
            yield record
    finally:
        loop.close()
