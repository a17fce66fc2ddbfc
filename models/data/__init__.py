"""Data: the Dataset type and load_dataset for every data spec (MNIST, shapes, HDF5 files)."""

from models.data.dataset import (
    MIN_SAMPLES,
    MNIST_TEST,
    MNIST_TRAIN,
    SHAPE_NAMES,
    Dataset,
    load_dataset,
    load_mnist,
    make_shapes,
    open_hdf5,
    parse_hdf5_spec,
    read_idx,
    split_indices,
)

__all__ = [
    "MIN_SAMPLES", "MNIST_TEST", "MNIST_TRAIN", "SHAPE_NAMES", "Dataset", "load_dataset", "load_mnist",
    "make_shapes", "open_hdf5", "parse_hdf5_spec", "read_idx", "split_indices",
]
