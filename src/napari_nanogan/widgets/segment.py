"""The "Segment particles" dock widget: thin client of :func:`napari_nanogan.segmentation.segment_steps`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, LineEdit, PushButton, SpinBox, create_widget
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QProgressBar, QWidget

from ..config import TILE
from ..io.masks import label_areas
from ..io.pairs import safe_name
from ._labels import scrolling_layout, wrapping_label
from ._layers import add_labels_in_two_turns, layer_pixel_size_nm, length_per_pixel
from ._pickers import LayerChoice, is_2d
from ._run import Job

if TYPE_CHECKING:
    import napari


def _segment_job(image: np.ndarray, model: str, tile: int, info_bar, diameter=None, out=None, small_pass=True,
                 noted: dict | None = None):
    """Runs in the worker thread: load the model, then segment tile by tile (block by block into ``out``).
    ``noted["no_size_model"]``: set where the model cannot estimate the diameter asked for;
    ``noted["label_areas"]``: what each confidence was given for (:func:`~napari_nanogan.io.masks.label_areas`)."""
    from ..segmentation import can_estimate_diameter, load_segmenter, segment_steps

    segmenter = load_segmenter(model)
    if diameter == "auto" and not can_estimate_diameter(segmenter):
        diameter = None  # this model cannot estimate: the image's own scale (the panel says so)
        if noted is not None:
            noted["no_size_model"] = True
    if out is not None:  # a lazy (zarr, dask) image: never loaded whole
        from ..segmentation.zarrjob import segment_zarr_steps

        bar = info_bar if not isinstance(info_bar, str) else None  # detecting one would read the whole image
        return (yield from segment_zarr_steps(image, segmenter, out, tile=tile, info_bar=bar, diameter=diameter,
                                              small_pass=small_pass))
    result = yield from segment_steps(image, segmenter, tile=tile, info_bar=info_bar, diameter=diameter,
                                      small_pass=small_pass)
    if noted is not None and result.confidence is not None:  # (here, not on the GUI thread)
        noted["label_areas"] = label_areas(result.labels, result.count)
    return result


def _describe(record) -> tuple[int, int, str]:
    """A segmentation progress record as (done, total, what the status line says).

    In memory the records are stages with tile counts; a lazy image yields
    ``(blocks_done, blocks_total)`` pairs (the last step stitches the blocks).
    """
    if isinstance(record, tuple):
        done, total = record
        return done, total, f"segmenting block by block: block {done} / {total} ..."
    text = record.stage
    if record.stage.startswith("segmenting") and record.total > 1:
        text += f": tile {record.done} / {record.total}"
    return record.done, record.total, text + " ..."


def is_lazy(data) -> bool:
    """Whether a layer's data is read on demand (dask, zarr), not held in memory: it is segmented block by block."""
    return not isinstance(data, np.ndarray) and hasattr(data, "shape") and hasattr(data, "__getitem__")


def layer_unit(layer) -> str:
    """The unit of the layer's x axis as the user sees it ("nm", or "px" for an unscaled layer)."""
    units = getattr(layer, "units", None)
    unit = str(units[-1]) if units is not None else "pixel"
    if unit == "pixel":
        scale, pixel = abs(float(layer.scale[-1])), layer_pixel_size_nm(layer)
        if pixel and abs(scale - pixel) <= 1e-6 * pixel:  # a scale in nm that lost its unit (napari's Split Stack)
            return "nm"
        if scale == 1.0:
            return "px"
    return {"nanometer": "nm", "micrometer": "µm", "pixel": "px"}.get(unit, unit)


def info_bar_from_shapes(viewer, image_layer, height: int):
    """The user's info-bar rectangle (a Shapes layer "<image> info bar", maybe edited), or None."""
    from ..io.infobar import InfoBar

    name = f"{image_layer.name} info bar"
    if name not in viewer.layers or not len(viewer.layers[name].data):
        return None
    shapes = viewer.layers[name]
    rows = shapes.data[0][:, -2] * shapes.scale[-2] + shapes.translate[-2]  # world rows
    rows = (rows - image_layer.translate[-2]) / image_layer.scale[-2]  # image rows
    start, stop = int(np.clip(np.round(rows.min() + 0.5), 0, height)), int(np.clip(np.round(rows.max() + 0.5), 0, height))
    if stop <= start:
        return None
    return InfoBar(start, stop, "top" if start == 0 and stop < height else "bottom")


