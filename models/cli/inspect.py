"""``latent-explorer inspect MODEL.onnx [--json]``: signature and metadata of an ONNX file.

torch-free: it reads the file with onnxruntime (and onnx, when installed, for the opset).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from models.io.onnx_runtime import inspect_model

# Our keys, printed first and in this order; any others follow alphabetically.
_ORDER = (
    "format_version", "role", "producer", "latent_dim", "data_shape", "likelihood", "output",
    "obs_std", "scaling", "dataset", "binarize", "arch", "elbo", "rate", "distortion",
    "metrics_split", "metrics_epoch", "kl_per_dim", "activity_per_dim", "collapsed_dims",
    "weights_step", "run_file", "objective", "model_config",
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "inspect",
        help="print an ONNX file's inputs, outputs and metadata",
        description="Print an ONNX model's input/output signature and its metadata "
        "(latent_explorer.* keys decoded from JSON). Works without torch.",
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=run)
    return p


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list) and v and all(isinstance(x, float) for x in v):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def format_report(info: dict[str, Any]) -> str:
    """The human-readable text ``inspect`` prints."""
    lines = [info["path"]]
    opset = info.get("opset")
    opset_text = ", ".join(f"{k} {v}" for k, v in opset.items()) if opset else "unknown"
    lines.append(f"  producer: {info.get('producer') or 'unknown'}; opset: {opset_text}")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            shape = ", ".join("?" if d is None else str(d) for d in t["shape"])
            dtype = t["type"].removeprefix("tensor(").removesuffix(")")
            lines.append(f"  {kind[:-1]:<6}  {t['name']}: {dtype} [{shape}]")
    meta = info["metadata"]
    if not meta:
        lines.append("  metadata: none")
    else:
        lines.append("  metadata:")
        keys = [k for k in _ORDER if k in meta] + sorted(k for k in meta if k not in _ORDER)
        width = max(len(k) for k in keys)
        for k in keys:
            lines.append(f"    {k:<{width}}  {_value(meta[k])}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = inspect_model(args.model)
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0
