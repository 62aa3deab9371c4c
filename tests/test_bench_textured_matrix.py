"""bench.textured_matrix stages bright particles on matrices and counts what the segmenter finds in the texture."""

import numpy as np
from conftest import requires_shipped

from bench import textured_matrix


def test_the_textures_and_the_stage_leave_the_particles_as_drawn():
    rng = np.random.default_rng(0)
    for kind in textured_matrix.TEXTURES:
        t = textured_matrix.texture(kind, (96, 128), rng, 12.0)
        assert t.shape == (96, 128) and abs(t.mean()) < 1e-4 and abs(t.std() - 1) < 1e-3
    plain, truth = textured_matrix.stage("grains", 0.0, 20.0, 0)
    strong, same = textured_matrix.stage("grains", 0.35, 20.0, 0)
    np.testing.assert_array_equal(truth, same)
    assert truth.max() > 20
    assert np.array_equal(plain[truth > 0], strong[truth > 0])  # the particles' pixels are not touched
    contrast = np.median(plain[truth > 0].astype(float)) - np.median(plain[truth == 0].astype(float))
    added = strong[truth == 0].astype(float) - plain[truth == 0].astype(float)
    assert 0.33 * contrast < added.std() < 0.37 * contrast  # (no clipping)


@requires_shipped
def test_one_row_per_texture_and_strength(monkeypatch, capsys):
    monkeypatch.setattr(textured_matrix, "STRENGTHS", (0.35,))
    monkeypatch.setattr(textured_matrix, "DIAMETERS", (20.0,))
    out = textured_matrix.main(["--model", "default", "--seeds", "0", "--baseline"])
    assert capsys.readouterr().out.strip().startswith("{")
    assert set(out["rows"]) == {f"{k}@0.35" for k in textured_matrix.TEXTURES}
    for row in out["rows"].values():
        assert row["images"] == 1 and 0 <= row["f1"] <= 1 and row["false_per_image"] >= 0
        assert 0 <= row["baseline"]["f1"] <= 1 and abs(row["f1_margin"] - (row["f1"] - row["baseline"]["f1"])) < 1.5e-3
    assert out["min_f1_margin"] == min(r["f1_margin"] for r in out["rows"].values())