UNIT_CHANGED = "the diameter given was in"


#: What a Shapes layer of the scale bar holds in its metadata (:func:`drawn_diameter` leaves it out).
SCALE_BAR_LAYER = "scale bar"


def drawn_diameter(viewer) -> tuple[float, int, str]:
    """The median length of the lines (and mean axis of the ellipses) drawn on a Shapes layer, in world units
    (the image layer's: nm for a calibrated image), with how many shapes gave it and the layer's name.

    The selected Shapes layer if it holds lines or ellipses, else the newest one that does (the info-bar
    outline, a rectangle, never counts). Raises ``ValueError`` with what to draw where there is none.
    """
    from napari.layers import Shapes

    active = viewer.layers.selection.active
    layers = [layer for layer in reversed(viewer.layers) if isinstance(layer, Shapes)]
    layers.sort(key=lambda layer: layer is not active)  # the selected one first (a stable sort: then the newest)
    for layer in layers:
        if layer.metadata.get(SCALE_BAR_LAYER):  # the scale bar's line is no particle
            continue
        lengths = []
        for vertices, kind in zip(layer.data, layer.shape_type):
            world = np.array([layer.data_to_world(v) for v in vertices])[:, -2:]  # scale, rotation, shear, affine
            if kind == "line" or (kind == "path" and len(world) == 2):
                lengths.append(float(np.linalg.norm(world[1] - world[0])))
            elif kind == "ellipse":  # its bounding box's corners: the mean of the two axes
                lengths.append(float(np.linalg.norm(world[1] - world[0]) + np.linalg.norm(world[2] - world[1])) / 2)
        if lengths:
            return float(np.median(lengths)), len(lengths), layer.name
    raise ValueError("draw a line across a typical particle first: a new Shapes layer (the layer list's "
                     "shapes button), its line tool, one or more particles; then press this button again")


def calibrate_from_scale_bar(viewer, layer, length_nm: float) -> str:
    """Set an image layer's pixel size (scale and units in nm) from its scale bar of ``length_nm``; say how.

    The newest line of a Shapes layer "<image> scale bar" (the one outlined, moved, or drawn there)
    gives the bar's length in the image's pixels; without one the bar is found
    (:func:`~napari_nanogan.io.scalebar.find_scale_bar`) and outlined on that layer, to check. The
    layers tied to the image (its info bar, scale bar and particles, at the image's scale) take the new
    scale with it. Raises ``ValueError`` where neither gives a length.
    """
    from ..io.scalebar import find_scale_bar
    from ._layers import layer_data

    name = f"{layer.name} scale bar"
    shapes = viewer.layers[name] if name in viewer.layers else None
    lines = [v for v, kind in zip(shapes.data, shapes.shape_type) if kind == "line" or (kind == "path" and len(v) == 2)
             ] if shapes is not None else []
    if lines:
        ends = np.array([layer.world_to_data(shapes.data_to_world(v)) for v in lines[-1][[0, -1]]])[:, -2:]
        length_px, how = float(np.linalg.norm(ends[1] - ends[0])), f"the line on {name!r}"
        shapes.metadata[SCALE_BAR_LAYER] = True
        if length_px < 1:
            raise ValueError(f"the line on {name!r} is under a pixel long: draw it along the scale bar")
    else:
        data = layer_data(layer)
        if data.ndim != 2 and not (data.ndim == 3 and layer.rgb):
            raise ValueError(f"{layer.name!r} is {data.ndim}D: find the scale bar on one 2D image")
        bar = find_scale_bar(data)
        if bar is None:
            raise ValueError("no scale bar found (a solid white or black horizontal bar): draw a line along it on a "
                             f"Shapes layer named {name!r} (the line tool), then press the button again")
        y = (bar.top + bar.bottom - 1) / 2
        line = np.array([[y, bar.start - 0.5], [y, bar.stop - 0.5]])  # (pixel centres at whole numbers)
        if shapes is None:
            shapes = viewer.add_shapes(name=name, edge_color="cyan", edge_width=2, scale=tuple(layer.scale[-2:]), translate=tuple(layer.translate[-2:]),
                                       units=tuple(layer.units[-2:]),
                                       rotate=layer.rotate[-2:, -2:] if np.ndim(layer.rotate) == 2 else layer.rotate)
        shapes.metadata[SCALE_BAR_LAYER] = True
        shapes.data = [line]  # in the image's pixels: the layer sits where the image does
        shapes.shape_type = ["line"]
        shapes.scale = tuple(layer.scale[-2:])
        length_px, how = bar.length_px, f"found, outlined on {name!r}: check it lies on the bar"
    pixel = float(length_nm) / length_px
    before = layer_pixel_size_nm(layer)
    factor = pixel / float(layer.scale[-1])
    for other in [layer, *_tied_layers(viewer, layer)]:  # its info bar, scale bar, particles, lines drawn on it
        other.scale = (*tuple(other.scale)[:-2], pixel, pixel)
        other.units = (*tuple(other.units)[:-2], "nm", "nm")
    camera = getattr(getattr(viewer, "scene", None), "camera", None) or viewer.camera
    origin = tuple(float(v) for v in layer.translate[-2:])  # the same part of the image in view, now in nm
    camera.center = (*tuple(camera.center)[:-2], *(t + (c - t) * factor for c, t in zip(camera.center[-2:], origin)))
    camera.zoom = camera.zoom / factor
    layer.metadata["pixel_size_nm"] = pixel
    layer.metadata["pixel_size_source"] = f"scale bar of {length_px:.4g} px = {length_nm:g} nm"
    replaced = f"; it replaces the {before:.4g} nm the image had" if before and abs(pixel / before - 1) > 0.01 else ""
    return f"pixel size {pixel:.4g} nm: a scale bar of {length_px:.4g} px = {length_nm:g} nm ({how}){replaced}"


