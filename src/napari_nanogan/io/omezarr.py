"""Zarr and OME-Zarr images and labels: read a region at a time, write block by block.

Reading: a zarr array, or an OME-Zarr image (NGFF 0.4 or 0.5: a group whose
``multiscales`` metadata names its full-resolution array), opens as a :class:`ZarrPlane`,
a 2D view that reads only what is sliced and pickles as its path (so Dask workers open
it themselves), with the pixel size from the OME metadata.

Writing: :func:`create_ome_zarr` makes an OME-Zarr (NGFF 0.4, zarr format 2, which
napari's OME-Zarr reader, ome-zarr-py and Fiji open) with a resolution pyramid; written
as labels (``image-label`` metadata) it opens in napari as a Labels layer. Blocks are
written chunk-aligned, so that processes writing different blocks never share a chunk.

zarr is imported when first used (the ``distributed`` extra installs it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

#: Units of OME-Zarr axes, in nm.
_UNIT_NM = {"nanometer": 1.0, "nm": 1.0, "micrometer": 1e3, "micron": 1e3, "µm": 1e3, "um": 1e3,
            "angstrom": 0.1, "millimeter": 1e6, "mm": 1e6, "meter": 1e9, "m": 1e9, "picometer": 1e-3}
#: Smallest side (px) of the coarsest pyramid level written.
MIN_LEVEL_SIDE = 256
MAX_LEVELS = 6


def need_zarr():
    """The zarr module, or an ImportError saying which extra installs it."""
    try:
        import zarr
    except ImportError:
        from ..config import INSTALL_DISTRIBUTED

        raise ImportError(f"reading and writing zarr needs the zarr package: {INSTALL_DISTRIBUTED}") from None
    return zarr


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zarr store (a folder named ``*.zarr``, or one holding zarr metadata)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return path.suffix.lower() == ".zarr" or any((path / f).exists() for f in (".zarray", ".zgroup", "zarr.json"))


def _multiscales(attrs: dict) -> list | None:
    return attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")


def _pixel_size(multiscale: dict) -> float | None:
    """Pixel size (nm) of the full-resolution level, from its axes' units and scale (x axis)."""
    axes = multiscale.get("axes") or []
    names = [a.get("name") if isinstance(a, dict) else a for a in axes]
    units = [a.get("unit") if isinstance(a, dict) else None for a in axes]
    if "x" not in names:
        return None
    k = names.index("x")
    to_nm = _UNIT_NM.get(str(units[k]).lower()) if units[k] else None
    if to_nm is None:
        return None
    scale = 1.0
    transforms = list(multiscale["datasets"][0].get("coordinateTransformations", []))
    transforms += list(multiscale.get("coordinateTransformations", []))
    for t in transforms:
        if t.get("type") == "scale" and len(t.get("scale", [])) == len(axes):
            scale *= float(t["scale"][k])
    return scale * to_nm if scale > 0 else None


class ZarrPlane:
    """A 2D view of a zarr array (leading axes of size 1 dropped) that reads only what is sliced.

    Pickles as (path, dataset): a Dask worker opens the store itself, on first use.
    ``np.asarray(plane)`` reads it whole.
    """

    def __init__(self, path: str | os.PathLike, dataset: str = ""):
        self.path, self.dataset = str(path), dataset
        self._array = None
        array = self.array
        shape = tuple(array.shape)
        if len([n for n in shape if n != 1]) > 2 or len(shape) < 2:
            raise ValueError(f"{path}: expected a 2D grey image, got an array of shape {shape} "
                             "(stacks, channels and volumes: segment one plane at a time)")
        self._lead = len(shape) - 2
        if any(n != 1 for n in shape[: self._lead]):
            raise ValueError(f"{path}: expected a 2D grey image, got an array of shape {shape}")
        self.shape = shape[self._lead :]
        self.dtype = np.dtype(array.dtype)
        self.ndim = 2

    @property
    def array(self):
        if self._array is None:
            zarr = need_zarr()
            root = zarr.open(self.path, mode="r")
            self._array = root[self.dataset] if self.dataset else root
        return self._array

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_array"} | {"_array": None}

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        return np.asarray(self.array[(0,) * self._lead + key])

    def __array__(self, dtype=None, copy=None):
        data = self[:, :]
        return data if dtype is None else data.astype(dtype)

    def __repr__(self) -> str:
        return f"ZarrPlane({self.path!r}, {self.dataset!r}, shape={self.shape}, dtype={self.dtype})"


def open_zarr_image(path: str | os.PathLike) -> tuple[ZarrPlane, dict]:
    """A zarr array or OME-Zarr image as a lazy 2D plane, and what its metadata says.

    Returns
    -------
    plane : ZarrPlane
    meta : dict
        ``pixel_size_nm`` (float or None, from OME metadata), ``pixel_size_source``,
        ``source``, ``original_shape``, ``dataset`` (the array's path in the store).
    """
    zarr = need_zarr()
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such zarr store")
    try:
        root = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise ValueError(f"{path}: cannot open as zarr ({type(exc).__name__}: {exc})") from None
    dataset, pixel = "", None
    if not hasattr(root, "shape"):  # a group: an OME-Zarr image, or a group holding one array
        multiscales = _multiscales(dict(root.attrs))
        if multiscales:
            dataset = multiscales[0]["datasets"][0]["path"]
            pixel = _pixel_size(multiscales[0])
        else:
            arrays = [name for name, _ in root.arrays()]
            if len(arrays) != 1:
                raise ValueError(f"{path}: a zarr group without OME multiscales metadata; give the array's path "
                                 f"({', '.join(arrays) or 'it holds none'})")
            dataset = arrays[0]
    plane = ZarrPlane(path, dataset)
    meta = {"pixel_size_nm": pixel, "pixel_size_source": "OME-Zarr multiscales" if pixel else None,
            "source": str(path), "original_shape": tuple(plane.array.shape), "dataset": dataset}
    return plane, meta


