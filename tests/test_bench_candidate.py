import pytest

from bench import candidate
from bench.candidate import standing_in
from napari_nanogan.models import registry
from napari_nanogan.models.checkpoint import load_checkpoint, save_checkpoint
from napari_nanogan.segmentation import load_segmenter


def _weights(segmenter):
    return next(iter(segmenter.network.state_dict().values()))


@pytest.fixture
def sized_tiny(tiny_checkpoint, tmp_path):
    """The tiny network with the shipped default's size model, as `nanogan fit-size` would give it one."""
    data = load_checkpoint(tiny_checkpoint, kind="segmenter")
    shipped = load_checkpoint(registry.shipped_path("segmenter_default.pt"), kind="segmenter")
    return save_checkpoint(tmp_path / "sized.pt", {**data, "size_model": shipped["size_model"]})


def test_a_candidate_stands_in_for_the_shipped_default_and_inside_auto_only_while_asked(sized_tiny):
    shipped = _weights(load_segmenter("default"))
    with standing_in(str(sized_tiny)):
        assert _weights(load_segmenter("default")).shape != shipped.shape  # the tiny network, not the shipped one
        assert _weights(load_segmenter("auto").general).shape != shipped.shape
        assert registry.shipped_path("segmenter_sem_tio2.pt").is_file()  # the other shipped files stay
    assert _weights(load_segmenter("default")).equal(shipped)


def test_candidates_the_panel_cannot_score_are_refused_up_front(tiny_checkpoint, tmp_path):
    data = load_checkpoint(tiny_checkpoint, kind="segmenter")
    save_checkpoint(tmp_path / "borrows.pt", {**data, "size_reference": "default"})
    for path, words in [(tmp_path / "nope.pt", "no such checkpoint"), (tiny_checkpoint, "no size model"),
                        (tmp_path / "borrows.pt", "default's size model")]:
        with pytest.raises(SystemExit, match=words):
            with standing_in(str(path)):
                pass


def test_the_panel_reads_each_bench_result_it_reports(monkeypatch):
    """Each bench's own keys, as their JSON has them, mapped to the panel's (a wrong key fails here, not after 5 min)."""
    calls = []

    def evaluate(argv):
        calls.append(argv)
        scores = {"dice": 0.9, "f1": 0.8, "iou": 0.7}
        return {"emps": {"model": scores}, "bam": {"model": {**scores, "f1": 0.85}}}

    monkeypatch.setattr("bench.evaluate.main", evaluate)
    monkeypatch.setattr("bench.randomized_images.main", lambda argv: {"pooled": {"f1": 0.7, "dice": 0.8}})
    monkeypatch.setattr("bench.textured_matrix.main", lambda argv: {"mean_f1": 0.81, "mean_false_per_image": 3.2})
    monkeypatch.setattr("bench.failure_modes.main", lambda argv: {"panels": {"satellites": {
        "particles": 34, "segmented": 30, "recall": 0.853, "false_particles": 1, "f1": 0.9}}})
    monkeypatch.setattr("bench.satellites.main", lambda argv: {
        "satellites": 600, "satellites_found": 450, "satellite_recall": 0.75, "precision": 0.97, "false_particles": 20,
        "spheres": 300, "per_image": []})
    out = candidate.panel("data", test=True)
    assert out == {"own_scale": {"emps_val": {"dice": 0.9, "f1": 0.8}, "emps_test": {"dice": 0.9, "f1": 0.8}},
                   "auto_val": {"bam": {"dice": 0.9, "f1": 0.85}, "emps": {"dice": 0.9, "f1": 0.8}},
                   "randomized": {"seeds": "0-80", "pooled_f1": 0.7},
                   "textured_matrix": {"mean_f1": 0.81, "mean_false_per_image": 3.2},
                   "satellites": {"particles": 34, "found": 29, "false_particles": 1, "f1": 0.9},
                   "satellites_drawn": {"seeds": "0-24", "satellites": 600, "satellites_found": 450,
                                        "satellite_recall": 0.75, "precision": 0.97, "false_particles": 20}}
    assert [a[a.index("--split") + 1] for a in calls] == ["val", "val", "test"]
    assert "--auto-diameter" in calls[1] and "--auto-diameter" not in calls[0]  # own scale, then the CLI's path
