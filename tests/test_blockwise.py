"""Block-wise segmentation of images larger than memory: no particle cut at a block edge, bounded reads, zarr stores."""

from __future__ import annotations

import numpy as np
from skimage.measure import regionprops
import pytest
import torch

from conftest import requires_shared, requires_shipped
from napari_nanogan.metrics.segmentation import instance_scores
from napari_nanogan.segmentation.pipeline import _labels_at as _LABELS_AT
from napari_nanogan.segmentation.blockwise import (BlockResult, block_grid, plan_blockwise, relabel, segment_blockwise,
                                                   stitch)


class ThresholdNet(torch.nn.Module):
    """A stand-in network: foreground where the group-normalised grey is above 0, seeds where its 5 x 5 mean is high.

    Deterministic and fast, with a group-norm layer, so a segmentation depends on the
    image's statistics as the real networks' do.
    """

    def __init__(self):
        from napari_nanogan.config import SegmenterConfig
        from napari_nanogan.models.blocks import GroupNorm

        super().__init__()
        self.config = SegmenterConfig(base_channels=4, depth=2)
        self.norm = GroupNorm(1, 1)
        self.blur = torch.nn.Conv2d(1, 1, 5, padding=2, bias=False)
        with torch.no_grad():
            self.blur.weight.fill_(1 / 25)

    def forward(self, x):
        y = self.norm(x)
        return torch.cat([8 * y, 8 * (self.blur(y) - 0.9)], 1)


@pytest.fixture(scope="module")
def threshold_segmenter():
    from napari_nanogan.segmentation import Segmenter

    return Segmenter.from_network(ThresholdNet(), name="threshold", device="cpu")


@pytest.fixture(scope="module")
def field():
    """A 600 x 700 procedural SEM field, crowded: many particles cross any grid of blocks."""
    from napari_nanogan.data.procedural import particle_labels, render_sem

    labels = particle_labels((600, 700), n_particles=320, mean_diameter=18, seed=1)
    return render_sem(labels, seed=2, info_bar_rows=0)


def _f1(a, b) -> float:
    s = instance_scores(a, b)
    return 2 * s["tp"] / max(2 * s["tp"] + s["fp"] + s["fn"], 1)