def _tied_layers(viewer, layer) -> list:
    """The layers that lie on ``layer`` at its scale and place: its info bar, scale bar and particles (by name or
    ``source_layer``), and, where no other image lies there as well, any other (lines drawn on it)."""
    def place(other):
        return tuple(float(v) for v in other.scale[-2:]), tuple(float(v) for v in other.translate[-2:])

    here = place(layer)
    twins = any(o is not layer and o._type_string == "image" and place(o) == here for o in viewer.layers)
    names = {f"{layer.name} {what}" for what in ("info bar", "scale bar", "particles")}
    return [o for o in viewer.layers if o._type_string != "image" and place(o) == here
            and (o.name in names or o.metadata.get("source_layer") == layer.name or not twins)]


class SegmentWidget(QWidget):
    """Choose an Image layer and a model; get a Labels layer with one label per particle."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__()
        from .._napari import prefer_this_reader

        prefer_this_reader()  # the user's next TIFF or PNG opens with its pixel size, not in napari's own reader
        from ..models.registry import available_models, on_models_changed

        self.viewer = napari_viewer
        self.image_layer = create_widget(annotation="napari.layers.Image", label="image")
        self.model = ComboBox(label="model", choices=lambda *_: available_models("segmenter") or ["default"])
        on_models_changed(self.model.reset_choices)  # a fine-tuned model appears here at once
        self.tile = SpinBox(label="tile (px)", value=TILE, min=64, max=2048, step=64)
        self.diameter = FloatSpinBox(label="particle diameter (px)", value=0.0, min=0.0, max=1e6, step=1.0,
                                     tooltip="Typical particle diameter, in the image layer's units. For particles much "
                                             "larger than the model's training scale (about 24 px) the image is made "
                                             "smaller for the network; for particles under 12 px, twice "
                                             "as large (an estimated diameter too, unless the particles then found "
                                             "are not small). 0: segment at the "
                                             "image's own scale.")
        self.auto_diameter = CheckBox(label="estimate particle diameter", value=True,
                                      tooltip="Let the model's size model estimate the typical particle diameter of "
                                              "the image (rough: within 1.5 times on 85 % of the EMPS test images); "
                                              "the image is made smaller only for clearly large particles, and larger "
                                              "for particles under 12 px. Models "
                                              "without a size model segment at the image's own scale.")
        self.auto_diameter.changed.connect(lambda value: setattr(self.diameter, "enabled", not value))
        self.diameter.enabled = not self.auto_diameter.value
        self.from_lines = PushButton(text="Diameter from drawn lines",
                                     tooltip="Draw a line across one or a few typical particles on a Shapes layer "
                                             "(line or ellipse tool); their median length becomes the particle "
                                             "diameter (the estimate off). The surest way to give an unfamiliar "
                                             "image its scale.")
        self.from_lines.changed.connect(self.diameter_from_lines)
        self.scale_bar = LineEdit(label="scale bar length", value="",
                                  tooltip="For an image that does not say its pixel size (a PNG, a figure): the length "
                                          "written beside its scale bar, e.g. 200 nm or 0.5 um. The button finds the "
                                          "bar, outlines it on a Shapes layer '<image> scale bar' and sets the "
                                          "image's pixel size; move that line onto the bar (or draw it there) and "
                                          "press again where the bar was not found or is wrong.")
        self.from_scale_bar = PushButton(text="Pixel size from scale bar")
        self.from_scale_bar.changed.connect(self.pixel_size_from_scale_bar)
        self.exclude_bar = CheckBox(label="exclude info bar (auto, or the edited '<image> info bar' shape)", value=True)
        self.small_pass = CheckBox(label="find small particles beside large ones", value=True,
                                   tooltip="Where the image is made at least twice smaller for its large particles, "
                                           "segment it again four times larger and add the small particles found "
                                           "on the background (satellites on spheres, fines between coarse "
                                           "particles). Untick for speed on images without them.")
        self.run_button = PushButton(text="Segment")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = wrapping_label("")
        self.controls = Container(widgets=[self.image_layer, self.model, self.scale_bar, self.from_scale_bar, self.diameter, self.auto_diameter, self.from_lines, self.tile, self.exclude_bar, self.small_pass, self.run_button, self.cancel_button, self.status])
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        layout = scrolling_layout(self)
        layout.addWidget(self.controls.native)
        layout.addWidget(self.progress)
        layout.addStretch(1)
        self.job = Job("Segment particles", progress=self.progress, status=self.status, run_button=self.run_button,
                       cancel_button=self.cancel_button)
        self._out = None  # the labels store of a lazy layer's run
        self._drawn, self._diameter_unit = 0.0, "px"  # the diameter drawn (exact); the unit the field is in
        self.run_button.changed.connect(self.run)
        self.image_layer.changed.connect(self._update_diameter_unit)
        # the choices kept current, the newest single image chosen until the user chooses
        self.image_choice = LayerChoice(self.viewer, self.image_layer, fits=is_2d)
        self._update_diameter_unit()

    def _update_diameter_unit(self, *_):
        layer = self.image_layer.value
        unit = layer_unit(layer) if layer is not None else "px"
        if self.status.value.startswith(UNIT_CHANGED):  # (said of the image chosen before)
            self.status.value = ""
        if unit != self._diameter_unit and self.diameter.value and not self.auto_diameter.value:
            # a diameter typed in nm means nothing in px (and back): estimated again, said so
            self.diameter.value, self._drawn = 0.0, 0.0
            self.auto_diameter.value = True
            self.status.value = (f"{UNIT_CHANGED} {self._diameter_unit}, this image is in {unit}: the diameter is "
                                 f"estimated again (or give it in {unit})")
        self._diameter_unit = unit
        self.diameter.label = f"particle diameter ({unit}, 0 = off)"

    def pixel_size_from_scale_bar(self, *_) -> float | None:
        """Set the chosen image's pixel size from its scale bar and the length typed (:func:`calibrate_from_scale_bar`)."""
        from ..io.scalebar import length_is_unitless, parse_length_nm

        layer = self.image_layer.value
        try:
            if layer is None:
                raise ValueError("choose an image first")
            text = calibrate_from_scale_bar(self.viewer, layer, parse_length_nm(self.scale_bar.value))
        except ValueError as exc:
            self.status.value = f"no pixel size set: {exc}"
            show_error(f"Segment particles: {exc}")
            return None
        self._update_diameter_unit()
        changed = self.status.value if self.status.value.startswith(UNIT_CHANGED) else ""
        if length_is_unitless(self.scale_bar.value):  # a bar's label has its unit: 1 typed for 1 µm is 1000x off
            value = self.scale_bar.value.strip()
            text = (f"{value} has no unit: taken as {value} nm (type the bar's label as it reads, e.g. {value} nm "
                    f"or {value} um, and press again); {text}")
            show_warning(f"Segment particles: {layer.name}: {text}")
        else:
            show_info(f"Segment particles: {layer.name}: {text}")
        self.status.value = text + (f"; {changed}" if changed else "")
        return layer_pixel_size_nm(layer)

    def diameter_from_lines(self, *_) -> float | None:
        """Set the diameter field to the median length of the drawn lines (:func:`drawn_diameter`)."""
        try:
            length, count, name = drawn_diameter(self.viewer)
        except ValueError as exc:
            show_error(f"Segment particles: {exc}")
            return None
        layer = self.image_layer.value
        unit = layer_unit(layer) if layer is not None else "px"
        self.auto_diameter.value = False
        self.diameter.value = round(length, 2)
        self._drawn = length  # used exactly while the field shows it rounded (0.0123 µm shows 0.01)
        if layer is not None:  # a diameter drawn on this image: the image is chosen (a newly opened one does not
            self.image_choice.user_chose = True  # take its place, and the diameter with it)
        self.status.value = (f"particle diameter {length:.3g} {unit}: the median of {count} "
                             f"{'shape' if count == 1 else 'shapes'} drawn on {name!r}")
        return length

    def diameter_px(self, layer) -> float | str | None:
        """The diameter field in pixels of ``layer`` (it is entered in the layer's units), None when 0, or "auto"."""
        if self.auto_diameter.value:
            return "auto"
        shown = float(self.diameter.value)
        value = self._drawn if self._drawn and round(self._drawn, 2) == round(shown, 2) else shown  # (drawn: exact)
        return value / length_per_pixel(layer) if value > 0 else None

    def run(self):
        """Start segmenting the chosen layer in a worker thread."""
        if self.job.running:  # (the Run button is disabled meanwhile; a second call is not a second run)
            return
        layer = self.image_layer.value
        if layer is None:
            show_error(self.job.refused("open an image first (File > Open, or File > Open Sample)."))
            return
        try:
            image = self._image_data(layer)
        except ValueError as exc:
            show_error(self.job.refused(str(exc)))
            return
        from ..segmentation.tiles import MIN_SIDE

        if min(image.shape[:2]) < MIN_SIDE:
            show_error(self.job.refused(f"{layer.name!r} is {image.shape[0]} x {image.shape[1]} pixels; each side needs "
                                        f"{MIN_SIDE}+ pixels to segment."))
            return
        self._layer = layer
        # what this run uses, recorded now: the fields may change while it runs
        self._run_settings = {"model": self.model.value, "particle_diameter_px": self.diameter_px(layer),
                              "small_pass": bool(self.small_pass.value)}
        info_bar = None
        if self.exclude_bar.value:
            info_bar = info_bar_from_shapes(self.viewer, layer, image.shape[0]) or "auto"
        self._out, self._noted = None, {}
        if is_lazy(image):  # labels go to an OME-Zarr store, block by block; the layer reads it lazily
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="nanogan-labels-"))
            self._out = folder / f"{safe_name(layer.name)}_labels.zarr"
        self.job.start(_segment_job, image, self._run_settings["model"], int(self.tile.value), info_bar,
                       self._run_settings["particle_diameter_px"], self._out, self._run_settings["small_pass"],
                       self._noted,
                       describe=_describe, on_cancelled=self._discard_store,
                       on_result=self._on_result, busy=f"loading {self._run_settings['model']} ...")

    def _discard_store(self) -> str:
        """A cancelled lazy run's labels store, half written, is removed (each run has its own folder)."""
        if self._out is not None:
            import shutil

            shutil.rmtree(self._out.parent, ignore_errors=True)
        return ""

    def cancel(self):
        self.job.cancel()

    @staticmethod
    def _image_data(layer) -> np.ndarray:
        data = layer.data[0] if layer.multiscale else layer.data
        if is_lazy(data) and not layer.rgb and data.ndim == 2:
            return data  # segmented block by block, never loaded whole
        data = np.asarray(data)
        if layer.rgb:
            return data  # converted to grey explicitly by segment()
        if data.ndim != 2:
            raise ValueError(
                f"layer {layer.name!r} has {data.ndim} dimensions {data.shape}; segment a single 2D image "
                "(for a stack, right-click the layer, Split Stack, or slice it first)"
            )
        return data

    def _on_result(self, result):
        layer = self._layer
        ndim = 2
        scale = tuple(layer.scale[-ndim:])
        translate = tuple(layer.translate[-ndim:])
        meta = {"source_layer": layer.name, **{k: v for k, v in self._run_settings.items() if v is not None}}
        note, typed = "", self._run_settings["particle_diameter_px"]
        if typed == "auto" and result.diameter_px is None:
            meta.pop("particle_diameter_px")
            why = (f"{meta['model']} has no size model" if self._noted.get("no_size_model")
                   else "the image is too small, or shows too few particles, to measure them")
            note = (f", segmented at the image's own scale: no diameter estimate ({why}); where the particles are far "
                    "from about 24 px across, give their diameter")
        elif typed not in ("auto", None):
            given = length_per_pixel(layer) * typed
            unit = layer_unit(layer)
            note = f", particle diameter {typed:.3g} px" + (f" ({given:.3g} {unit})" if unit != "px" else "") + " as given"
        if typed == "auto" and result.diameter_px is not None:
            meta["particle_diameter_px"] = result.diameter_px
            meta["particle_diameter_estimated"] = True
        if meta["model"] != "auto":  # auto names the model it chose (describe); a model the user chose is named too
            note += f", model {meta['model']}"
        bar = getattr(result, "info_bar", None) or getattr(getattr(result, "plan", None), "info_bar", None)
        if bar is not None:
            meta["info_bar_rows"] = (bar.start, bar.stop)
        if getattr(result, "inverted", False) or getattr(getattr(result, "plan", None), "inverted", False):
            meta["grey_levels_inverted"] = True  # the polarity check kept the particles found on the inverted image
        if result.model is not None and result.model != meta["model"]:
            meta["model_used"] = result.model  # what "auto" chose for this image
        pixel = layer_pixel_size_nm(layer)
        if pixel:
            meta["pixel_size_nm"] = pixel  # for Measure, Export and Synthesize, whatever the layer's unit
        kwargs = {"name": f"{layer.name} particles", "scale": scale, "translate": translate, "metadata": meta}
        if layer.ndim == 2:  # the labels lie over the image however it is placed: rotation, shear, affine too
            kwargs.update(rotate=layer.rotate, shear=layer.shear, affine=layer.affine.affine_matrix)
        units = getattr(layer, "units", None)
        if units is not None:
            kwargs["units"] = tuple(units[-ndim:])
        if getattr(result, "confidence", None) is not None:  # per particle, hoverable; Measure keeps it in its table
            kwargs["features"] = {"index": np.arange(1, result.count + 1), "confidence": result.confidence}
            if "label_areas" in self._noted:  # what each confidence was given for: a particle repainted later has none
                meta["label_areas"] = self._noted["label_areas"]
        if self._out is not None:  # block by block: the labels stay on disk, read as napari shows them
            from ..io.omezarr import zarr_levels

            levels = zarr_levels(result.path)
            meta["labels_store"] = str(result.path)
            self.labels_layer = self.viewer.add_labels(levels if len(levels) > 1 else levels[0],
                                                       multiscale=len(levels) > 1, **kwargs)
            text = f"{result.describe(requested=meta['model'])}{note}; labels in {result.path}"
            self.status.value = text
            show_info(f"Segment particles: {layer.name}: {text}")
            return
        self.labels_layer = add_labels_in_two_turns(self.viewer, result.labels, **kwargs)
        unit = layer_unit(layer)
        text = result.describe(requested=meta["model"], unit=unit,
                               pixel_size=length_per_pixel(layer) if unit != "px" else None)
        self.status.value = text + note
        show_info(f"Segment particles: {layer.name}: {text}{note}")

