"""The metadata our ONNX exports carry: what the model is (its configuration, role, likelihood),
where it came from (the run, the data set's shareable name, the producer), and the figures of its
last finished epoch, as JSON values under ``latent_explorer.`` keys (``onnx_runtime.parse_metadata``
reads them back). NaN and infinities are written as null; paths are never written.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.data.preprocessing import trained_dequantized
from models.errors import ExportError
from models.io.onnx_runtime import FORMAT_VERSION, META_PREFIX
from models.latent import discrete
from models.latent.stats import collapsed_from_activity
from models.nn.vae import VAE

Role = Literal["decoder", "encoder"]


def producer_version() -> str:
    """``latent-explorer X.Y.Z``: the installed package's version, else the source tree's."""
    try:
        return f"latent-explorer {importlib_metadata.version('latent-explorer')}"
    except importlib_metadata.PackageNotFoundError:
        pass
    try:
        with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as fh:
            return f"latent-explorer {tomllib.load(fh)['project']['version']}"
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "latent-explorer (unknown version)"


# --------------------------------------------------------------------------- metadata
def model_metadata(vae: VAE, role: Role) -> dict[str, Any]:
    """The fields a file's own model determines (these override anything passed in)."""
    cfg = vae.config
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "role": role,
        "producer": producer_version(),
        "latent_dim": int(cfg.latent_dim),
        "data_shape": [int(s) for s in cfg.data_shape],
        "likelihood": cfg.likelihood,
        "output": "probabilities" if cfg.likelihood == "bernoulli" else "means",
        "arch": cfg.arch,
        "model_config": cfg.to_dict(),
    }
    if role == "encoder":
        meta["output"] = "mu, logvar of q(z|x)"
    if cfg.likelihood == "gaussian":
        meta["obs_std"] = vae.likelihood.std
    return meta


def _last_finite_row(values: Any) -> tuple[int, np.ndarray] | None:
    arr = np.asarray(values, dtype=np.float64) if values is not None else None
    if arr is None or arr.size == 0:
        return None
    rows = arr.reshape(arr.shape[0], -1)
    for i in range(rows.shape[0] - 1, -1, -1):
        if np.isfinite(rows[i]).all():
            return i, arr[i]
    return None


def shareable_dataset_name(info: Mapping[str, Any], spec: str | None = None) -> str:
    """The data set's name as it goes into a shared file: ``"mnist"``, ``"shapes:32"``, or an
    HDF5 array as ``"FILE.h5:path/to/array"`` with the file's base name only, so the sender's
    directory layout (``/home/someone/...``) does not travel with the model."""
    file, array = info.get("file"), info.get("array")
    if info.get("source") == "hdf5" and isinstance(file, str) and isinstance(array, str) and file:
        return f"{os.path.basename(file)}:{array}"
    name = str(info.get("name") or spec or "")
    if "/" in name or os.sep in name:  # a file path anyway (a bare spec, an older run file)
        from models.data import parse_hdf5_spec

        file, array = parse_hdf5_spec(name)
        name = os.path.basename(file) + (f":{array}" if array else "")
    return name


def metadata_from_run(reader: Any) -> dict[str, Any]:
    """Run-level metadata from a :class:`models.io.runfile.RunReader`: data set, pixel scaling
    (and the display range of a model of dequantised bytes, ``discrete.display_range``) and the
    last validation ELBO, rate, distortion, KL per dimension and collapsed dimensions.

    All figures are in nats per sample, from the last epoch that has them; ``metrics_epoch`` says
    which (None and no figures when the run has not finished an epoch).
    """
    info = dict(getattr(reader, "dataset_info", None) or {})
    meta: dict[str, Any] = {
        "dataset": shareable_dataset_name(info, reader.config.train.data),
        "scaling": info.get("scaling", "none"),
        "objective": reader.config.objective.to_dict(),
        "metrics_split": "validation",
        "metrics_epoch": None,
    }
    weights_step = getattr(reader, "weights_step", None)
    if isinstance(weights_step, int | np.integer) and weights_step >= 0:
        meta["weights_step"] = int(weights_step)
    if trained_dequantized(reader):  # its means lie in the bins of (k + u) / 256, not at k / 255
        meta["display_range"] = list(discrete.display_range(True))
    if "binarize" in info or reader.config.model.likelihood == "bernoulli":
        meta["binarize"] = info.get("binarize", reader.config.train.binarize)
    epochs = reader.epochs() or {}
    elbo = _last_finite_row(epochs.get("val_elbo"))
    if elbo is not None:
        i = elbo[0]
        epoch_col = epochs.get("epoch")
        meta["metrics_epoch"] = int(np.asarray(epoch_col)[i]) if epoch_col is not None else i + 1
        meta["elbo"] = float(elbo[1])
        for key in ("rate", "distortion"):
            col = epochs.get(f"val_{key}")
            if col is not None and len(col) > i and np.isfinite(col[i]):
                meta[key] = float(col[i])
        kl = epochs.get("val_kl_per_dim")
        if kl is not None and len(kl) > i:
            meta["kl_per_dim"] = [float(v) for v in np.asarray(kl)[i]]
        act = epochs.get("activity_per_dim")
        if act is None:
            act = epochs.get("activity")
        if act is not None and len(act) > i and np.isfinite(np.asarray(act)[i]).all():
            row = np.asarray(act, dtype=np.float64)[i]
            meta["activity_per_dim"] = [float(v) for v in row]
            meta["collapsed_dims"] = collapsed_from_activity(row)
    return meta


def _json(value: Any, key: str) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, tuple):
            return list(obj)
        raise TypeError(type(obj).__name__)

    try:
        text = json.dumps(value, default=default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"metadata '{key}' cannot be written as JSON ({exc})") from None
    return text


def _clean_floats(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_clean_floats(v) for v in list(value)]
    return value


def metadata_props(vae: VAE, role: Role, metadata: Mapping[str, Any] | None) -> dict[str, str]:
    merged = dict(metadata or {})
    merged.update(model_metadata(vae, role))
    props = {}
    for key, value in merged.items():
        name = str(key).removeprefix(META_PREFIX)
        props[META_PREFIX + name] = _json(_clean_floats(value), name)
    return props