class Reads:
    """An array that records the size of every region read from it."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.sizes = array, array.shape, array.dtype, []

    def __getitem__(self, key):
        out = np.asarray(self.array[key])
        self.sizes.append(out.size)
        return out


def test_grid_cores_tile_the_image_and_margins_stay_inside():
    blocks = block_grid((300, 450), 128, 40)
    cover = np.zeros((300, 450), int)
    for b in blocks:
        cover[b.core] += 1
        assert all(p.start >= 0 and p.start <= c.start and p.stop >= c.stop for p, c in zip(b.padded, b.core))
    assert (cover == 1).all() and len(blocks) == 3 * 4


def test_stitch_merges_a_particle_across_a_seam_but_not_two_touching_ones():
    # two blocks side by side, seam of 4 rows: rows 0-1 one particle crossing (both blocks say "same"),
    # rows 2-3 two particles touching at the seam (both say "different")
    left = BlockResult((0, 0), 2, {"right": np.array([1, 1, 2, 2]), "left": np.zeros(4), "top": np.zeros(3),
                                   "bottom": np.zeros(3)}, {"right": np.array([True, True, False, False])})
    right = BlockResult((0, 1), 2, {"left": np.array([1, 1, 2, 2]), "right": np.zeros(4), "top": np.zeros(3),
                                    "bottom": np.zeros(3)}, {"left": np.array([True, True, False, False])})
    offsets, lut = stitch([left, right], (1, 2))
    assert offsets == {(0, 0): 0, (0, 1): 2}
    assert lut[offsets[(0, 0)] + 1] == lut[offsets[(0, 1)] + 1]  # one particle
    assert lut[offsets[(0, 0)] + 2] != lut[offsets[(0, 1)] + 2]  # two
    assert sorted(set(lut[1:])) == [1, 2, 3]
    assert relabel(np.array([[0, 1], [2, 0]]), 2, lut).tolist() == [[0, lut[3]], [lut[4], 0]]


def test_blocks_agree_with_the_whole_image_no_cut_at_block_edges(threshold_segmenter, field):
    from napari_nanogan.segmentation import segment

    whole = segment(field, threshold_segmenter, info_bar=None).labels
    blocks = segment_blockwise(field, threshold_segmenter, block=128)
    assert _f1(whole, blocks) >= 0.99
    # every particle of the whole image that crosses a block edge is one label block-wise
    seams_y, seams_x = range(128, 600, 128), range(128, 700, 128)
    crossing = set(np.unique(np.concatenate([whole[y - 1 : y + 1].ravel() for y in seams_y]
                                            + [whole[:, x - 1 : x + 1].ravel() for x in seams_x]))) - {0}
    assert len(crossing) > 30
    cut = [k for k in crossing if len(np.unique(blocks[whole == k])) > 1 and
           np.bincount(blocks[whole == k]).max() < 0.9 * (whole == k).sum()]
    assert len(cut) <= 0.01 * len(crossing), cut


def test_blocks_apply_the_final_confidence_as_the_whole_image_does(threshold_segmenter, field):
    """A final confidence model (here: particles under about 200 px are doubtful) judges each block's particles
    whole, in the block's margin, so the blocks keep what the whole image keeps."""
    import dataclasses

    from napari_nanogan.segmentation import segment
    from napari_nanogan.segmentation.confidence import FEATURES, ConfidenceModel

    weights = np.zeros(len(FEATURES))
    weights[FEATURES.index("log_area")] = 20.0
    small_doubtful = ConfidenceModel(np.full(len(FEATURES), np.log(200.0)), np.ones(len(FEATURES)), weights, 0.0,
                                     {"min_confidence": 0.5})
    judged = dataclasses.replace(threshold_segmenter, final_confidence_model=small_doubtful)
    every = segment(field, threshold_segmenter, info_bar=None)
    whole = segment(field, judged, info_bar=None)
    assert 0 < whole.count < every.count and (np.bincount(whole.labels.ravel())[1:] >= 190).all()
    assert _f1(whole.labels, segment_blockwise(field, judged, block=128)) >= 0.99


def test_a_block_reads_only_its_region_and_the_plan_a_sample(threshold_segmenter, field):
    big = np.tile(field, (4, 4))  # 2400 x 2800
    reads = Reads(big)
    plan = plan_blockwise(reads, threshold_segmenter, block=512, margin=64)
    # a regular grid of at most ~2 M pixels for the grey levels (whatever the image's size), four crops for the
    # statistics and a centre crop for the polarity check: never the whole image
    from napari_nanogan.segmentation.blockwise import ENLARGE_TRIAL
    from napari_nanogan.segmentation.statistics import STATISTICS_CROP

    grid, *crops = reads.sizes
    assert grid <= 2_100_000 and len(crops) == 5 and sum(crops) <= 4 * STATISTICS_CROP**2 + ENLARGE_TRIAL**2
    from napari_nanogan.segmentation.blockwise import network_of, segment_block

    reads.sizes.clear()
    block = plan.blocks()[7]  # (1, 1): inside the image
    local, result = segment_block(reads, block, network_of(threshold_segmenter, plan), plan)
    assert reads.sizes == [(512 + 2 * 64) ** 2]
    assert local.shape == (512, 512) and local.max() == result.count
    assert set(result.same) == {"top", "bottom", "left", "right"}


def test_plan_is_decided_once_and_pickles(threshold_segmenter, field):
    import pickle

    plan = plan_blockwise(field, threshold_segmenter, diameter=60.0, block=256)
    assert plan.factor == pytest.approx(24 / 60) and plan.margin >= 180
    again = pickle.loads(pickle.dumps(plan))
    assert again.fingerprint() == plan.fingerprint()
    assert plan_blockwise(field, threshold_segmenter, diameter=60.0, block=128).fingerprint() != plan.fingerprint()
    labels = segment_blockwise(field, threshold_segmenter, plan=plan)  # resized blocks run and give particles
    assert labels.shape == field.shape and labels.max() > 20


