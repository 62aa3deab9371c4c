import csv
import json

import numpy as np
import pytest
import tifffile

from napari_nanogan.io.pairs import JOURNAL, Pair, export_pairs
from napari_nanogan.io.images import labels_pixel_size_nm


def _pair(name="a", dtype=np.uint8):
    labels = np.zeros((30, 40), np.int32)
    labels[5:10, 5:10] = 1
    labels[15:25, 20:30] = 2
    image = (np.arange(1200).reshape(30, 40) % 200).astype(dtype)
    return Pair(name, image, labels, seed=3, model="m", model_sha256="ab" * 32, pixel_size_nm=4.2)


def test_round_trip(tmp_path):
    manifest = export_pairs([_pair("a"), _pair("b", np.uint16)], tmp_path, png=True)
    data = json.loads(manifest.read_text())
    assert [p["name"] for p in data["pairs"]] == ["a", "b"]
    entry = data["pairs"][0]
    assert entry["particles"] == 2 and entry["seed"] == 3 and entry["pixel_size_nm"] == 4.2
    assert np.array_equal(tifffile.imread(tmp_path / entry["mask"]), _pair().labels)
    assert tifffile.imread(tmp_path / "images" / "b.tif").dtype == np.uint16
    assert labels_pixel_size_nm(tmp_path / entry["image"]) == pytest.approx(4.2, rel=1e-6)
    assert (tmp_path / "png" / "a.png").is_file()
    rows = list(csv.DictReader(open(tmp_path / "manifest.csv")))
    assert [r["name"] for r in rows] == ["a", "b"]
    # a second export to the same folder appends to the manifest
    export_pairs([_pair("c")], tmp_path)
    assert len(json.loads(manifest.read_text())["pairs"]) == 3


def test_never_overwrites_silently(tmp_path):
    export_pairs([_pair("a")], tmp_path)
    before = (tmp_path / "images" / "a.tif").read_bytes()
    with pytest.raises(FileExistsError, match="not overwriting"):
        export_pairs([_pair("a")], tmp_path)
    assert (tmp_path / "images" / "a.tif").read_bytes() == before
    export_pairs([_pair("a")], tmp_path, overwrite=True)


