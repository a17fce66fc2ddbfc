"""Batch sources: a run's rows on the device, handed to the model as float32 inputs.

In-memory data go to the device once (as uint8 when stored as bytes, or as a binary uint8 mask for
threshold binarisation) and are indexed by a ``torch.randperm`` per epoch, with no per-sample
loader. Out-of-core data are read in shuffled blocks (``Dataset.iter_batches``) and moved batch by
batch. For a Bernoulli likelihood the inputs are binarised here: afresh each batch (dynamic), or
at 0.5 (threshold); the validation set once, by ``models.data.preprocessing``'s rule.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from models.config import RunConfig
from models.data import Dataset, bernoulli_bytes, binarize_validation
from models.data.preprocessing import check_range
from models.errors import DataError
from models.latent import discrete
from models.nn.likelihoods import dequantize_bytes

_READ_CHUNK = 8192  # rows converted at a time when moving a data set to the device
_BINARIZE_STREAM = 1  # with the run's seed, seeds the bits of dynamic binarisation on the CPU
_RANGE_HINT = " (use --likelihood gaussian)"


class TrainingBatches:
    """Minibatches of a data set's training rows, as model inputs on ``device``.

    ``generator`` is the run's device generator (shared with the model's noise, so a seed fixes
    the whole run); it draws the permutations and, on CUDA or for float data, the bits of dynamic
    binarisation. In-memory data are moved to the device here, so unusable data fail at once.
    """

    def __init__(
        self,
        data: Dataset,
        indices: np.ndarray,
        config: RunConfig,
        device: torch.device,
        generator: torch.Generator,
        dequantize: bool = False,
    ) -> None:
        self.data = data
        self.indices = indices
        self.shape = tuple(config.model.data_shape)
        self.batch_size = config.train.batch_size
        self.seed = config.train.seed
        self.likelihood = config.model.likelihood
        self.binary = self.likelihood == "bernoulli"
        self.dynamic = self.binary and config.train.binarize == "dynamic"
        self.dequantize = dequantize  # 8-bit data under a Gaussian: (k + u) / 256 each batch
        self.device = device
        self._gen = generator
        self._bits = np.random.PCG64([self.seed, _BINARIZE_STREAM])  # see bernoulli_bytes
        # what _on_device holds: "bytes" (uint8 pixels), "binary" (0/1 mask) or "float"
        self.kind = "float"
        self._on_device: torch.Tensor | None = None
        if data.in_memory:
            self._upload()

    def _upload(self) -> None:
        data, idx = self.data, self.indices
        as_bytes = data.scaling == "uint8/255"
        threshold = self.binary and not self.dynamic
        dtype = torch.uint8 if (as_bytes or threshold) else torch.float32
        out = torch.empty((len(idx), *self.shape), dtype=dtype, device=self.device)
        for s in range(0, len(idx), _READ_CHUNK):
            x = data.read(idx[s : s + _READ_CHUNK])
            if not as_bytes:
                check_range(x, self.likelihood, data.name, "training rows", _RANGE_HINT)
            x = x.reshape(len(x), *self.shape)
            if threshold:
                x = (x > 0.5).astype(np.uint8)
            elif as_bytes:
                x = np.rint(x * 255.0).astype(np.uint8)
            out[s : s + len(x)] = torch.from_numpy(x).to(self.device)
        self._on_device = out
        self.kind = "binary" if threshold else ("bytes" if as_bytes else "float")

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, int]]:
        """One epoch's ``(model input batch, rows in it)``: every training row once."""
        bs, n = self.batch_size, len(self.indices)
        if self._on_device is not None:
            perm = torch.randperm(n, device=self.device, generator=self._gen)
            for s in range(0, n, bs):
                idx = perm[s : s + bs]
                yield self._model_input(self._on_device.index_select(0, idx)), len(idx)
            return
        rng = np.random.default_rng([self.seed, epoch])
        for xb in self.data.iter_batches(self.indices, bs, rng):
            check_range(xb, self.likelihood, self.data.name, "training rows", _RANGE_HINT)
            x = torch.from_numpy(np.ascontiguousarray(xb).reshape(len(xb), *self.shape))
            yield self._model_input(x.to(self.device, non_blocking=True)), len(xb)

    def _model_input(self, xb: torch.Tensor) -> torch.Tensor:
        """A stored training batch -> float32 model input (binarised for Bernoulli)."""
        if self.kind == "binary":
            return xb.float()
        if self.dynamic:
            # x ~ Bernoulli(pixel), afresh each batch. For bytes k on the CPU: 24 random bits
            # a pixel, compared in numpy (half the time of torch's generator and its threaded
            # element-wise ops at this size). On CUDA: P(r < k) = k/255 with r uniform on
            # {0, ..., 254}, integer draws being several times faster than floats.
            if self.kind == "bytes":
                if xb.device.type == "cpu":
                    # bool -> float32 is ~4x slower in torch than uint8 -> float32: via uint8
                    x = bernoulli_bytes(xb.numpy(), self._bits).view(np.uint8)
                    return torch.from_numpy(x).float()
                r = torch.randint(0, 255, xb.shape, generator=self._gen, dtype=torch.uint8, device=xb.device)
                return (r < xb).float()
            return (torch.rand(xb.shape, generator=self._gen, device=xb.device) < xb).float()
        if self.dequantize:
            return dequantize_bytes(xb if self.kind == "bytes" else (xb * 255.0).round_(), self._gen)
        x = xb.float().div_(255.0) if self.kind == "bytes" else xb
        if self.binary:  # threshold
            return (x > 0.5).float()
        return x


def validation_array(
    val_x: np.ndarray | Dataset | torch.Tensor, config: RunConfig, source: str
) -> np.ndarray:
    """Validation rows as float32 ``[N, *data_shape]``, checked: they fit the model, are finite,
    and lie in [0, 1] for a Bernoulli likelihood. ``source`` names the data set in errors."""
    if isinstance(val_x, Dataset):
        arr = val_x.read(np.arange(len(val_x)))
    elif isinstance(val_x, torch.Tensor):
        arr = val_x.detach().cpu().numpy()
    else:
        arr = np.asarray(val_x)
    arr = arr.astype(np.float32, copy=False)
    mc = config.model
    if arr.ndim < 1 or (len(arr) and arr[0].size != mc.data_dim):
        raise DataError(
            f"{source}: validation rows of shape {arr.shape[1:]} do not fit the model's data "
            f"shape {mc.data_shape}"
        )
    arr = arr.reshape(len(arr), *mc.data_shape)
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{source}: the validation rows hold NaN or infinite values")
    check_range(arr, mc.likelihood, source, "validation rows", _RANGE_HINT)
    return arr


def validation_tensor(
    val_raw: np.ndarray, config: RunConfig, device: torch.device, dequantize: bool = False
) -> torch.Tensor:
    """The validation rows on the device as the model scores them: binarised once for a
    Bernoulli likelihood (uint8 0/1), dequantised once with the evaluation seed for 8-bit data
    under a Gaussian, float32 otherwise."""
    x = val_raw
    if config.model.likelihood == "bernoulli":
        x = binarize_validation(x, config.train.binarize).astype(np.uint8)
    elif dequantize:
        x = discrete.dequantize_uint8(discrete.unit_to_bytes(x), discrete.EVAL_DEQUANTIZE_SEED)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)