def test_an_estimate_resizes_blocks_as_segment_resizes_the_whole_image(threshold_segmenter, field):
    import dataclasses

    from conftest import constant_size_model
    from napari_nanogan.data.procedural import particle_labels, render_sem
    from napari_nanogan.segmentation import segment

    small = render_sem(particle_labels((400, 400), n_particles=300, mean_diameter=7, seed=3), seed=4, info_bar_rows=0)
    # the field's particles are 18 px: an estimate of 8 px enlarges, finds them large, and goes back
    said = {}
    for image, estimate, factor in ((small, 7.0, 2.0), (field, 8.0, 1.0), (field, 20.0, 1.0), (field, 60.0, 24 / 60)):
        sized = dataclasses.replace(threshold_segmenter, size_model=constant_size_model(estimate))
        plan = plan_blockwise(image, sized, diameter="auto", block=256, scale_check=False)
        assert plan.diameter_estimated and plan.factor == pytest.approx(factor)
        whole = segment(image, sized, diameter="auto", info_bar=None, scale_check=False)
        assert whole.scale == pytest.approx(factor)
        checked = plan_blockwise(image, sized, diameter="auto", block=256)  # its centre crop is the whole image
        assert checked.factor == pytest.approx(segment(image, sized, diameter="auto", info_bar=None).scale)
        assert whole.enlargement_rejected == plan.enlargement_rejected == (estimate == 8.0)
        said[estimate] = whole.describe()
        if estimate in (7.0, 8.0):  # a zarr job's summary says so too
            from pathlib import Path

            from napari_nanogan.segmentation.zarrjob import ZarrResult

            zarr_said = ZarrResult(path=Path("x"), count=1, plan=plan).describe()
            assert ("enlarged 2 times" if estimate == 7.0 else "no particles that small") in zarr_said
    assert "enlarged 2 times" in said[7.0] and "no particles that small" in said[8.0]
    assert not any(w in said[20.0] + said[60.0] for w in ("enlarged", "that small", "diameter given"))


