"""Texture diagnostics and the noise post-processings measured and not kept (bench only).

``bench.synthesis_quality`` uses them for its ``spectral`` and ``snoise`` steps
(docs/benchmarks.md, "Synthesis"). Neither lowered FID below the product's white noise
(``napari_nanogan.synthesis.finishing.add_sem_noise``), so they stay out of the package:

- ``spectral``: Gaussian noise with the power spectrum the synthetic images lack
  (:func:`missing_spectrum`, :func:`shaped_noise`): FID 157.2 vs 123.0.
- ``snoise``: noise whose level follows the brightness, as SEM shot noise does
  (:func:`signal_noise_table`, :func:`add_signal_noise`): FID 134.0 white, 169.6
  correlated over 0.7 px, vs 123.0.
"""

from __future__ import annotations

import numpy as np

from napari_nanogan.synthesis.finishing import noise_level


#: Grey-level bins (of the 3-px local mean) over which :func:`noise_profile` measures noise.
NOISE_BINS = (0, 20, 40, 60, 90, 130, 180, 256)


def noise_profile(images, bins=NOISE_BINS, *, min_pixels: int = 1000) -> np.ndarray:
    """Noise level per brightness: [len(bins) - 1] median over images of the robust sd of the residual.

    The residual is :func:`noise_level`'s (image minus its 1-px blur); pixels are binned
    by the image's 3-px Gaussian local mean. SEM noise grows with the signal (shot
    noise): on the BAM training images 1.6 grey levels on the substrate (local mean
    under 20) and 8-9 on the particles. Bins with under ``min_pixels`` pixels in every
    image are NaN.
    """
    from scipy import ndimage as ndi

    per_bin = [[] for _ in range(len(bins) - 1)]
    for image in images:
        image = np.asarray(image, np.float32)
        residual = image - ndi.gaussian_filter(image, 1.0)
        index = np.digitize(ndi.gaussian_filter(image, 3.0), bins) - 1
        for k, values in enumerate(per_bin):
            r = residual[index == k]
            if r.size >= min_pixels:
                values.append(1.4826 * np.median(np.abs(r - np.median(r))))
    return np.array([np.median(v) if v else np.nan for v in per_bin])


def signal_noise_table(real_images, synthetic_images, bins=NOISE_BINS) -> tuple:
    """``((grey level, noise sd), ...)``: the noise :func:`add_signal_noise` adds, fitted on pairs.

    Per brightness bin (:func:`noise_profile`), the residual the synthetic images lack,
    ``sqrt(max(real^2 - synthetic^2, 0))``, at the bin's centre. Bins missing on either
    side are left out.
    """
    real, synth = noise_profile(real_images, bins), noise_profile(synthetic_images, bins)
    centres = (np.asarray(bins[:-1], float) + np.asarray(bins[1:], float)) / 2
    ok = np.isfinite(real) & np.isfinite(synth)
    if not ok.any():
        raise ValueError("no brightness range has enough pixels in both the real and the synthetic images")
    extra = np.sqrt(np.maximum(real[ok] ** 2 - synth[ok] ** 2, 0.0))
    return tuple((float(c), float(e)) for c, e in zip(centres[ok], extra))


def add_signal_noise(image: np.ndarray, table, correlation: float, seed: int) -> np.ndarray:
    """``image`` (uint8) plus signal-dependent Gaussian noise (:func:`signal_noise_table`).

    The noise field is white noise blurred by ``correlation`` px (the detector's
    bandwidth; 0 keeps it white), scaled so its :func:`noise_level` is 1, then
    multiplied per pixel by the table's sd at the image's 3-px local mean
    (linear interpolation, constant beyond the ends).
    """
    from scipy import ndimage as ndi

    levels, sds = np.asarray(table, np.float32).T
    field = np.random.default_rng(seed).normal(0.0, 1.0, image.shape).astype(np.float32)
    if correlation > 0:
        field = ndi.gaussian_filter(field, correlation)
    field /= max(noise_level(field), 1e-6)
    local = ndi.gaussian_filter(image.astype(np.float32), 3.0)
    noisy = image.astype(np.float32) + field * np.interp(local, levels, sds).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


#: Side of the crops :func:`radial_psd` averages; its profiles are sampled at k / PSD_CROP cycles per pixel.
PSD_CROP = 128


def radial_psd(images, *, n_crops: int = 256, seed: int = 0) -> np.ndarray:
    """Radially averaged power spectral density of grey images (grey levels² per unit frequency area).

    Averages the periodograms of ``n_crops`` Hann-windowed ``PSD_CROP``-px crops drawn
    at seeded random positions (images smaller than a crop are skipped), each minus its
    mean. Entry ``k`` is the density at ``k / PSD_CROP`` cycles per pixel, up to the
    corner frequency; white noise of variance v gives v everywhere.
    """
    images = [np.asarray(im, np.float32) for im in images if min(np.shape(im)) >= PSD_CROP]
    if not images:
        raise ValueError(f"radial_psd needs images of at least {PSD_CROP} x {PSD_CROP} px")
    s = PSD_CROP
    window = np.outer(np.hanning(s), np.hanning(s)).astype(np.float32)
    rng = np.random.default_rng(seed)
    acc = np.zeros((s, s))
    for k in range(n_crops):
        im = images[k % len(images)]
        y, x = rng.integers(0, im.shape[0] - s + 1), rng.integers(0, im.shape[1] - s + 1)
        crop = im[y : y + s, x : x + s]
        acc += np.abs(np.fft.fft2((crop - crop.mean()) * window)) ** 2
    density = np.fft.fftshift(acc / n_crops / (window**2).sum())
    yy, xx = np.mgrid[-s // 2 : s // 2, -s // 2 : s // 2]
    r = np.round(np.hypot(yy, xx)).astype(int).ravel()
    return np.bincount(r, density.ravel()) / np.maximum(np.bincount(r), 1)


def shaped_noise(shape: tuple, psd: np.ndarray | tuple, seed: int) -> np.ndarray:
    """Gaussian noise (float32) of the given radial power spectral density (see :func:`radial_psd`).

    White noise filtered in the Fourier domain by the square root of ``psd``,
    interpolated at each frequency's radius, so the noise's periodogram follows
    ``psd`` at any image size.
    """
    psd = np.asarray(psd, np.float64)
    h, w = shape
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    radius = np.hypot(fy, fx) * PSD_CROP
    amplitude = np.sqrt(np.interp(radius, np.arange(len(psd)), np.maximum(psd, 0), right=0.0))
    white = np.random.default_rng(seed).standard_normal((h, w))
    return np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(h, w)).astype(np.float32)


def missing_spectrum(real_images, synthetic_images) -> np.ndarray:
    """The power synthetic images lack at each spatial frequency (:func:`radial_psd`, real
    minus synthetic, floored at 0): the texture and detector noise the generator does not
    make. A diagnostic (``python -m bench.synthesis_quality --post spectral``); noise of this
    spectrum did not make the images more realistic, so synthesis does not add it.
    """
    return np.maximum(radial_psd(real_images) - radial_psd(synthetic_images), 0.0)
