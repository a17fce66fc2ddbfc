"""Decode latency: onnxruntime (models.io.onnx_runtime.OnnxDecoder) against torch eager, same machine.

For the default MLP decoder (``ModelConfig()``) and a conv decoder
(``ModelConfig(arch="conv", hidden=(32, 64, 256))``), at batch 1 (a dragged point) and batch 64
(an interpolation strip), it times one call from a fresh float32 latent array to a display-ready
uint8 image [N, 28, 28], conversion included on both sides:

* onnxruntime: ``OnnxDecoder.decode_uint8(z)`` on the exported, verified file;
* torch eager: ``vae.decode(torch.from_numpy(z))`` under ``torch.inference_mode()``, then
  ``clamp(0, 1) * 255 + 0.5`` -> uint8 -> numpy, the same conversion.

onnxruntime runs as ``OnnxDecoder`` does by default: batches of up to ``SMALL_BATCH`` on one
thread, larger ones on ``--threads`` threads (default ``models.io.onnx_runtime.default_threads()``); it is
also timed with one thread throughout. torch is timed with ``--threads`` threads and with one,
and each ratio is taken against the *faster* torch setting, so it is not flattered by a poor
torch configuration. The four paths take turns in blocks of calls (``BLOCKS``), so a change in
the machine's speed during the run does not favour the one timed first. Weights are random:
latency does not depend on their values. Prints a
table, then one JSON line (the last line) with ``ort_vs_torch_batch1`` (best torch median /
onnxruntime median, MLP, batch 1), ``ort_mlp_batch1_p99_ms`` and the other figures.

Usage: ``python benchmarks/decode_latency.py [--iters 3000] [--threads N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from models.config import ModelConfig  # noqa: E402
from models.io.onnx_export import export_decoder  # noqa: E402
from models.io.onnx_runtime import SMALL_BATCH, OnnxDecoder, default_threads  # noqa: E402
from models.nn.vae import VAE  # noqa: E402

MODELS = {
    "mlp": ModelConfig(),
    "conv": ModelConfig(arch="conv", hidden=(32, 64, 256)),
}
BATCHES = (1, 64)
BLOCKS = 10  # the four timed paths take turns in this many blocks (see _time)


def _nothing() -> None:
    pass


def _torch_decode_uint8(vae: VAE, z: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        x = vae.decode(torch.from_numpy(z))
        img = (x.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
    return img.numpy().reshape(len(z), *x.shape[2:])  # [N, 1, H, W] -> [N, H, W]


def _time(fns: dict, zs: list[np.ndarray], warmup: int, blocks: int = BLOCKS) -> dict[str, np.ndarray]:
    """Seconds per call for each named function, one call per latent array (a fresh array each
    call, as a drag makes). The calls are split into ``blocks`` blocks and the functions take
    turns block by block, each block after ``warmup`` untimed calls, so that a change in the
    machine's speed during the run (a shared machine's neighbours) falls on all of them alike."""
    clock = time.perf_counter
    chunks = np.array_split(np.arange(len(zs)), blocks)
    out = {name: np.empty(len(zs)) for name in fns}
    for chunk in chunks:
        for name, (setup, fn) in fns.items():
            setup()
            for i in chunk[:warmup]:
                fn(zs[i])
            times = out[name]
            for i in chunk:
                z = zs[i]
                t0 = clock()
                fn(z)
                times[i] = clock() - t0
    return out


def _stats(t: np.ndarray) -> dict[str, float]:
    return {"median_ms": float(np.median(t) * 1e3), "p99_ms": float(np.percentile(t, 99) * 1e3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=3000, help="timed calls at batch 1 (batch 64: a tenth)")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads for both runtimes")
    args = ap.parse_args()
    threads = args.threads or default_threads()
    load_before = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    rng = np.random.default_rng(0)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in MODELS.items():
            torch.manual_seed(0)
            vae = VAE(cfg).eval()
            path = os.path.join(tmp, f"{name}.onnx")
            export_decoder(vae, path)
            dec = OnnxDecoder(path, threads=threads)
            dec1 = OnnxDecoder(path, threads=1)
            for batch in BATCHES:
                iters = args.iters if batch == 1 else max(100, args.iters // 10)
                warmup = max(5, iters // (20 * BLOCKS))  # untimed calls before each block
                zs = [rng.standard_normal((batch, cfg.latent_dim)).astype(np.float32)
                      for _ in range(iters)]
                # identical pictures from both paths (up to one grey level of rounding)
                diff = np.abs(dec.decode_uint8(zs[0]).astype(int) - _torch_decode_uint8(vae, zs[0])).max()
                assert diff <= 1, f"onnxruntime and torch disagree by {diff} grey levels"
                def torch_fn(z: np.ndarray, vae: VAE = vae) -> np.ndarray:
                    return _torch_decode_uint8(vae, z)

                t = _time(
                    {
                        "ort": (_nothing, dec.decode_uint8),
                        "ort1": (_nothing, dec1.decode_uint8),
                        "torch": (lambda: torch.set_num_threads(threads), torch_fn),
                        "torch1": (lambda: torch.set_num_threads(1), torch_fn),
                    },
                    zs,
                    warmup,
                )
                ort_t, ort1_t, torch_t, torch1_t = t["ort"], t["ort1"], t["torch"], t["torch1"]
                best_torch = min(np.median(torch_t), np.median(torch1_t))
                key = f"{name}_batch{batch}"
                results[key] = {
                    "ort": _stats(ort_t),
                    "ort_1thread": _stats(ort1_t),
                    "torch": _stats(torch_t),
                    "torch_1thread": _stats(torch1_t),
                    "torch_over_ort_median": float(best_torch / np.median(ort_t)),
                }
                r = results[key]
                print(
                    f"{key:<12} ort {r['ort']['median_ms']:7.3f} ms (p99 {r['ort']['p99_ms']:6.3f})"
                    f" | ort 1 thr {r['ort_1thread']['median_ms']:7.3f} (p99 {r['ort_1thread']['p99_ms']:6.3f})"
                    f" | torch {r['torch']['median_ms']:7.3f} (p99 {r['torch']['p99_ms']:6.3f})"
                    f" | torch 1 thr {r['torch_1thread']['median_ms']:7.3f} (p99 {r['torch_1thread']['p99_ms']:6.3f})"
                    f" | best torch/ort {r['torch_over_ort_median']:5.2f}x",
                    flush=True,
                )
    summary = {
        "ort_vs_torch_batch1": round(results["mlp_batch1"]["torch_over_ort_median"], 3),
        "ort_mlp_batch1_p99_ms": round(results["mlp_batch1"]["ort"]["p99_ms"], 4),
        "ort_mlp_batch1_median_ms": round(results["mlp_batch1"]["ort"]["median_ms"], 4),
        "ort_vs_torch_conv_batch1": round(results["conv_batch1"]["torch_over_ort_median"], 3),
        "ort_vs_torch_mlp_batch64": round(results["mlp_batch64"]["torch_over_ort_median"], 3),
        "ort_vs_torch_conv_batch64": round(results["conv_batch64"]["torch_over_ort_median"], 3),
        "threads": threads,
        "ort_small_batch_single_thread_up_to": SMALL_BATCH,
        "cpu_count": os.cpu_count(),
        "load_avg_1min_before": load_before,  # other work on the machine inflates p99 figures
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