def test_zarr_store_round_trip_resume_and_ome_metadata(threshold_segmenter, field, tmp_path):
    pytest.importorskip("zarr")
    from napari_nanogan.io.omezarr import open_zarr_image, write_ome_zarr, zarr_levels
    from napari_nanogan.progress import drive
    from napari_nanogan.segmentation.zarrjob import completed, segment_zarr_steps

    src = write_ome_zarr(tmp_path / "field.zarr", field, chunk=256, pixel_size_nm=4.0)
    plane, meta = open_zarr_image(src)
    assert plane.shape == field.shape and meta["pixel_size_nm"] == pytest.approx(4.0)
    out = tmp_path / "out" / "field_labels.zarr"
    steps = segment_zarr_steps(plane, threshold_segmenter, out, block=256, pixel_size_nm=4.0)
    seen = []
    result = drive(steps, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (10, 10) and result.count == completed(out) > 50
    levels = zarr_levels(out)
    labels = np.asarray(levels[0])
    assert labels.max() == result.count and np.array_equal(np.asarray(levels[1]), labels[::2, ::2])
    assert _f1(segment_blockwise(field, threshold_segmenter, block=256), labels) == 1.0
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # nothing partial left
    # a rerun keeps the complete store; an interrupted one resumes from its finished blocks
    assert drive(segment_zarr_steps(plane, threshold_segmenter, out, block=256)).skipped
    steps = segment_zarr_steps(plane, threshold_segmenter, tmp_path / "again.zarr", block=256)
    next(steps), next(steps)
    steps.close()  # interrupted after two blocks
    partial = tmp_path / ".again.zarr.partial"
    assert len(list((partial / ".nanogan-blocks").iterdir())) == 2 and not (tmp_path / "again.zarr").exists()
    again = drive(segment_zarr_steps(plane, threshold_segmenter, tmp_path / "again.zarr", block=256))
    assert np.array_equal(np.asarray(zarr_levels(again.path)[0]), labels) and not partial.exists()
    # napari's OME-Zarr reader (ome-zarr-py) sees an image and labels
    ome = pytest.importorskip("ome_zarr.reader")
    from ome_zarr.io import parse_url

    nodes = list(ome.Reader(parse_url(str(out)))())
    assert any(n.load(ome.Label) for n in nodes) and nodes[0].data[0].shape == field.shape


def test_a_dask_array_segments_without_being_loaded(threshold_segmenter, field, tmp_path):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    from napari_nanogan.progress import drive
    from napari_nanogan.segmentation.zarrjob import segment_zarr_steps

    lazy = da.from_array(field, chunks=128)
    result = drive(segment_zarr_steps(lazy, threshold_segmenter, tmp_path / "lazy.zarr", block=256))
    assert result.count > 50


@pytest.mark.slow
@pytest.mark.shared_data
@requires_shared
def test_real_montage_blockwise_matches_in_memory_with_the_shipped_model():
    """2848 x 2048 of eight BAM fields (specimen rows), shipped ``default``: blocks of 1024 agree with one pass."""
    from conftest import DATA
    from napari_nanogan.io.images import read_image
    from napari_nanogan.segmentation import load_segmenter, segment

    paths = sorted((DATA / "bam_tio2_sem" / "images").glob("*.tif"))[:8]
    fields = [read_image(p)[0][:712] for p in paths]
    montage = np.concatenate([np.concatenate(fields[2 * r : 2 * r + 2], 1) for r in range(4)], 0)
    segmenter = load_segmenter("default")
    whole = segment(montage, segmenter, info_bar=None, diameter="auto").labels
    blocks = segment_blockwise(montage, segmenter, diameter="auto", block=1024)
    assert _f1(whole, blocks) >= 0.99


def test_the_enlargement_check_follows_the_networks_particle_size(threshold_segmenter, field):
    """The field's 18-px particles cut the enlargement short for a 24-px network (they are not small for it);
    for a network made to see 48-px particles they are small, and segment() and the block plan both keep it."""
    import dataclasses

    from conftest import constant_size_model
    from napari_nanogan.segmentation import segment

    for model_px, rejected in ((24.0, True), (48.0, False)):
        sized = dataclasses.replace(threshold_segmenter, size_model=constant_size_model(8.0), diameter_px=model_px)
        plan = plan_blockwise(field, sized, diameter="auto", block=256)
        whole = segment(field, sized, diameter="auto", info_bar=None)
        assert whole.enlargement_rejected == plan.enlargement_rejected == rejected
        assert plan.factor == whole.scale == (1.0 if rejected else 2.0)


def _seen_as(monkeypatch, confidence_at):
    """segment()'s network passes, each particle's confidence replaced by ``confidence_at(factor)`` (None: none found)."""
    from napari_nanogan.segmentation import pipeline

    seen = _LABELS_AT  # (the network's own passes, not an earlier stand-in)

    def passes(grey, segmenter, rows, bar, factor, *rest):
        labels, confidence, *maps = yield from seen(grey, segmenter, rows, bar, factor, *rest)
        value = confidence_at(factor)
        if value is None:
            return (np.zeros_like(labels), confidence[:0], *maps)
        return (labels, np.full_like(confidence, value), *maps)

    monkeypatch.setattr(pipeline, "_labels_at", passes)


@pytest.fixture(scope="module")
def small_field():
    from napari_nanogan.data.procedural import particle_labels, render_sem

    return render_sem(particle_labels((400, 400), n_particles=300, mean_diameter=7, seed=3), seed=4, info_bar_rows=0)


def test_an_enlargement_that_finds_nothing_falls_back_to_the_images_own_scale(threshold_segmenter, small_field,
                                                                              monkeypatch):
    """Particles several times larger than their estimate vanish once enlarged (clean 27-px cubes estimated
    at 10 px gave no label): segment() and the block plan then take the image's own scale where it finds
    particles, and keep the estimate's scale where neither finds any."""
    import dataclasses

    from conftest import constant_size_model
    from napari_nanogan.segmentation import segment

    sized = dataclasses.replace(threshold_segmenter, size_model=constant_size_model(7.0))
    kw = dict(diameter="auto", scale_check=False)
    assert segment(small_field, sized, info_bar=None, **kw).scale == 2.0  # found small: the enlargement holds
    for blind_above in (1.0, 0.0):  # the network finds nothing when enlarged / at any scale
        _seen_as(monkeypatch, lambda factor, above=blind_above: None if factor > above else 0.9)
        whole = segment(small_field, sized, info_bar=None, **kw)
        plan = plan_blockwise(small_field, sized, block=256, **kw)
        if blind_above:
            assert whole.scale == plan.factor == 1.0 and whole.enlargement_rejected and whole.count > 100
            assert "no particles that small" in whole.describe()
        else:
            assert whole.scale == plan.factor == 2.0 and not whole.enlargement_rejected and whole.count == 0


def test_the_scale_check_undoes_an_enlargement_the_network_is_far_less_sure_of(threshold_segmenter, small_field,
                                                                               monkeypatch):
    """An estimate far too small cuts particles into doubtful pieces: where the network is more than
    ``SCALE_ENLARGE_MARGIN`` surer at the image's own scale, segment() and the block plan keep that scale."""
    import dataclasses

    from conftest import constant_size_model
    from napari_nanogan.config import SCALE_ENLARGE_MARGIN
    from napari_nanogan.segmentation import segment

    from napari_nanogan.segmentation.confidence import FEATURES, ConfidenceModel

    sized = dataclasses.replace(threshold_segmenter, size_model=constant_size_model(7.0))
    # a final confidence model (here: 0.5 for every particle) judges the final particles only: the checks of both
    # paths compare the passes' confidence
    same = ConfidenceModel(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES)), 0.0, {})
    for surer, kept in ((SCALE_ENLARGE_MARGIN + 0.02, 1.0), (SCALE_ENLARGE_MARGIN - 0.02, 2.0)):
        _seen_as(monkeypatch, lambda factor, surer=surer: 0.5 + (surer if factor == 1.0 else 0.0))
        for segmenter in (sized, dataclasses.replace(sized, final_confidence_model=same)):
            whole = segment(small_field, segmenter, diameter="auto", info_bar=None)
            plan = plan_blockwise(small_field, segmenter, diameter="auto", block=256)
            assert whole.scale == plan.factor == kept and not whole.enlargement_rejected
            assert whole.estimate_scale == plan.estimate_scale == (2.0 if kept == 1.0 else None)
        assert np.allclose(whole.confidence, 0.5)  # (the confidence reported is the final model's)
        if kept == 1.0:
            assert "own scale, not enlarged 2 times as estimated" in whole.describe()
        assert segment(small_field, sized, diameter="auto", info_bar=None, scale_check=False).scale == 2.0


