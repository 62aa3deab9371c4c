"""Segmentation of whole images of any size: tiled, blended, post-processed into particles."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Callable, Generator

import numpy as np
import torch

from .config import PostprocessConfig, SegmenterConfig
from .io.images import as_grey
from .io.infobar import InfoBar, detect_info_bar
from .models.attention_unet import AttentionUNet
from .models.checkpoint import load_checkpoint
from .normalize import intensity_range, normalize
from .postprocess import instances_from_probabilities
from .sizing import MIN_ESTIMATE_SIDE, SizeModel, estimate_diameter

MIN_SIDE = 8
#: Pixels of an image that set the group-norm statistics (see :func:`image_statistics`).
CALIBRATION_PIXELS = 1024 * 1024
CALIBRATION_CROP = 512
#: Typical particle diameter (px) the shipped segmenters were trained at: the median
#: equivalent-circle diameter of the BAM training particles (about 24 px). With
#: ``segment(..., diameter=D)`` an image is resized by ``model diameter / D`` first.
MODEL_DIAMETER_PX = 24.0
#: Smallest resize factor ``segment(..., diameter=...)`` uses. Images are only ever made
#: smaller: enlarging images of small particles lowered instance F1 on the EMPS
#: validation images (0.41 -> 0.36), and going below 1/8 lowered foreground IoU.
MIN_RESIZE = 1 / 8
#: ``diameter="auto"`` resizes only for estimates at least this many times the model's
#: diameter: estimates are rough, and a too-small image hurts more than a too-large one.
AUTO_MIN_RATIO = 1.5
#: :func:`polarity_pass` looks at most this many pixels of specimen per side (a centre
#: crop), at half size (or smaller, for a diameter): one small network pass whatever the image's size.
POLARITY_CROP = 2048


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Segmenter:
    """A trained segmenter ready for inference."""

    network: AttentionUNet
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    name: str = "unnamed"
    card: dict = field(default_factory=dict)
    precision: str = "fp32"  # "fp32" or "bf16" (CPU autocast; see bf16_supported)
    diameter_px: float = MODEL_DIAMETER_PX  # typical particle diameter the network works best at
    size_model: SizeModel | None = None  # for segment(..., diameter="auto")

    @property
    def config(self) -> SegmenterConfig:
        return self.network.config

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @classmethod
    def from_checkpoint(cls, path, *, device: torch.device | str | None = None, name: str | None = None) -> "Segmenter":
        data = load_checkpoint(path, kind="segmenter")
        network = AttentionUNet(SegmenterConfig.from_dict(data["config"]))
        network.load_state_dict(data["state_dict"])
        segmenter = cls.from_network(
            network,
            postprocess=PostprocessConfig.from_dict(data.get("postprocess", {})),
            name=name or os.path.basename(str(path)),
            card=data.get("provenance", {}),
            device=device,
        )
        if data.get("size_model"):
            try:
                segmenter.size_model = SizeModel.from_dict(data["size_model"])
            except ValueError as exc:  # fitted by an older version: the network still works
                import warnings

                warnings.warn(f"{path}: size model not loaded ({exc}); diameter='auto' needs a refit", stacklevel=2)
        return segmenter

    @classmethod
    def from_network(cls, network, *, postprocess=None, name="unnamed", card=None, device=None) -> "Segmenter":
        device = torch.device(device) if device is not None else default_device()
        network = network.to(device).eval()
        if device.type == "cpu":
            network = network.to(memory_format=torch.channels_last)
        return cls(network, postprocess or PostprocessConfig(), name, card or {})


@dataclass
class AutoSegmenter:
    """Chooses a segmenter per image: ``bright`` for bright particles on a dark background, else ``general``.

    The shipped ``auto`` model: ``bright`` is ``sem-tio2`` (trained on SEM images of
    bright TiO2 particles on a dark substrate, better there), ``general`` is ``default``
    (SEM and TEM). :func:`segment_steps` first runs ``general`` once at half size, or at
    the smaller size a particle diameter asks for (:func:`polarity_pass`). Particles
    brighter than their background (secondary-electron
    SEM) go to ``bright``, unless its foreground then disagrees with that pass (IoU under
    ``min_agreement``): the specialist is outside the images it knows, and ``general``
    segments the image instead. Darker particles (bright-field TEM), or none found, go
    to ``general`` directly. ``general`` also estimates the particle diameter for
    ``diameter="auto"``: its size model was fitted on its own outputs.
    """

    general: Segmenter
    bright: Segmenter
    name: str = "auto"
    min_agreement: float = 0.6

    @property
    def card(self) -> dict:
        return {"auto": f"per image: {self.bright.name} for bright particles on a dark background "
                        f"(foreground IoU >= {self.min_agreement} with {self.general.name}'s), else {self.general.name}",
                "general": self.general.card, "bright": self.bright.card}

    @property
    def size_model(self) -> SizeModel | None:
        return self.general.size_model

    @property
    def diameter_px(self) -> float:
        return self.general.diameter_px


@dataclass(frozen=True)
class PolarityPass:
    """One small pass of a segmenter over (a centre crop of) the specimen; see :func:`polarity_pass`."""

    polarity: float  # median grey of the predicted particles minus the background's, in image SDs
    foreground: np.ndarray  # [h, w] bool, at the pass's size (half, or the diameter's factor)
    box: tuple[slice, slice]  # the crop, in specimen coordinates

    def agreement(self, foreground: np.ndarray, rows: slice = slice(None)) -> float:
        """Foreground IoU of a full-size probability map (uint8, whole image) with this pass's."""
        from skimage.transform import resize

        crop = np.asarray(foreground[rows][self.box], np.float32)
        other = resize(crop, self.foreground.shape, order=1, anti_aliasing=True, preserve_range=True) > 127
        union = (other | self.foreground).sum()
        return float((other & self.foreground).sum() / union) if union else 1.0