def test_interrupted_export_leaves_no_partial_file(tmp_path, monkeypatch):
    real = tifffile.imwrite
    calls = {"n": 0}

    def failing(path, data, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # second pair's image: write half a file, then die
            with open(path, "wb") as fh:
                fh.write(b"II*\x00partial")
            raise KeyboardInterrupt
        return real(path, data, **kw)

    monkeypatch.setattr(tifffile, "imwrite", failing)
    with pytest.raises(KeyboardInterrupt):
        export_pairs([_pair("a"), _pair("b")], tmp_path)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    # the complete first pair, listed in the manifest; nothing of the second, no temp files; the journal of
    # the planned names tells a rerun that files of those names are the export's own
    assert files == [JOURNAL, "images/a.tif", "manifest.csv", "manifest.json", "masks/a.tif"]
    assert [p["name"] for p in json.loads((tmp_path / "manifest.json").read_text())["pairs"]] == ["a"]
    monkeypatch.setattr(tifffile, "imwrite", real)
    assert tifffile.imread(tmp_path / "images" / "a.tif").shape == (30, 40)


def test_overwrite_replaces_manifest_entries_and_a_bad_manifest_stops_before_any_write(tmp_path):
    export_pairs([_pair("a"), _pair("b")], tmp_path)
    export_pairs([_pair("a"), _pair("b")], tmp_path, overwrite=True)
    assert [p["name"] for p in json.loads((tmp_path / "manifest.json").read_text())["pairs"]] == ["a", "b"]
    assert len(list(csv.DictReader(open(tmp_path / "manifest.csv")))) == 2
    assert not (tmp_path / JOURNAL).exists()
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is not a readable export manifest"):
        export_pairs([_pair("c")], tmp_path)
    assert not (tmp_path / "images" / "c.tif").exists()


@pytest.mark.parametrize("bad,match", [
    (Pair("x", np.zeros((5, 5), np.uint8), np.zeros((6, 5), np.int32)), "differ in shape"),
    (Pair("x", np.zeros((5, 5), np.float32), np.zeros((5, 5), np.int32)), "uint8 or uint16"),
    (Pair("x", np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5), np.int32)), "2D"),
    (Pair("../x", np.zeros((5, 5), np.uint8), np.zeros((5, 5), np.int32)), "invalid pair name"),
    (Pair("x", np.zeros((5, 5), np.uint8), np.zeros((5, 5), np.int32), pixel_size_nm=-2), "pixel size"),
    (Pair("x", np.zeros((5, 5), np.uint8), np.zeros((5, 5), np.int32), pixel_size_nm=1e-30), "pixel size"),
    (Pair("x", np.zeros((5, 5), np.uint8), np.full((5, 5), -1, np.int32)), "0 \\(background\\) or positive"),
    (Pair("x", np.zeros((5, 5), np.uint8), np.full((5, 5), 70000, np.int32)), "renumber"),
])
def test_bad_pairs(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        export_pairs([bad], tmp_path)


def test_export_cli(tmp_path, tiny_generator_checkpoint):
    import shutil

    from napari_nanogan.cli import main

    shutil.copy(tiny_generator_checkpoint, tmp_path / "g.pt")
    mask = np.zeros((40, 48), np.uint8)
    mask[5:15, 5:15] = 255
    tifffile.imwrite(tmp_path / "m.tif", mask)
    out = tmp_path / "export"
    rc = main(["export", "--masks", str(tmp_path / "m.tif"), "--out", str(out), "--n", "2", "--seed", "1",
               "--model", str(tmp_path / "g.pt"), "--pixel-size", "3.5"])
    assert rc == 0
    data = json.loads((out / "manifest.json").read_text())
    assert [p["name"] for p in data["pairs"]] == ["m_0", "m_1"] and data["pairs"][0]["model_sha256"]
    assert {p["precision"] for p in data["pairs"]} == {"fp32"}  # what drew them (the tests run fp32)
    assert tifffile.imread(out / "masks" / "m_1.tif").max() == 1
    assert main(["export", "--masks", str(tmp_path / "m.tif"), "--out", str(out), "--model", str(tmp_path / "g.pt")]) == 1


def test_export_folder_resumes_and_keeps_the_users_files(tmp_path):
    """A rerun skips complete pairs with the same recipe, rewrites an interrupted export's leftovers, and
    refuses files of the same names that no export planned (the user's)."""
    from napari_nanogan.io.pairs import ExportFolder

    recipe = lambda name: {"seed": 3, "model_sha256": "ab" * 32}  # noqa: E731  (as _pair makes them)
    with pytest.raises(KeyboardInterrupt):
        with ExportFolder(tmp_path) as folder:
            folder.plan(series={"p": 3}, recipe=recipe)
            folder.write(_pair("p_0"))
            raise KeyboardInterrupt
    # kill -9 between an image and its mask, with a temporary file left behind
    tifffile.imwrite(tmp_path / "images" / "p_1.tif", np.zeros((30, 40), np.uint8))
    (tmp_path / "masks" / ".p_1.tif.x1y2.tmp").write_bytes(b"")
    with ExportFolder(tmp_path) as folder:
        done = folder.plan(series={"p": 3}, recipe=recipe)
        assert done == {"p_0"}
        for k in (1, 2):
            folder.write(_pair(f"p_{k}"))
    assert [p["name"] for p in json.loads((tmp_path / "manifest.json").read_text())["pairs"]] == ["p_0", "p_1", "p_2"]
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / JOURNAL).exists()
    # a file no export planned is the user's: refused before anything is written
    tifffile.imwrite(tmp_path / "images" / "q_0.tif", np.zeros((3, 3), np.uint8))
    with pytest.raises(FileExistsError, match="q_0.tif"):
        ExportFolder(tmp_path).plan(series={"q": 1}, recipe=recipe)
    # the same names with another recipe (another seed) are not the same pairs
    with pytest.raises(FileExistsError, match="p_0.tif"):
        ExportFolder(tmp_path).plan(series={"p": 1}, recipe=lambda name: {"seed": 4})