def test_the_scale_check_shrinks_an_image_kept_at_its_own_scale_only_where_the_network_is_unsure(
        threshold_segmenter, small_field, monkeypatch):
    """An estimate of 20-28 px for particles of 40-95 px leaves the image at its own scale, where they are cut into
    pieces: where the network is unsure of its particles there (mean confidence under ``SCALE_OWN_BELOW``),
    segment() and the block plan try 1.4 times smaller, and keep it where it is ``SCALE_OWN_MARGIN`` surer;
    a sure image pays no extra pass."""
    import dataclasses

    from conftest import constant_size_model
    from napari_nanogan.config import SCALE_OWN_BELOW, SCALE_OWN_MARGIN, SCALE_STEP
    from napari_nanogan.segmentation import segment

    sized = dataclasses.replace(threshold_segmenter, size_model=constant_size_model(20.0))
    unsure = SCALE_OWN_BELOW - 0.2
    for own, surer, kept in ((unsure, SCALE_OWN_MARGIN + 0.02, 1 / SCALE_STEP),
                             (unsure, SCALE_OWN_MARGIN - 0.02, 1.0),
                             (SCALE_OWN_BELOW + 0.01, 0.1, 1.0)):  # sure: not tried, however surer it would be
        factors = []

        def confidence(factor, own=own, surer=surer, factors=factors):
            factors.append(round(factor, 3))
            return own if factor == 1.0 else own + surer  # (no surer still at half the size: one step)
        _seen_as(monkeypatch, confidence)
        whole = segment(small_field, sized, diameter="auto", info_bar=None, small_pass=False)
        assert whole.scale == pytest.approx(kept) and whole.diameter_px == pytest.approx(20.0)
        assert (0.707 in factors) == (own < SCALE_OWN_BELOW)
        plan = plan_blockwise(small_field, sized, diameter="auto", block=256)
        assert plan.factor == pytest.approx(kept)
        if kept < 1.0:
            assert whole.estimate_scale == plan.estimate_scale == 1.0
            assert "image made 1.4 times smaller, not at its own scale as estimated" in whole.describe()
        else:
            assert whole.estimate_scale is None and plan.estimate_scale is None
        assert segment(small_field, sized, diameter="auto", info_bar=None, scale_check=False).scale == 1.0


