"""From a data spec to a Dataset: ``mnist``, ``shapes``, ``shapes:32`` or ``FILE.h5[:array]``."""

from __future__ import annotations

from models.data.dataset import Dataset, check_max_samples
from models.data.hdf5 import open_hdf5
from models.data.mnist import load_mnist
from models.data.shapes import SHAPES_N, SHAPES_SIZES, make_shapes
from models.errors import DataError


def load_dataset(
    spec: str,
    labels: str | None = None,
    max_samples: int | None = None,
    *,
    memory_limit: int | None = None,
) -> Dataset:
    """Open a data set by its spec.

    Parameters
    ----------
    spec
        ``"mnist"``, ``"shapes"`` (64x64), ``"shapes:32"`` / ``"shapes:64"``, or
        ``"FILE.h5"`` / ``"FILE.h5:group/array"``, ``"FILE.npy"``, ``"FILE.npz[:array]"``, or a
        folder of PNG/JPEG images (sub-folders name the labels).
    labels
        An integer label array: in the same HDF5 or .npz file, or a .npy file (the built-in sets
        and image folders carry their own labels).
    max_samples
        Keep only the first ``max_samples`` rows (MNIST: the first rows of its training and test
        parts in proportion 6:1, so the predefined validation split stays valid).
    memory_limit
        HDF5 only: load the array whole if it takes at most this many bytes in memory
        (default ``IN_MEMORY_LIMIT``); else read it from disk in blocks.
    """
    spec = str(spec).strip()
    if not spec:
        raise DataError(
            "no data set given: use mnist, shapes, shapes:32, FILE.h5[:array], FILE.npy, "
            "FILE.npz[:array] or an image folder"
        )
    check_max_samples(max_samples)
    low = spec.lower()
    builtin = low == "mnist" or low == "shapes" or low.startswith("shapes:")
    if builtin and labels:
        raise DataError(
            f"{spec}: a labels array applies to HDF5 files only; built-in sets have their own"
        )
    if low == "mnist":
        return load_mnist(max_samples=max_samples)
    if builtin:
        size_text = low.partition(":")[2] or "64"
        if size_text not in {str(s) for s in SHAPES_SIZES}:
            raise DataError(f"{spec}: the shapes set comes as shapes:32 or shapes:64 (the default)")
        n = SHAPES_N if max_samples is None else min(max_samples, SHAPES_N)
        return make_shapes(n=n, size=int(size_text), seed=0)
    from models.data import arrays, images  # NumPy files and image folders

    if arrays.is_array_spec(spec):
        return arrays.open_arrays(spec, labels, max_samples=max_samples, memory_limit=memory_limit)
    if images.is_image_folder(spec):
        return images.open_image_folder(spec, labels, max_samples=max_samples)
    return open_hdf5(spec, labels, max_samples=max_samples, memory_limit=memory_limit)
