"""The size distribution figure (measure.size_figure): what it draws is the table's, and where the CLI writes it."""

import numpy as np
import pytest
import tifffile

from napari_nanogan.cli import main
from napari_nanogan.measure import measure_particles, summarize_sizes
from napari_nanogan.measure import bin_edges, lognormal_fit, size_figure, write_size_plot


def discs(radii, shape=(200, 400), border=False):
    labels = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for i, r in enumerate(radii):
        cy, cx = (r if border and i == 0 else 50 + 100 * (i // 4)), 50 + 100 * (i % 4)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i + 1
    return labels


def test_the_figure_shows_the_table_s_whole_particles_and_its_d_values():
    table = measure_particles(discs([5, 10, 15, 20, 25, 30, 35], border=True), pixel_size_nm=2.0)
    fig = size_figure(table, title="x")
    ax, share = fig.axes
    counts = [p.get_height() for p in ax.patches]
    assert sum(counts) == 6  # the disc cut by the border is left out, as in the summary
    s = summarize_sizes(table)
    lines = {line.get_label().split()[0]: line.get_xdata()[0] for line in ax.lines if line.get_label()[0] == "D"}
    assert lines == pytest.approx({"D10": s["D10"], "D50": s["D50"], "D90": s["D90"]})
    fit, = (line for line in ax.lines if line.get_label().startswith("log-normal"))
    assert f"{s['geometric_mean']:.3g} nm, σg {s['geometric_sd']:.2f}" in fit.get_label()
    assert ax.get_xlabel() == "equivalent-circle diameter (nm)" and share.get_ylim() == (0, 100)
    curve = share.lines[0].get_ydata()
    assert curve[-1] == pytest.approx(100) and np.all(np.diff(curve) >= 0)
    assert "x\nn = 6 (1 cut, left out), mean" in ax.get_title()
    assert sum(p.get_height() for p in size_figure(table, include_cut=True).axes[0].patches) == 7
    ratio = size_figure(table, column="circularity").axes[0]  # a ratio: no unit, percentiles called P10 ...
    assert ratio.get_xlabel() == "circularity" and [line.get_label()[:3] for line in ratio.lines] == ["P10", "P50", "P90"]
    assert size_figure(table, column="area").axes[0].get_xlabel() == "area (nm²)"


def test_a_log_normal_fit_that_the_sizes_do_not_follow_is_called_poor():
    from napari_nanogan.measure import LOGNORMAL_POOR_P, lognormal_p

    rng = np.random.default_rng(0)
    follows = rng.lognormal(np.log(30), 0.3, 300)
    two_populations = np.concatenate([rng.normal(20, 1.5, 150), rng.normal(60, 3, 150)])
    assert lognormal_p(follows) > LOGNORMAL_POOR_P > lognormal_p(two_populations)
    assert lognormal_p([5.0, 6.0, 7.0]) is None and lognormal_p(np.full(20, 4.0)) is None  # too few; all equal
    radii = np.concatenate([np.full(6, 4), np.full(6, 12)]).tolist()  # two sizes of disc: no log-normal
    table = measure_particles(discs(radii, shape=(300, 400)), pixel_size_nm=2.0)
    s = summarize_sizes(table)
    assert s["lognormal_p"] < LOGNORMAL_POOR_P
    fit, = (line for line in size_figure(table).axes[0].lines if line.get_label().startswith("log-normal"))
    assert "a poor fit: Shapiro-Wilk p" in fit.get_label() and fit.get_linestyle() == "--"


def test_nothing_to_size_and_unknown_formats_are_refused(tmp_path):
    cut_only = measure_particles(discs([20], border=True))
    with pytest.raises(ValueError, match="all are cut"):
        size_figure(cut_only)
    with pytest.raises(ValueError, match="column must be"):
        size_figure(measure_particles(discs([5, 9])), column="volume")
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf"):
        write_size_plot(tmp_path / "p.jpg", measure_particles(discs([5, 9])))
    assert not list(tmp_path.iterdir())


def test_bins_stay_between_5_and_60():
    rng = np.random.default_rng(0)
    for values in (np.array([3.0, 3.1, 3.2]), rng.lognormal(3, 0.3, 20), rng.lognormal(3, 0.3, 200_000)):
        assert 5 <= len(bin_edges(values)) - 1 <= 60


def test_measure_plot_pools_files_in_nm_and_plots_pixels_per_file(tmp_path, capsys):
    from PIL import Image

    from napari_nanogan.io.images import write_labels

    write_labels(tmp_path / "a_labels.tif", discs([6, 9, 12]), pixel_size_nm=2.0)
    write_labels(tmp_path / "b_labels.tif", discs([7, 10, 14]), pixel_size_nm=2.0)
    assert main(["measure", str(tmp_path / "a_labels.tif"), str(tmp_path / "b_labels.tif"), "--out",
                 str(tmp_path / "m.csv"), "--plot"]) == 0
    picture = np.asarray(Image.open(tmp_path / "m_histogram.png"))
    assert picture.shape[0] > 500 and picture.std() > 10  # a drawn figure, at print resolution
    captured = capsys.readouterr()
    assert "m_histogram.png" in captured.out and "mixes files" not in captured.err  # D50 24 and 28 nm: one sample
    write_labels(tmp_path / "big_labels.tif", discs([6, 9, 12]), pixel_size_nm=20.0)  # ten times larger
    assert main(["measure", str(tmp_path / "a_labels.tif"), str(tmp_path / "big_labels.tif"), "--out",
                 str(tmp_path / "mixed.csv"), "--plot"]) == 0
    assert "the pooled 'all' row and plot mixes files whose D50 differ 10-fold" in capsys.readouterr().err
    tifffile.imwrite(tmp_path / "c_labels.tif", discs([5, 8]).astype(np.uint16))  # no pixel size: px, not pooled
    assert main(["measure", str(tmp_path / "a_labels.tif"), str(tmp_path / "c_labels.tif"), "--out",
                 str(tmp_path / "n.csv"), "--plot"]) == 0
    assert (tmp_path / "n_a_labels_histogram.png").exists() and (tmp_path / "n_c_labels_histogram.png").exists()
    assert not (tmp_path / "n_histogram.png").exists()
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--out", str(tmp_path / "o.csv")]) == 0
    assert not (tmp_path / "o_histogram.png").exists()  # only asked for


def test_measure_plot_reruns_into_its_folder_and_keeps_same_named_files_apart(tmp_path, capsys):
    """The histogram written beside the labels is no input of the next run; files of one name in two folders get
    a plot each."""
    from napari_nanogan.io.images import write_labels

    write_labels(tmp_path / "a_labels.tif", discs([6, 9, 12]), pixel_size_nm=2.0)
    for _ in range(2):
        assert main(["measure", str(tmp_path), "--out", str(tmp_path / "m.csv"), "--plot"]) == 0
    assert "left out 1 histogram(s)" in capsys.readouterr().err
    assert {row.split(",")[0] for row in (tmp_path / "m.csv").read_text().splitlines()[1:]} == {"a_labels.tif"}
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "f_labels.tif", discs([5, 8]).astype(np.uint16))  # pixels: per file
    assert main(["measure", str(tmp_path / "x"), str(tmp_path / "y"), "--out", str(tmp_path / "n.csv"), "--plot"]) == 0
    assert (tmp_path / "n_f_labels_histogram.png").exists() and (tmp_path / "n_f_labels_2_histogram.png").exists()


def test_the_log_normal_fit_finds_the_distribution_the_sizes_come_from():
    rng = np.random.default_rng(0)
    sizes = rng.lognormal(np.log(40.0), np.log(1.3), 2000)
    median, spread = lognormal_fit(sizes)
    assert median == pytest.approx(40.0, rel=0.02) and spread == pytest.approx(1.3, rel=0.03)
    assert lognormal_fit([10.0, 20.0]) is None and lognormal_fit([0.0, -1.0, 5.0, 6.0]) is None
    # the curve drawn is the fit's expected count per bin: its area is about the particles' number
    table = measure_particles(discs([8, 9, 10, 11, 12, 13, 14, 16]), pixel_size_nm=1.0)
    ax = size_figure(table).axes[0]
    fit, = (line for line in ax.lines if line.get_label().startswith("log-normal"))
    width = ax.patches[0].get_width()
    x, y = fit.get_xdata(), fit.get_ydata()
    assert float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x))) / width == pytest.approx(8, rel=0.25)
    assert not any(line.get_label().startswith("log-normal") for line in size_figure(table, column="solidity").axes[0].lines)