@requires_shipped
def test_blocks_add_the_small_particles_beside_large_ones_as_the_whole_image_does():
    """Spheres of about 110 px with 10-28 px satellites, made about 6 times smaller: each block adds its finer pass's
    satellites, as segment() does over the whole image, and without that pass both lose them."""
    from bench.failure_modes import stage
    from napari_nanogan.segmentation import load_segmenter, segment

    image, truth, _ = stage("satellites")
    segmenter = load_segmenter("auto")
    plan = plan_blockwise(image, segmenter, diameter="auto", block=128)  # 48 blocks: many seams
    assert plan.factor < 0.25 and plan.fine_factor == pytest.approx(4 * plan.factor)
    without = plan_blockwise(image, segmenter, diameter="auto", block=512, small_pass=False)
    assert without.fine_factor is None
    assert without.fingerprint() != plan_blockwise(image, segmenter, diameter="auto", block=512).fingerprint()
    whole = segment(image, segmenter, diameter="auto", info_bar=None).labels
    blocks = segment_blockwise(image, segmenter, plan=plan)
    assert _f1(whole, blocks) >= 0.9
    assert _f1(truth, blocks) >= 0.8 > _f1(truth, segment_blockwise(image, segmenter, plan=without))
    # each block judges its own finer pass: a particle across a seam must still come out whole
    crossing = 0
    for region in regionprops(whole):
        y0, x0, y1, x1 = region.bbox
        if not any(y0 < s < y1 for s in range(128, image.shape[0], 128)) and \
                not any(x0 < s < x1 for s in range(128, image.shape[1], 128)):
            continue
        crossing += 1
        ys, xs = region.coords.T
        values, counts = np.unique(blocks[ys, xs], return_counts=True)
        assert counts[values > 0].max(initial=0) >= 0.8 * region.area, (region.label, region.area, values, counts)
    assert crossing >= 10


def test_blocks_drop_doubtful_particles_and_marks_as_the_whole_image_does():
    """Each block judges its particles as segment() does: confidence under the model's minimum, and ink, dropped."""
    import dataclasses

    from napari_nanogan.data.procedural import sample_image
    from napari_nanogan.segmentation import load_segmenter, segment

    image = sample_image()[0][:384, :512].copy()
    image[300:312, 40:200] = 255  # a burnt-in scale bar
    default = load_segmenter("default")
    for minimum in (default.postprocess.min_confidence, 0.999):
        model = dataclasses.replace(default, postprocess=dataclasses.replace(default.postprocess, min_confidence=minimum))
        whole = segment(image, model, info_bar=None, diameter=None, small_pass=False).labels
        blocks = segment_blockwise(image, model, diameter=None, block=128, small_pass=False)
        bar = np.unique(blocks[300:312, 40:200])
        assert not [k for k in bar[bar > 0] if (image[blocks == k] == 255).mean() >= 0.5]  # no mark kept
        if minimum > 0.99:
            assert whole.max() == 0 and blocks.max() == 0
        else:
            assert whole.max() > 20 and _f1(whole, blocks) >= 0.95