def pyramid_levels(shape: tuple[int, int], chunk: int) -> int:
    """How many resolution levels (halving each time) an image of ``shape`` chunked by ``chunk`` gets."""
    levels = 1
    while levels < MAX_LEVELS and min(shape) >> levels >= MIN_LEVEL_SIDE and chunk >> levels >= 32 \
            and chunk % (1 << levels) == 0:
        levels += 1
    return levels


def _open_group(path: str, mode: str):
    zarr = need_zarr()
    try:
        return zarr.open_group(path, mode=mode, zarr_format=2)
    except TypeError:  # zarr 2: format 2 is its only one
        return zarr.open_group(path, mode=mode)


def create_array(group, name: str, shape, chunks, dtype):
    create = getattr(group, "create_array", None) or group.create_dataset
    return create(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0)  # zarr 3 and 2 name it differently


class OmeZarrWriter:
    """An OME-Zarr image (or labels) being written block by block, with its resolution pyramid.

    ``writer[core] = data`` writes the full-resolution level only; :meth:`write` writes
    every level (``data[::2**k, ::2**k]``, nearest neighbour: labels stay labels). Blocks
    must start on multiples of ``chunk`` (then they write whole chunks of every level).
    """

    def __init__(self, path: str | os.PathLike, mode: str = "r+"):
        self.path = Path(path)
        self.group = _open_group(str(self.path), mode)
        multiscales = _multiscales(dict(self.group.attrs))
        self.levels = [self.group[d["path"]] for d in multiscales[0]["datasets"]]
        self.shape = tuple(self.levels[0].shape)
        self.dtype = np.dtype(self.levels[0].dtype)

    def __getitem__(self, key):
        return np.asarray(self.levels[0][key])

    def __setitem__(self, key, data):
        self.levels[0][key] = data

    def write(self, key: tuple[slice, slice], data: np.ndarray) -> None:
        for k, level in enumerate(self.levels):
            f = 1 << k
            ys, xs = key
            level[ys.start // f : -(-ys.stop // f), xs.start // f : -(-xs.stop // f)] = data[::f, ::f]

    @property
    def attrs(self):
        return self.group.attrs


def create_ome_zarr(path: str | os.PathLike, shape: tuple[int, int], dtype, *, chunk: int = 1024,
                    pixel_size_nm: float | None = None, labels: bool = False, name: str | None = None,
                    levels: int | None = None, overwrite: bool = False) -> OmeZarrWriter:
    """Create an empty 2D OME-Zarr image (NGFF 0.4) with a resolution pyramid; returns its writer.

    Level ``k`` (array ``"k"``) is ``2**k`` times smaller, chunked ``chunk >> k``.
    ``labels``: an OME-Zarr label image (``image-label`` metadata): napari opens it
    as a Labels layer. The pixel size goes into the axes (nanometer) and scales.
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; not overwriting it")
        shutil.rmtree(path)
    h, w = (int(n) for n in shape)
    n = pyramid_levels((h, w), chunk) if levels is None else levels
    group = _open_group(str(path), "w")
    datasets = []
    for k in range(n):
        f = 1 << k
        create_array(group, str(k), (-(-h // f), -(-w // f)), (chunk // f, chunk // f), dtype)
        scale = [(pixel_size_nm or 1.0) * f] * 2
        datasets.append({"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    axes = [{"name": a, "type": "space", **({"unit": "nanometer"} if pixel_size_nm else {})} for a in ("y", "x")]
    attrs = {"multiscales": [{"version": "0.4", "name": name or path.stem, "axes": axes, "datasets": datasets,
                              "type": "nearest neighbour (every 2nd pixel)"}]}
    if labels:
        attrs["image-label"] = {"version": "0.4"}
    group.attrs.update(attrs)
    return OmeZarrWriter(path)


def write_ome_zarr(path: str | os.PathLike, image: np.ndarray, *, chunk: int = 1024, pixel_size_nm: float | None = None,
                   labels: bool = False, overwrite: bool = False) -> Path:
    """An image in memory as an OME-Zarr image (or labels), written atomically (a temporary folder, renamed)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {image.shape}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; not overwriting it")
    partial = partial_path(path)
    writer = create_ome_zarr(partial, image.shape, image.dtype, chunk=chunk, pixel_size_nm=pixel_size_nm,
                             labels=labels, overwrite=True)
    writer.write((slice(0, image.shape[0]), slice(0, image.shape[1])), image)
    replace_folder(partial, path)
    return path


def partial_path(path: str | os.PathLike) -> Path:
    """Where a zarr store is written before it is complete: ``.<name>.partial`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def replace_folder(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move a finished folder into place: the target is, at every moment, the old one whole or the new one whole."""
    source, target = Path(source), Path(target)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old)
    else:
        os.replace(source, target)


def zarr_levels(path: str | os.PathLike) -> list:
    """The resolution levels of an OME-Zarr image (or the one array of a plain zarr), full resolution first."""
    zarr = need_zarr()
    root = zarr.open(str(path), mode="r")
    if hasattr(root, "shape"):
        return [root]
    multiscales = _multiscales(dict(root.attrs))
    if not multiscales:
        raise ValueError(f"{path}: no OME multiscales metadata")
    return [root[d["path"]] for d in multiscales[0]["datasets"]]
