"""Data: the Dataset, every data spec (MNIST, shapes, HDF5 files), and preprocessing for the model."""

from models.data.dataset import MIN_SAMPLES, Dataset, split_indices
from models.data.hdf5 import ArrayInfo, list_arrays, open_hdf5, parse_hdf5_spec
from models.data.load import load_dataset
from models.data.mnist import MNIST_TEST, MNIST_TRAIN, load_mnist, read_idx
from models.data.preprocessing import (
    MAX_VAL_SAMPLES,
    VAL_BINARIZE_SEED,
    RunRows,
    bernoulli_bytes,
    binarize_validation,
    check_unit_range,
    model_ready,
    run_split,
    validation_rows,
)
from models.data.shapes import SHAPE_NAMES, make_shapes

__all__ = [
    "MAX_VAL_SAMPLES", "MIN_SAMPLES", "MNIST_TEST", "MNIST_TRAIN", "SHAPE_NAMES", "VAL_BINARIZE_SEED",
    "ArrayInfo", "Dataset", "RunRows", "bernoulli_bytes", "binarize_validation", "check_unit_range",
    "list_arrays", "load_dataset", "load_mnist", "make_shapes", "model_ready", "open_hdf5",
    "parse_hdf5_spec", "read_idx", "run_split", "split_indices", "validation_rows",
]
