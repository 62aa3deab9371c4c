import numpy as np
import pytest

from napari_nanogan.config import MaskDesign
from napari_nanogan.data.designer import design_mask, fit_design
from napari_nanogan.measure import measure_particles


def test_designed_statistics_match_the_request():
    design = MaskDesign(height=600, width=800, pixel_size_nm=5.0, median_nm=100.0, sigma=0.25, count=120,
                        clustering=0.3, elongation=0.1, seed=1)
    labels = design_mask(design)
    n = labels.max()
    assert 0.8 * 120 <= n <= 120
    ecd = measure_particles(labels, pixel_size_nm=5.0).columns["ecd_nm"]
    assert np.median(ecd) == pytest.approx(100.0, rel=0.15)
    assert np.log(ecd).std() == pytest.approx(0.25, abs=0.1)
    # instances are 4-connected components: no two particles touch through an edge
    from scipy import ndimage as ndi

    assert ndi.label(labels > 0, ndi.generate_binary_structure(2, 1))[1] == n


def test_coverage_mode_and_fit_round_trip():
    design = MaskDesign(height=500, width=500, pixel_size_nm=2.0, median_nm=40.0, sigma=0.2, count=None, coverage=0.2,
                        clustering=0.0, seed=3)
    labels = design_mask(design)
    assert (labels > 0).mean() == pytest.approx(0.2, abs=0.07)
    fitted = fit_design(labels, 2.0)
    assert fitted.median_nm == pytest.approx(40.0, rel=0.15)
    assert fitted.count == pytest.approx(labels.max(), abs=labels.max() * 0.1)
    again = design_mask(fitted)
    assert np.median(measure_particles(again, pixel_size_nm=2.0).columns["ecd_nm"]) == pytest.approx(fitted.median_nm, rel=0.2)


def test_bad_designs():
    with pytest.raises(ValueError, match="3 px"):
        design_mask(MaskDesign(median_nm=5.0, pixel_size_nm=7.0))
    with pytest.raises(ValueError, match="16 x 16"):
        design_mask(MaskDesign(height=8))
    with pytest.raises(ValueError, match="at least 3"):
        fit_design(np.zeros((50, 50), np.int32), 1.0)


def _field(**kw):
    base = dict(height=500, width=500, pixel_size_nm=2.0, median_nm=40.0, sigma=0.15, count=80, elongation=0.0, seed=5)
    labels = design_mask(MaskDesign(**{**base, **kw}))
    return labels, measure_particles(labels, pixel_size_nm=2.0)


def test_faceted_particles_keep_their_size_and_lose_roundness():
    round_labels, round_t = _field(clustering=0.0)
    square_labels, square_t = _field(clustering=0.0, facets=4)
    inner = lambda t: t.included()  # noqa: E731
    # same area-equivalent size, whatever the outline
    assert np.median(square_t.columns["ecd_nm"]) == pytest.approx(np.median(round_t.columns["ecd_nm"]), rel=0.1)
    # squares are less circular than discs (4 pi A / P^2: 0.785 vs 1 in the continuum)
    assert np.median(square_t.columns["circularity"][inner(square_t)]) < np.median(round_t.columns["circularity"][inner(round_t)]) - 0.05
    # polygons are convex, like ellipses
    assert np.median(square_t.columns["solidity"]) > 0.9


def test_overlap_controls_how_much_of_a_particle_is_hidden():
    _, whole = _field(clustering=1.0, overlap=0.0)
    _, hidden = _field(clustering=1.0, overlap=0.8)
    bitten = lambda t: float((t.columns["solidity"] < 0.85).mean())  # noqa: E731
    assert bitten(whole) < 0.05
    assert bitten(hidden) > bitten(whole) + 0.1
    with pytest.raises(ValueError, match="overlap"):
        design_mask(MaskDesign(overlap=0.95))
    with pytest.raises(ValueError, match="facets"):
        design_mask(MaskDesign(facets=2))
