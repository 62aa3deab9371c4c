"""Ctrl-C, SIGTERM and kill -9 in the middle of a batch: only complete outputs stay, and the same
command run again completes the job (export, segment, synthesize)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_nanogan.cli import main
from napari_nanogan.io.pairs import JOURNAL

SRC = Path(__file__).resolve().parents[1] / "src"


def _mask(path, value=255):
    mask = np.zeros((40, 48), np.uint8)
    mask[5:15, 5:15] = value
    mask[22:34, 25:40] = value
    tifffile.imwrite(path, mask)
    return path


def _image(path, seed):
    rng = np.random.default_rng(seed)
    tifffile.imwrite(path, np.clip(rng.normal(60, 25, (48, 56)), 0, 255).astype(np.uint8))
    return path


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _names(folder: Path) -> list[str]:
    return [p["name"] for p in json.loads((folder / "manifest.json").read_text())["pairs"]]


def _same_pairs(a: Path, b: Path) -> None:
    assert _names(a) == _names(b)
    for name in _names(a):
        for kind in ("images", "masks"):
            assert np.array_equal(tifffile.imread(a / kind / f"{name}.tif"), tifffile.imread(b / kind / f"{name}.tif"))


def _interrupt_at(monkeypatch, call: int, how, module=None):
    """Make synthesis call number ``call`` (1-based) run ``how()`` first (``synthesize`` as ``module`` holds it)."""
    from napari_nanogan.synthesis import pipeline

    module = module or pipeline
    real = module.synthesize
    calls = {"n": 0}

    def synthesize(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            how()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "synthesize", synthesize)
    return lambda: monkeypatch.setattr(module, "synthesize", real)


@pytest.fixture
def export(tmp_path, tiny_generator_checkpoint):
    masks = tmp_path / "masks"
    masks.mkdir()
    _mask(masks / "a.tif")
    _mask(masks / "b.tif", 7)
    ref = tmp_path / "ref"
    argv = lambda out: ["export", "--masks", str(masks), "--out", str(out), "--n", "3", "--seed", "2",  # noqa: E731
                        "--model", str(tiny_generator_checkpoint)]
    assert main(argv(ref)) == 0
    return argv, ref


@pytest.mark.parametrize("how,code,word", [
    (lambda: (_ for _ in ()).throw(KeyboardInterrupt), 130, "interrupted"),
    (lambda: os.kill(os.getpid(), signal.SIGTERM), 143, "stopped (SIGTERM)"),
])
def test_interrupted_export_keeps_complete_pairs_and_a_rerun_completes_it(tmp_path, export, monkeypatch, capsys,
                                                                          how, code, word):
    argv, ref = export
    out = tmp_path / "out"
    restore = _interrupt_at(monkeypatch, 5, how)  # b_1: a_0..a_2 and b_0 are written
    capsys.readouterr()
    assert main(argv(out)) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"nanogan export: {word}; complete outputs are kept" in err
    assert _names(out) == ["a_0", "a_1", "a_2", "b_0"]  # the manifest lists exactly the complete pairs
    assert _files(out) == sorted([JOURNAL, "manifest.csv", "manifest.json",
                                  *[f"{k}/{n}.tif" for k in ("images", "masks") for n in ("a_0", "a_1", "a_2", "b_0")]])
    restore()
    assert main(argv(out)) == 0  # the same command completes it
    assert "wrote 2 pairs" in capsys.readouterr().out
    _same_pairs(out, ref)
    assert not (out / JOURNAL).exists() and not list(out.rglob("*.tmp"))
    assert main(argv(out)) == 0  # and once complete, nothing is left to do
    assert "nothing to write" in capsys.readouterr().out


def test_export_killed_hard_is_completed_by_the_same_command(tmp_path, export):
    """kill -9 in the middle of a pair (its image written, its mask half-written): a rerun rewrites the leftovers."""
    argv, ref = export
    out = tmp_path / "out"
    child = (
        "import os, signal, sys, tifffile\n"
        "from napari_nanogan.cli import main\n"
        "real, calls = tifffile.imwrite, []\n"
        "def dying(path, data, **kw):\n"
        "    calls.append(path)\n"
        "    if len(calls) == 4:  # the mask of a_1\n"
        "        open(path, 'wb').write(b'II*\\x00half')\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(path, data, **kw)\n"
        "tifffile.imwrite = dying\n"
        "main(sys.argv[1:])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-c", child, *argv(out)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    left = _files(out)
    assert "images/a_1.tif" in left and "masks/a_1.tif" not in left and any(f.endswith(".tmp") for f in left)
    assert main(argv(out)) == 0
    _same_pairs(out, ref)
    assert _files(out) == _files(ref)  # no temporary file, no journal


def test_export_streams_pairs_and_refuses_what_it_did_not_write(tmp_path, export, monkeypatch, capsys):
    argv, ref = export
    out = tmp_path / "out"
    huge = [*argv(out)[:5], "--n", "1000000", *argv(out)[7:]]
    restore = _interrupt_at(monkeypatch, 4, lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(huge) == 130  # a million pairs planned: the first three are on disk, not held in memory
    assert _names(out) == ["a_0", "a_1", "a_2"]
    assert (out / JOURNAL).stat().st_size < 1000
    restore()
    # the user's own file of a planned name is never overwritten; nothing is written then
    user = tmp_path / "user"
    (user / "images").mkdir(parents=True)
    (user / "images" / "b_1.tif").write_bytes(b"mine")
    capsys.readouterr()
    assert main(argv(user)) == 1
    err = capsys.readouterr().err
    assert "not overwriting existing files" in err and "b_1.tif" in err and "nothing was written" in err
    assert (user / "images" / "b_1.tif").read_bytes() == b"mine" and _files(user) == ["images/b_1.tif"]
    # --overwrite twice: one manifest entry per pair
    assert main([*argv(user), "--overwrite"]) == 0 and main([*argv(user), "--overwrite"]) == 0
    assert _names(user) == _names(ref)
    # an unreadable manifest is refused before any pair is written
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{")
    capsys.readouterr()
    assert main(argv(bad)) == 1
    assert "manifest.json is not a readable export manifest" in capsys.readouterr().err
    assert _files(bad) == ["manifest.json"]


def test_export_reports_a_manifest_only_when_it_wrote_one(tmp_path, tiny_generator_checkpoint, capsys):
    tifffile.imwrite(tmp_path / "bad.tif", np.full((40, 48), -1, np.int16))
    out = tmp_path / "out"
    assert main(["export", "--masks", str(tmp_path / "bad.tif"), "--out", str(out),
                 "--model", str(tiny_generator_checkpoint)]) == 1
    said = "".join(capsys.readouterr())
    assert "wrote no pairs" in said and "manifest.json" not in said and not (out / "manifest.json").exists()


def test_interrupted_segment_and_synthesize_batches_are_completed_by_a_rerun(tmp_path, tiny_checkpoint,
                                                                             tiny_generator_checkpoint, monkeypatch,
                                                                             capsys):
    import napari_nanogan.segmentation.pipeline as segmentation

    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        _image(images / f"i{i}.tif", i)
    out = tmp_path / "seg"
    real = segmentation.segment
    calls = []

    def segment(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(segmentation, "segment", segment)
    seg = ["segment", str(images), "--out", str(out), "--model", str(tiny_checkpoint)]
    assert main(seg) == 143
    assert _files(out) == ["i0_labels.csv", "i0_labels.tif"]  # complete, with its table; nothing of i1
    monkeypatch.setattr(segmentation, "segment", real)
    (out / ".i1_labels.tif.abc123.tmp").write_bytes(b"left by kill -9")
    assert main(seg) == 0
    assert _files(out) == sorted(f"i{i}_labels.{ext}" for i in range(3) for ext in ("csv", "tif"))

    masks = tmp_path / "masks"
    masks.mkdir()
    _mask(masks / "m.tif")
    syn = ["synthesize", str(masks), "--out", str(tmp_path / "syn"), "--n", "3", "--model",
           str(tiny_generator_checkpoint)]
    import napari_nanogan.synthesis as synthesis

    restore = _interrupt_at(monkeypatch, 2, lambda: (_ for _ in ()).throw(KeyboardInterrupt), module=synthesis)
    assert main(syn) == 130
    assert _files(tmp_path / "syn") == ["m_0.tif"]
    restore()
    assert main(syn) == 0
    assert _files(tmp_path / "syn") == ["m_0.tif", "m_1.tif", "m_2.tif"]
    capsys.readouterr()
