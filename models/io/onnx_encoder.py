"""An exported encoder run by onnxruntime alone (no torch): x -> (mu, logvar)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from models.errors import ModelFileError
from models.io.onnx_checks import RunTimeout, run_bounded, run_budget
from models.io.onnx_session import (
    _FLOAT_TYPES,
    _as_array,
    _dims,
    _infos,
    _read,
    _session,
    _short,
    _signature,
    parse_metadata,
)


class OnnxEncoder:
    """An exported encoder x [N, *data_shape] -> (mu, logvar), each [N, latent_dim].

    ``encode`` returns the posterior's parameters, never a sample. The input shape is read from
    the graph (or our ``data_shape`` metadata); flat rows [N, prod(data_shape)] are reshaped.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        self.path, data, summary = _read(path)
        self._session = _session(self.path, data, threads)
        self._model_bytes = len(data)
        self.metadata = parse_metadata(summary.metadata)
        inputs, outputs = _signature(self.path, self._session)
        if len(inputs) != 1 or inputs[0].type not in _FLOAT_TYPES:
            sig = ", ".join(i.describe() for i in _infos(inputs))
            raise ModelFileError(f"{self.path}: an encoder takes one float input; this has ({sig})")
        if len(outputs) != 2:
            raise ModelFileError(
                f"{self.path}: an encoder has two outputs (mu, logvar); this has {len(outputs)}"
            )
        shape = _dims(inputs[0].shape or [])
        meta_shape = self.metadata.get("data_shape")
        if len(shape) >= 2 and all(isinstance(s, int) for s in shape[1:]):
            self.data_shape: tuple[int, ...] = tuple(int(s) for s in shape[1:])
        elif isinstance(meta_shape, list):
            self.data_shape = tuple(int(s) for s in meta_shape)
        else:
            raise ModelFileError(f"{self.path}: the encoder's input shape is not fixed in the graph")
        out_shape = _dims(outputs[0].shape or [])
        meta_d = self.metadata.get("latent_dim")
        if len(out_shape) == 2 and isinstance(out_shape[1], int):
            self.latent_dim = int(out_shape[1])
        elif isinstance(meta_d, int):
            self.latent_dim = meta_d
        else:
            raise ModelFileError(f"{self.path}: the encoder's latent size is not fixed in the graph")
        self._in_name = inputs[0].name
        self._in_dtype = _FLOAT_TYPES[inputs[0].type]
        self._out_names = [o.name for o in outputs]

    def encode(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) of q(z|x), each float32 [N, latent_dim]; x [N, *data_shape] or flat."""
        arr = _as_array(self.path, x, self._in_dtype,
                        f"the encoder takes samples of shape {list(self.data_shape)} as numbers")
        size = int(np.prod(self.data_shape))
        if arr.ndim == 0 or arr.size % size or (arr.ndim > 1 and int(np.prod(arr.shape[1:])) != size):
            raise ModelFileError(
                f"{self.path}: the encoder takes samples of shape {list(self.data_shape)}; "
                f"got {list(arr.shape)}"
            )
        arr = np.ascontiguousarray(arr.reshape(-1, *self.data_shape))
        try:
            mu, logvar = run_bounded(self._session, self._out_names, {self._in_name: arr},
                                     run_budget(arr.shape[0], self._model_bytes))
        except RunTimeout as exc:
            raise ModelFileError(
                f"{self.path}: encoding {arr.shape[0]} samples was stopped after {exc.seconds:.0f} s, "
                "far longer than a model of this size needs"
            ) from None
        except Exception as exc:
            raise ModelFileError(f"{self.path}: onnxruntime failed to encode ({_short(exc)})") from None
        return mu.astype(np.float32, copy=False), logvar.astype(np.float32, copy=False)
