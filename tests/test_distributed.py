"""Many files and large images on Dask: an in-process LocalCluster, tiny models, tiny images; no network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

pytest.importorskip("distributed")
pytest.importorskip("zarr")

from napari_nanogan.cli import main  # noqa: E402
from napari_nanogan.io.images import labels_pixel_size_nm  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """Two workers in this process. Outputs are compared byte for byte with runs here, so every run (here and on
    the workers) uses one torch thread: float sums follow the thread count, and two workers share one pool."""
    from distributed import Client, LocalCluster

    threads = torch.get_num_threads()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield cluster, client
    torch.set_num_threads(threads)


@pytest.fixture
def images(tmp_path, sem_like):
    """Three small SEM images and one file that is not an image."""
    image, _ = sem_like
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        tifffile.imwrite(folder / f"f{k}.tif", np.roll(image, 17 * k, axis=1))
    (folder / "broken.tif").write_text("not a tiff")
    return folder


def _files(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_files_on_the_cluster_equal_a_plain_run_skip_failures_and_resume(cluster, images, tiny_checkpoint, tmp_path,
                                                                        capsys):
    from napari_nanogan.distributed.batch import segment_files
    from napari_nanogan.distributed.cluster import plugin_name

    _, client = cluster
    plain = tmp_path / "plain"
    assert main(["segment", str(images), "--out", str(plain), "--model", str(tiny_checkpoint), "--tile", "128",
                 "--threads", "1"]) == 1
    paths = sorted(images.iterdir())
    out = tmp_path / "dask"
    outcomes = segment_files(client, paths, out, model=str(tiny_checkpoint), tile=128, torch_threads=1)
    assert [o.status for o in outcomes] == ["failed", "done", "done", "done"]
    assert "broken.tif" in outcomes[0].line and outcomes[0].line.startswith("error: ")
    assert _files(out) == _files(plain)  # labels and tables byte for byte
    loads = client.run(lambda dask_worker: dask_worker.plugins[plugin_name("segmenter", str(tiny_checkpoint))].loads)
    assert sorted(loads.values()) == [1, 1]  # each worker loaded the model once, for all its tasks
    (out / "f1_labels.tif").unlink()
    again = segment_files(client, paths, out, model=str(tiny_checkpoint), tile=128, torch_threads=1)
    assert [o.status for o in again] == ["failed", "skipped", "done", "skipped"]
    assert _files(out) == _files(plain)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing partial


def test_cli_segment_on_a_running_scheduler(cluster, images, tiny_checkpoint, tmp_path, capsys):
    local, _ = cluster
    (images / "broken.tif").unlink()
    rc = main(["segment", str(images), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint), "--tile", "128",
               "--scheduler", local.scheduler_address])
    said = capsys.readouterr()
    assert rc == 0, said.err
    assert "3 files, 0 zarr images on 2 Dask workers" in said.err  # what runs where: a note
    assert "files: 3 done, 0 complete before (skipped), 0 failed" in said.out  # the result
    assert sorted(p.name for p in (tmp_path / "o").glob("*.tif")) == ["f0_labels.tif", "f1_labels.tif", "f2_labels.tif"]
    rc = main(["segment", str(images), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint),
               "--scheduler", local.scheduler_address])
    assert rc == 0 and "0 done, 3 complete before (skipped)" in capsys.readouterr().out


def test_zarr_image_block_by_block_on_the_cluster_equals_one_process(cluster, tiny_checkpoint, sem_like, tmp_path):
    from napari_nanogan.distributed.blocks import segment_zarr
    from napari_nanogan.io.omezarr import open_zarr_image, write_ome_zarr, zarr_levels
    from napari_nanogan.progress import drive
    from napari_nanogan.segmentation import load_segmenter
    from napari_nanogan.segmentation.zarrjob import segment_zarr_steps

    _, client = cluster
    image = np.tile(sem_like[0][:176], (2, 2))  # 352 x 480, no info bar
    plane, _ = open_zarr_image(write_ome_zarr(tmp_path / "big.zarr", image, chunk=128))
    options = dict(block=128, margin=32, tile=128)
    torch.set_num_threads(1)
    here = drive(segment_zarr_steps(plane, load_segmenter(str(tiny_checkpoint)), tmp_path / "here.zarr", **options))
    seen = []
    there = segment_zarr(client, plane, tmp_path / "there.zarr", model=str(tiny_checkpoint), torch_threads=1,
                         progress=lambda d, t: seen.append((d, t)), **options)
    assert seen[-1] == (13, 13) and there.count == here.count
    assert np.array_equal(np.asarray(zarr_levels(there.path)[0]), np.asarray(zarr_levels(here.path)[0]))
    assert segment_zarr(client, plane, tmp_path / "there.zarr", model=str(tiny_checkpoint), **options).skipped


def test_synthesize_and_export_on_the_cluster_equal_one_process(cluster, tiny_generator_checkpoint, tmp_path, capsys):
    from napari_nanogan.data.procedural import particle_labels

    local, _ = cluster
    masks = tmp_path / "masks"
    masks.mkdir()
    for k in range(2):
        tifffile.imwrite(masks / f"m{k}.tif", particle_labels((64, 64), n_particles=6, mean_diameter=12, seed=k)
                         .astype(np.uint16))
    common = ["--model", str(tiny_generator_checkpoint), "--n", "2", "--seed", "3", "--threads", "1"]
    assert main(["synthesize", str(masks), "--out", str(tmp_path / "s1"), *common, "--pixel-size", "2.5"]) == 0
    assert main(["synthesize", str(masks), "--out", str(tmp_path / "s2"), *common, "--pixel-size", "2.5",
                 "--scheduler", local.scheduler_address]) == 0
    assert _files(tmp_path / "s1") == _files(tmp_path / "s2") and len(_files(tmp_path / "s2")) == 4
    assert labels_pixel_size_nm(tmp_path / "s2" / "m0_1.tif") == pytest.approx(2.5)
    assert main(["export", "--masks", str(masks), "--out", str(tmp_path / "e1"), *common]) == 0
    assert main(["export", "--masks", str(masks), "--out", str(tmp_path / "e2"), *common,
                 "--scheduler", local.scheduler_address]) == 0
    for sub in ("images", "masks"):
        assert _files(tmp_path / "e1" / sub) == _files(tmp_path / "e2" / sub)
    first, second = (json.loads((tmp_path / e / "manifest.json").read_text())["pairs"] for e in ("e1", "e2"))
    assert first == second and len(first) == 4
    # a rerun resumes: complete pairs kept, the manifest lists each pair once
    (tmp_path / "e2" / "images" / "m1_0.tif").unlink()
    assert main(["export", "--masks", str(masks), "--out", str(tmp_path / "e2"), *common,
                 "--scheduler", local.scheduler_address]) == 0
    assert json.loads((tmp_path / "e2" / "manifest.json").read_text())["pairs"] == first
    capsys.readouterr()


def test_measure_on_the_cluster_equals_one_process_and_takes_folders(cluster, images, tiny_checkpoint, tmp_path,
                                                                      capsys):
    local, _ = cluster
    labels = tmp_path / "labels"
    assert main(["segment", str(images), "--out", str(labels), "--model", str(tiny_checkpoint), "--tile", "128"]) == 1
    (labels / "bad_labels.tif").write_text("not a tiff")
    capsys.readouterr()
    files = sorted(str(p) for p in labels.glob("*.tif"))
    assert main(["measure", *files, "--out", str(tmp_path / "one.csv")]) == 1  # no torch: threads do not matter
    one = "".join(capsys.readouterr()[::-1])  # errors (stderr), then results (stdout)
    assert main(["measure", str(labels), "--out", str(tmp_path / "two.csv"), "--scheduler", local.scheduler_address]) == 1
    two = "".join(capsys.readouterr()[::-1])
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()
    assert (tmp_path / "one_summary.csv").read_text() == (tmp_path / "two_summary.csv").read_text()
    lines = [line for line in one.splitlines() if line.startswith(("error", str(labels)))]
    assert lines == [line for line in two.splitlines() if line.startswith(("error", str(labels)))] and len(lines) == 4
    assert lines[0].startswith(f"error: {labels / 'bad_labels.tif'}: ")


def test_a_cluster_flag_without_the_extra_is_one_clear_line(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    rc = main(["segment", str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0
    assert "needs distributed" in err and "pip install -e '.[distributed]' in the napari-nanogan source folder" in err


def test_jobqueue_recipes_render_slurm_and_pbs_jobs(monkeypatch):
    pytest.importorskip("dask_jobqueue")
    from napari_nanogan.distributed.cluster import jobqueue_cluster

    for system, directive in (("slurm", "#SBATCH"), ("pbs", "#PBS")):
        cluster = jobqueue_cluster(system, cores=8, processes=2, memory="16GB", walltime="02:00:00", queue="batch",
                                   scheduler_options={"dashboard_address": None})
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
        assert directive in script and "export OMP_NUM_THREADS=4" in script and "--nworkers 2" in script
        assert "02:00:00" in script and "batch" in script