def test_the_polarity_check_keeps_the_inverted_image_where_the_network_finds_more_and_is_surer(
        threshold_segmenter, field, monkeypatch):
    """Where the network is unsure of its particles (mean confidence under ``POLARITY_UNSURE_BELOW``), segment() and
    the block plan also try the image with its grey levels inverted, and keep it where it finds ``POLARITY_MORE``
    times as many particles, ``POLARITY_MARGIN`` surer; blocks are then segmented inverted, as the whole image
    would be. A sure image pays no inverted pass."""
    from pathlib import Path

    from napari_nanogan.config import POLARITY_MARGIN, POLARITY_UNSURE_BELOW
    from napari_nanogan.segmentation import pipeline, segment, wording
    from napari_nanogan.segmentation.zarrjob import ZarrResult

    bright = float(np.mean(field))
    plans = {}
    for own, surer, kept_share, kept in ((0.6, POLARITY_MARGIN + 0.02, 0.5, True),
                                         (0.6, POLARITY_MARGIN - 0.02, 0.5, False),  # not sure enough
                                         (0.6, POLARITY_MARGIN + 0.02, 0.9, False),  # not enough more particles
                                         (POLARITY_UNSURE_BELOW + 0.01, 0.5, 0.5, False)):  # sure: not tried
        passes = []

        def seen_as(grey, segmenter, rows, bar, factor, *rest, own=own, surer=surer, share=kept_share, passes=passes):
            """The same particles either way (those of ``field``); as it is, the network misses all but ``share``."""
            flipped = abs(float(np.mean(grey)) - bright) > 1.0  # (an inverted image's mean moves far)
            passes.append(flipped)
            labels, confidence, *maps = yield from _LABELS_AT(field[: grey.shape[0], : grey.shape[1]], segmenter,
                                                               rows, bar, factor, *rest)
            if not flipped:
                keep = int(labels.max() * share)
                labels, confidence = np.where(labels <= keep, labels, 0), confidence[:keep]
            return (labels, np.full_like(confidence, own + (surer if flipped else 0.0)), *maps)
        monkeypatch.setattr(pipeline, "_labels_at", seen_as)
        whole = segment(field, threshold_segmenter, info_bar=None)
        assert whole.inverted == kept and any(passes) == (own < POLARITY_UNSURE_BELOW)
        assert (wording.INVERTED in whole.describe()) == kept
        plan = plans[kept] = plan_blockwise(field, threshold_segmenter, block=256)
        assert plan.inverted == kept
        assert (wording.INVERTED in ZarrResult(path=Path("x"), count=1, plan=plan).describe()) == kept
        assert not segment(field, threshold_segmenter, info_bar=None, polarity_check=False).inverted
    monkeypatch.undo()  # the network's own passes: every block sees the image inverted, as the whole image would
    mirrored = segment(pipeline.invert(field), threshold_segmenter, info_bar=None, polarity_check=False).labels
    assert _f1(segment_blockwise(field, threshold_segmenter, plan=plans[True]), mirrored) > 0.95
    assert plans[True].fingerprint() != plans[False].fingerprint()


def test_a_top_info_bar_is_left_out_block_by_block_as_a_bottom_one(threshold_segmenter, field):
    from napari_nanogan.io.infobar import InfoBar

    h = field.shape[0]
    top = segment_blockwise(field, threshold_segmenter, info_bar=InfoBar(0, 40, "top"), block=128)
    bottom = segment_blockwise(np.ascontiguousarray(field[::-1]), threshold_segmenter,
                               info_bar=InfoBar(h - 40, h, "bottom"), block=128)
    assert top[:40].max() == 0 and top[40:].max() > 30
    assert _f1(top, bottom[::-1]) >= 0.99
    marked = field.copy()  # a burnt-in mark just under the bar, in the blocks that hold bar rows: dropped as ink
    marked[44:68, 34:206] = int(np.percentile(field, 10))  # (on clear ground, not joined to a particle)
    marked[50:62, 40:200] = 255
    labels = segment_blockwise(marked, threshold_segmenter, info_bar=InfoBar(0, 40, "top"), block=128)
    found = np.unique(labels[50:62, 40:200])
    assert not [k for k in found[found > 0] if (marked[labels == k] == 255).mean() >= 0.5]
