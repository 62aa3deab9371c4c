"""The new-domain adaptation study's pipeline on real BAM images, at smoke size."""

import json

import pytest
from conftest import DATA, requires_shared, requires_shipped

from bench import adaptation as bench

pytestmark = [requires_shared, requires_shipped]


def test_smoke_study_runs_resumes_and_keeps_the_test_fields_out(tmp_path):
    args = ["--smoke", "--data-root", str(DATA), "--out", str(tmp_path / "work"), "--base", "default",
            "--arms", "real,synthetic,home", "--json", str(tmp_path / "r.json"), "--figure", str(tmp_path / "r.png")]
    out = bench.main(args)
    run = out["runs"][0]
    assert run["k"] == 1 and len(run["images"]) == 1
    for arm in ("real", "synthetic", "home"):
        assert 0 <= run[arm]["dice"] <= 1 and 0 <= run[arm]["f1"] <= 1 and 0 <= run[arm]["pq"] <= run[arm]["f1"]
    row = out["summary"]["1"]
    assert row["synthetic_minus_real"]["f1"]["mean"] == round(run["synthetic"]["f1"] - run["real"]["f1"], 4)
    # the synthetic folder holds the annotated mask and the designer masks fitted to it, drawn by the adapted generator
    manifest = json.loads((tmp_path / "work" / "smoke" / "k1-s0" / "synthetic" / "manifest.json").read_text())
    assert {p["source"] for p in manifest["pairs"]} == {"annotated mask", "designer mask fitted to the annotated one"}
    from napari_nanogan.data.datasets import shared_splits

    held = {t[0] for t in shared_splits(DATA)["bam"]["test"]}
    assert not held & set(run["images"])
    assert (tmp_path / "r.png").stat().st_size > 10_000
    # a second run reuses every finished stage
    (tmp_path / "work" / "smoke" / "k1-s0" / "real.pt").unlink()
    assert bench.main(args)["runs"][0]["real"] == run["real"]
    # a folder made with other settings is refused, not mixed in
    with pytest.raises(SystemExit):
        bench.main([*args, "--base", "sem-tio2"])
