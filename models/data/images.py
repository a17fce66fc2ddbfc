"""A folder of PNG/JPEG images as a data set, decoded on demand with Pillow.

The layout is torchvision's ``ImageFolder``: each sub-folder of the root is a class, named by
the folder, numbered in sorted order, holding its images (searched recursively, sorted; symbolic
links to folders are not followed, so a link loop cannot hang the scan); images directly in the
root are then ignored, as ImageFolder ignores them. A root without sub-folders is one unlabelled
set of the images in it. Only ``.png``, ``.jpg`` and ``.jpeg`` files count (any case).

Every image must have one size and one channel count: grey (Pillow modes ``1``, ``L``) or RGB
(``RGB``, and palette images ``P``, converted to RGB). Opening the folder reads each file's
header only (size and mode, no pixels); the first file that differs from the first image is
named with both sizes or channel counts. Pixels are decoded when rows are read, a run of files
at a time (``Dataset.read`` groups the rows it is asked for), as uint8 ``C x H x W``, scaled by
1/255. A file that cannot be decoded then raises ``DataError`` naming it. No file is written.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from models.data.dataset import MIN_SAMPLES, Dataset, check_max_samples
from models.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg")
_GREY, _RGB = ("1", "L"), ("RGB", "P")


def is_image_folder(spec: str) -> bool:
    """True when the spec is an existing directory (a folder of images)."""
    return os.path.isdir(spec)


def _is_image(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS)


def _walk(folder: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files) if _is_image(f))
    return found


def scan(folder: str) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """The image files in order, their class numbers and the class names (None without classes)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed: {exc.strerror or exc}") from None
    classes = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    if not classes:
        files = [e.path for e in entries if e.is_file() and _is_image(e.name)]
        if not files:
            raise DataError(f"{folder}: is a directory with no PNG or JPEG images in it")
        return files, None, None
    files, labels = [], []
    for k, name in enumerate(classes):
        got = _walk(os.path.join(folder, name))
        if not got:
            raise DataError(f"{os.path.join(folder, name)}: class folder without PNG or JPEG images")
        files += got
        labels += [k] * len(got)
    return files, np.asarray(labels, dtype=np.int64), classes


def _header(path: str) -> tuple[tuple[int, int], int]:
    """(width, height) and the channel count of one image, from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            size, mode = im.size, im.mode
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable PNG or JPEG image ({_first(exc)})") from None
    if mode in _GREY:
        return size, 1
    if mode in _RGB:
        return size, 3
    why = "has an alpha channel" if "A" in mode else "is not 8-bit grey or RGB"
    raise DataError(f"{path}: image mode {mode} {why}; grey or RGB images are needed")


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _channels(c: int) -> str:
    return "grey (1 channel)" if c == 1 else "RGB (3 channels)"


class _ImageRows:
    """A row source for ``Dataset``: files ``start:stop`` decoded to uint8 ``[m, C, H, W]``."""

    def __init__(self, files: list[str], sample_shape: tuple[int, int, int]) -> None:
        self.files, self.n = files, len(files)
        self.sample_shape, self.stored_dtype = sample_shape, np.dtype(np.uint8)

    def read(self, start: int, stop: int) -> np.ndarray:
        from PIL import Image

        c, h, w = self.sample_shape
        out = np.empty((stop - start, c, h, w), dtype=np.uint8)
        for i, path in enumerate(self.files[start:stop]):
            try:
                with Image.open(path) as im:
                    px = np.asarray(im.convert("L" if c == 1 else "RGB"))
            except (OSError, ValueError) as exc:
                raise DataError(f"{path}: cannot be decoded ({_first(exc)})") from None
            if px.shape[:2] != (h, w):
                raise DataError(f"{path}: is {px.shape[1]}x{px.shape[0]} now, not {w}x{h}")
            out[i] = px[None] if c == 1 else px.transpose(2, 0, 1)
        return out

    def close(self) -> None:
        pass


def open_image_folder(folder: str, labels: str | None = None, *,
                      max_samples: int | None = None) -> Dataset:
    """Open a folder of images as a data set (see the module docstring).

    ``max_samples`` keeps that many images evenly spaced through the sorted list (so every class
    keeps its share), not the first ones.
    """
    check_max_samples(max_samples)
    if labels:
        raise DataError(f"{labels}: an image folder's labels are its sub-folders; drop --labels")
    files, classes, names = scan(folder)
    if len(files) < MIN_SAMPLES:
        raise DataError(f"{folder}: {len(files)} images; at least {MIN_SAMPLES} are needed")
    if max_samples is not None and max_samples < len(files):
        keep = np.unique(np.linspace(0, len(files) - 1, max_samples).round().astype(np.int64))
        files = [files[i] for i in keep]
        classes = None if classes is None else classes[keep]
    size0, c0 = _header(files[0])
    for path in files[1:]:
        size, c = _header(path)
        if c != c0:
            raise DataError(f"{path}: is {_channels(c)} but {files[0]} is {_channels(c0)}; all "
                            "images need one channel count")
        if size != size0:
            raise DataError(f"{path}: is {size[0]}x{size[1]} but {files[0]} is "
                            f"{size0[0]}x{size0[1]}; all images must be one size")
    shape = (c0, size0[1], size0[0])
    info: dict[str, Any] = {"source": "images", "folder": os.path.abspath(folder),
                            "spec": os.path.abspath(folder),  # loads again from any directory
                            "n_files": len(files), "classes": names, "max_samples": max_samples,
                            "storage": "decoded on demand"}
    return Dataset(_ImageRows(files, shape), name=folder, scaling="uint8/255", labels=classes,
                   label_names=names, spec=folder, info=info)