def polarity_pass(grey: np.ndarray, segmenter: Segmenter, rows: slice = slice(None),
                  factor: float = 1.0) -> PolarityPass:
    """How much brighter the particles are than the background, from a quick pass of ``segmenter``.

    The specimen rows (a centre crop of at most ``POLARITY_CROP`` px per side) at half
    size, one network pass: the median grey level of the predicted foreground minus
    that of the background, over the image's SD. 0 when the pass finds under 1 % or
    over 99 % foreground, or the image is flat. About 0.07 s for a 1024 x 768 image on
    2 CPU cores. With ``factor`` < 1 (the image will be segmented that much smaller,
    see :func:`segment_steps`' ``diameter``) the crop is resized by ``factor`` instead of
    a half, so that the pass sees the particles at the size the networks will.
    """
    from skimage.transform import resize

    spec = np.asarray(grey[rows], np.float32)
    h, w = spec.shape
    ch, cw = min(h, POLARITY_CROP), min(w, POLARITY_CROP)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    box = (slice(y0, y0 + ch), slice(x0, x0 + cw))
    spec = spec[box]
    scale = factor if factor < 1.0 else 0.5
    shape = (round(ch * scale), round(cw * scale))
    if min(shape) >= 2 * MIN_SIDE:
        spec = resize(spec, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
    steps = probability_steps(spec, segmenter)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            fg = finished.value[0] > 127
            break
    sd = float(spec.std())
    if not 0.01 <= fg.mean() <= 0.99 or sd == 0:
        return PolarityPass(0.0, fg, box)
    return PolarityPass(float((np.median(spec[fg]) - np.median(spec[~fg])) / sd), fg, box)


def bf16_supported() -> bool:
    """Whether this CPU runs bf16 matrix kernels natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(n: int, overlap: int) -> np.ndarray:
    """1D blending weight: linear ramps of ``overlap`` pixels at both ends, never zero."""
    w = np.ones(n, np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        k = min(overlap, n // 2)
        w[:k] = r[:k]
        w[n - k :] = np.minimum(w[n - k :], r[:k][::-1])
    return w


@dataclass(frozen=True)
class SegmentationResult:
    """Labels plus what was found on the way."""

    labels: np.ndarray  # [M, N] uint32 instance labels
    foreground: np.ndarray  # [M, N] uint8 probability * 255
    interior: np.ndarray  # [M, N] uint8 probability * 255
    info_bar: InfoBar | None
    diameter_px: float | None = None  # the particle diameter used (given, or estimated for "auto")
    model: str | None = None  # the segmenter that made the labels (the one chosen, for an AutoSegmenter)


def _group_norm(module: torch.nn.GroupNorm, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    scale = torch.rsqrt(var + module.eps).repeat_interleave(c // module.num_groups)
    shift = -mean.repeat_interleave(c // module.num_groups) * scale
    if module.affine:
        scale, shift = scale * module.weight, shift * module.weight + module.bias
    return torch.addcmul(shift.view(1, c, 1, 1).to(x.dtype), x, scale.view(1, c, 1, 1).to(x.dtype))


@contextlib.contextmanager
def image_statistics(network: torch.nn.Module, calibration: torch.Tensor | None):
    """Group norm with statistics of the whole image instead of each tile.

    Group norm normalises each input by its own statistics, so a network trained
    on crops gives different results for different tile sizes. Inside this context,
    one forward pass over ``calibration`` (a batch of crops of the image) computes
    every group-norm layer's mean and variance pooled over all crops, layer after
    layer; the tiles then reuse them, and tiling no longer changes the result.
    Networks without group norm, or ``calibration=None``, are left as they are.
    Not thread-safe for one network shared by concurrent calls.
    """
    layers = [m for m in network.modules() if isinstance(m, torch.nn.GroupNorm)]
    if calibration is None or not layers:
        yield
        return
    stats: dict = {}

    def calibrate(module):
        def forward(x):
            n, c, h, w = x.shape
            var, mean = torch.var_mean(x.float().reshape(n, module.num_groups, c // module.num_groups, h, w),
                                       dim=(0, 2, 3, 4), correction=0)
            stats[module] = (mean, var)
            return _group_norm(module, x, mean, var)
        return forward

    try:
        for module in layers:
            module.forward = calibrate(module)
        with torch.inference_mode():
            network(calibration)
        for module in layers:
            module.forward = lambda x, module=module: _group_norm(module, x, *stats[module])
        yield
    finally:
        for module in layers:
            module.__dict__.pop("forward", None)  # back to the class's forward


def calibration_crops(image: np.ndarray, lo: float, hi: float, rows: slice, multiple: int) -> np.ndarray:
    """Normalised crops [4, 1, S, S] of the specimen that set the group-norm statistics.

    Four ``CALIBRATION_CROP`` crops spread over the specimen (used for images above
    ``CALIBRATION_PIXELS``; smaller ones run in one pass): fixed by the image alone,
    never by the tiling, so every tile size sees the same statistics.
    """
    spec = image[rows]
    h, w = spec.shape
    ch, cw = min(CALIBRATION_CROP, h), min(CALIBRATION_CROP, w)
    ys = np.linspace(0, h - ch, 2).round().astype(int)
    xs = np.linspace(0, w - cw, 2).round().astype(int)
    crops = [normalize(spec[y : y + ch, x : x + cw], lo, hi) for y in ys for x in xs]
    ph, pw = -(-crops[0].shape[0] // multiple) * multiple, -(-crops[0].shape[1] // multiple) * multiple
    return np.stack([np.pad(c, ((0, ph - c.shape[0]), (0, pw - c.shape[1])), mode="symmetric") for c in crops])[:, None]


def probability_steps(
    image: np.ndarray,
    segmenter: Segmenter,
    *,
    tile: int = 512,
    overlap: int | None = None,
    specimen_rows: slice = slice(None),
) -> Generator[tuple[int, int], None, tuple[np.ndarray, np.ndarray]]:
    """Foreground and interior probabilities (uint8, 0-255) of a 2D grey image.

    A generator: yields ``(tiles_done, tiles_total)`` after each tile and returns
    ``(foreground, interior)``.

    Images (or specimen areas) of at most ``CALIBRATION_PIXELS`` run in one pass.
    Larger ones run in tiles of ``tile`` pixels that overlap by ``overlap`` and are
    blended with linear ramps, with group-norm statistics of the whole image
    (:func:`image_statistics`), so the result does not depend on the tiling. Accumulators cover one
    band of tile rows at a time: memory beyond the uint8 outputs follows the tile size
    and the image width, not the image height.
    """
    m = segmenter.config.multiple
    if overlap is None:
        overlap = min(128, tile // 4)
    if tile % m or tile < 2 * m:
        raise ValueError(f"tile must be a multiple of {m} and at least {2 * m}")
    if not 0 <= overlap < tile // 2:
        raise ValueError("overlap must be in [0, tile / 2)")
    h, w = image.shape
    start, stop, _ = specimen_rows.indices(h)
    if (stop - start) * w <= CALIBRATION_PIXELS and (start, stop) != (0, h):
        # a specimen of at most 1 MP runs as one tile of its own rows: its statistics are
        # the image's, the info bar does not enter them, and no calibration pass is needed
        inner = yield from probability_steps(image[start:stop], segmenter, tile=tile, overlap=0)
        out = np.zeros((2, h, w), np.uint8)
        out[:, start:stop] = np.stack(inner)
        return out[0], out[1]
    if h * w <= CALIBRATION_PIXELS:
        tile = max(tile, -(-max(h, w) // m) * m)  # one pass over the whole image
    lo, hi = intensity_range(image, specimen_rows)
    th = min(tile, -(-h // m) * m)
    tw = min(tile, -(-w // m) * m)
    ys, xs = _starts(h, th, overlap), _starts(w, tw, overlap)
    wy, wx = _ramp(th, overlap if len(ys) > 1 else 0), _ramp(tw, overlap if len(xs) > 1 else 0)
    window = wy[:, None] * wx[None, :]
    out = np.zeros((2, h, w), np.uint8)
    total, done = len(ys) * len(xs), 0
    device = segmenter.device
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    net = segmenter.network
    bf16 = segmenter.precision == "bf16"
    band_start = 0
    acc = np.zeros((2, 0, w), np.float32)
    wacc = np.zeros((0, w), np.float32)
    # one pass over a small image uses its own statistics; larger ones always use the calibration
    # crops' (whatever the tiling, even a single tile), so every tiling sees the same statistics
    calibration = None if h * w <= CALIBRATION_PIXELS else torch.from_numpy(
        calibration_crops(image, lo, hi, specimen_rows, m)).to(device).contiguous(memory_format=fmt)
    with image_statistics(net, calibration):
        for y in ys:
            # grow the band accumulators to cover rows [band_start, y + th)
            need = min(y + th, h) - band_start
            if need > acc.shape[1]:
                grow = need - acc.shape[1]
                acc = np.concatenate([acc, np.zeros((2, grow, w), np.float32)], axis=1)
                wacc = np.concatenate([wacc, np.zeros((grow, w), np.float32)], axis=0)
            for x in xs:
                crop = image[y : y + th, x : x + tw]
                ch, cw = crop.shape
                patch = normalize(crop, lo, hi)
                if (ch, cw) != (th, tw):
                    patch = np.pad(patch, ((0, th - ch), (0, tw - cw)), mode="symmetric")
                inp = torch.from_numpy(patch)[None, None].to(device).contiguous(memory_format=fmt)
                with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    prob = torch.sigmoid(net(inp)[0, :2].float()).cpu().numpy()
                wt = window[:ch, :cw]
                acc[:, y - band_start : y - band_start + ch, x : x + cw] += prob[:, :ch, :cw] * wt
                wacc[y - band_start : y - band_start + ch, x : x + cw] += wt
                done += 1
                yield done, total
            # rows before the next tile's start are final
            next_y = ys[ys.index(y) + 1] if y != ys[-1] else h
            final = next_y - band_start
            out[:, band_start:next_y] = np.round(255 * acc[:, :final] / wacc[None, :final]).astype(np.uint8)
            acc, wacc = acc[:, final:], wacc[final:]
            band_start = next_y
    return out[0], out[1]


def segment_steps(
    image: np.ndarray,
    segmenter: Segmenter | AutoSegmenter,
    *,
    tile: int = 512,
    overlap: int | None = None,
    info_bar: InfoBar | None | bool = True,
    postprocess: PostprocessConfig | None = None,
    diameter: float | None = None,
) -> Generator[tuple[int, int], None, SegmentationResult]:
    """Segment a 2D EM image into particles, as a generator.

    Yields ``(tiles_done, tiles_total)`` and returns a :class:`SegmentationResult`
    (``result = yield from segment_steps(...)``); :func:`segment` drives it.

    Parameters
    ----------
    image : ndarray of shape (M, N), (M, N, 3) or (M, N, 4)
        Grey (uint8, uint16, float, palette indices) or RGB(A), converted to grey.
    segmenter : Segmenter or AutoSegmenter
        From :func:`napari_nanogan.models.pretrained.load_segmenter`. An
        :class:`AutoSegmenter` (the ``auto`` model) first chooses one per image.
    tile, overlap : int
        Tile side and overlap in pixels (the image is never resized); the default
        overlap is ``min(128, tile // 4)`` (a quarter of the tile: the network sees past its edges).
    info_bar : InfoBar, None or bool
        ``True`` detects the microscope's info bar and labels it 0; ``False``/``None``
        treats every row as specimen; an :class:`InfoBar` overrides detection.
    diameter : float, "auto" or None
        Typical particle diameter in pixels, for particles much larger than the scale
        the model was trained at (``segmenter.diameter_px``, about 24 px). The
        specimen is made smaller by ``segmenter.diameter_px / diameter`` (at most 8
        times) for the network, the probabilities are resized back, and the
        post-processing distances are scaled to match, so labels keep the image's own
        size. Smaller diameters, and ``None`` (default), segment at the image's own
        scale. ``"auto"`` estimates the diameter with the segmenter's size model
        (:mod:`napari_nanogan.sizing`) and resizes only when the estimate is at least
        ``AUTO_MIN_RATIO`` times the model's diameter, since estimates are rough. A specimen
        under ``MIN_ESTIMATE_SIDE`` (32) px on a side is segmented at its own scale.

    Returns
    -------
    SegmentationResult
        ``labels`` of exactly the image's height and width.
    """
    grey = as_grey(image)
    if min(grey.shape) < MIN_SIDE:
        raise ValueError(f"image of shape {grey.shape} is too small to segment (each side needs {MIN_SIDE}+ pixels)")
    if np.issubdtype(grey.dtype, np.floating) and not np.isfinite(grey).all():
        raise ValueError("the image contains NaN or infinite values; replace them before segmenting")
    bar = detect_info_bar(grey) if info_bar is True else (info_bar or None)
    rows = bar.specimen_rows if bar is not None else slice(None)
    if isinstance(diameter, str) and diameter != "auto":
        raise ValueError(f'particle diameter must be a number of pixels, "auto" or None, not {diameter!r}')
    auto = segmenter if isinstance(segmenter, AutoSegmenter) else None
    sizer = auto.general if auto is not None else segmenter  # estimates the diameter; sets the scale
    if isinstance(diameter, str):
        if min(grey[rows].shape) < MIN_ESTIMATE_SIDE:
            diameter = None  # too small to estimate, and to hold particles that need a smaller image
        else:
            diameter = estimate_diameter(grey, sizer, rows)
        estimate_ok = diameter is not None and diameter >= AUTO_MIN_RATIO * sizer.diameter_px
        factor = resize_factor(diameter, sizer.diameter_px) if estimate_ok else 1.0
    else:
        factor = resize_factor(diameter, sizer.diameter_px)
    candidates = [segmenter]
    if auto is not None:
        # at the scale the networks will see: `general` is trained for particles near its diameter
        first = polarity_pass(grey, auto.general, rows, factor)
        candidates = [auto.bright, auto.general] if first.polarity > 0 else [auto.general]
    for segmenter in candidates:
        if factor == 1.0:
            fg, interior = yield from probability_steps(grey, segmenter, tile=tile, overlap=overlap, specimen_rows=rows)
        else:
            fg, interior = yield from _resized_probability_steps(grey, segmenter, factor, rows, tile=tile, overlap=overlap)
        if segmenter is candidates[-1] or first.agreement(fg, rows) >= auto.min_agreement:
            break
    config = postprocess or segmenter.postprocess
    if factor != 1.0:
        config = scale_postprocess(config, 1.0 / factor)
    if bar is not None:
        fg[bar.start : bar.stop] = 0
        interior[bar.start : bar.stop] = 0
    labels = instances_from_probabilities(fg, interior, config)
    return SegmentationResult(labels=labels, foreground=fg, interior=interior, info_bar=bar,
                              diameter_px=None if diameter is None else float(diameter), model=segmenter.name)


def resize_factor(diameter: float | None, model_diameter: float = MODEL_DIAMETER_PX) -> float:
    """How much :func:`segment_steps` resizes an image whose particles are ``diameter`` px across.

    Images are only made smaller: 1.0 for ``None``, for a diameter at most 5 % above the
    model's, and for any smaller diameter. Factors under ``MIN_RESIZE`` are raised to it,
    with a warning; a diameter that is not a positive number raises ``ValueError``.
    """
    if diameter is None:
        return 1.0
    try:
        diameter = float(diameter)
    except (TypeError, ValueError):
        raise ValueError(f"particle diameter must be a number of pixels, not {diameter!r}") from None
    if not np.isfinite(diameter) or diameter <= 0:
        raise ValueError(f"particle diameter must be a positive number of pixels, not {diameter}")
    factor = min(model_diameter / diameter, 1.0)
    if factor < MIN_RESIZE:
        import warnings

        warnings.warn(
            f"a particle diameter of {diameter:g} px is more than {1 / MIN_RESIZE:g} times this model's "
            f"{model_diameter:g} px; the image is made {1 / MIN_RESIZE:g} times smaller, no more",
            stacklevel=3)
        factor = MIN_RESIZE
    return 1.0 if abs(factor - 1.0) < 0.05 else factor


def scale_postprocess(config: PostprocessConfig, scale: float) -> PostprocessConfig:
    """The post-processing distances and areas of ``config`` for an image ``scale`` times larger."""
    import dataclasses

    return dataclasses.replace(
        config,
        min_distance=max(1, round(config.min_distance * scale)),
        smooth_sigma=config.smooth_sigma * scale,
        min_area=max(1, round(config.min_area * scale**2)),
        min_seed_area=max(1, round(config.min_seed_area * scale**2)),
    )


def _resized_probability_steps(grey, segmenter, factor, rows, *, tile, overlap):
    """:func:`probability_steps` on the specimen rows resized by ``factor``, resized back."""
    from skimage.transform import resize

    h, w = grey.shape
    start, stop, _ = rows.indices(h)
    specimen = grey[start:stop]
    shape = (round(specimen.shape[0] * factor), round(specimen.shape[1] * factor))
    if min(shape) < MIN_SIDE:
        raise ValueError(f"the image would be {shape[0]} x {shape[1]} px at this particle diameter: too small to segment")
    small = resize(specimen.astype(np.float32), shape, order=1, anti_aliasing=factor < 1, preserve_range=True)
    fg, interior = yield from probability_steps(small, segmenter, tile=tile, overlap=overlap)
    out = np.zeros((2, h, w), np.uint8)
    for k, prob in enumerate((fg, interior)):
        back = resize(prob.astype(np.float32), specimen.shape, order=1, preserve_range=True)
        out[k, start:stop] = np.clip(np.round(back), 0, 255).astype(np.uint8)
    return out[0], out[1]


def segment(
    image: np.ndarray,
    segmenter: Segmenter | AutoSegmenter,
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> SegmentationResult:
    """Segment a 2D EM image into particles (see :func:`segment_steps` for the options).

    ``progress(done, total)`` is called after each tile; ``should_stop()`` is polled
    after each tile and raises :class:`InterruptedError` when it returns True.
    """
    steps = segment_steps(image, segmenter, **options)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)
        if should_stop is not None and should_stop():
            steps.close()
            raise InterruptedError("segmentation cancelled")
