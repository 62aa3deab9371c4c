"""bench.classical tunes the Otsu + watershed baseline on the images it scores: the best grid point wins."""


from bench import classical
from napari_nanogan.data.procedural import particle_labels, render_sem


def test_the_tuned_baseline_takes_the_polarity_and_seed_distance_the_images_need():
    labels = [particle_labels((160, 192), n_particles=25, mean_diameter=16.0, seed=s) for s in (0, 1)]
    bright = [render_sem(lab, seed=s) for s, lab in enumerate(labels)]
    dark = [255 - im for im in bright]
    on_bright = classical.tuned_classical(bright, labels)
    on_dark = classical.tuned_classical(dark, labels)
    assert on_bright["config"]["polarity"] in ("bright", "minority")
    assert on_dark["config"]["polarity"] in ("dark", "minority")
    assert on_bright["f1"] > 0.6 and on_dark["f1"] > 0.6  # clean, separate discs: the baseline finds them
    assert len(on_bright["labels"]) == 2 and on_bright["labels"][0].shape == labels[0].shape
    # the wrong polarity everywhere scores far lower: the search matters
    from napari_nanogan.config import ClassicalConfig
    from napari_nanogan.metrics.segmentation import summarize
    from napari_nanogan.segmentation.classical import otsu_watershed

    wrong = ClassicalConfig(sigma=1.0, polarity="dark", min_distance=5)
    assert summarize([(t, otsu_watershed(im, wrong)) for im, t in zip(bright, labels)], min_area=9)["f1"] < \
        on_bright["f1"] - 0.3
