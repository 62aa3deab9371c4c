"""A microscope's stack or series file in napari: opened whole, looked through, split into frames to segment."""

import numpy as np
from dm_files import write_dm

from napari_nanogan.data.procedural import particle_labels, render_sem
from napari_nanogan.widgets._layers import layer_pixel_size_nm


def test_a_dm_series_opens_as_one_layer_and_its_split_frames_keep_the_pixel_size(make_napari_viewer, tmp_path):
    frames = np.stack([render_sem(particle_labels((64, 80), n_particles=6, mean_diameter=12, seed=k), seed=k)
                       for k in range(3)]).astype(np.uint16)
    path = write_dm(tmp_path / "insitu.dm4", frames, scale=0.25)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-nanogan")
    assert layer.data.shape == (3, 64, 80) and tuple(layer.scale)[1:] == (0.25, 0.25)
    viewer.dims.set_point(0, 2)  # the slider walks through the frames
    assert np.array_equal(np.asarray(layer.data[2]), frames[2])
    from napari.layers.utils.stack_utils import stack_to_images

    single = stack_to_images(layer, axis=0)  # Layers > Split Stack
    assert len(single) == 3 and single[1].data.shape == (64, 80)
    assert layer_pixel_size_nm(single[1]) == 0.25  # each frame is measured and segmented in nm
    from napari_nanogan.widgets.segment import layer_unit

    assert layer_unit(single[1]) == "nm"  # its scale is 0.25 nm a pixel, though Split Stack drops the unit
