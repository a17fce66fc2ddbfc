"""Diagnosis speed: a model as two ONNX files through onnxruntime against the same model in torch.

Diagnoses ``--rows`` MNIST rows (default 10,000: the test images, binarised by the evaluation
rule) with K = ``--k`` importance samples (default 100) per row, the full ``diagnose`` work
(encode, K draws of z, decode every draw, log p(x|z), IWAE, KL per dimension, activity, I(X;Z)):

* torch: ``models.diagnostics.diagnose(vae, x, iw_samples=K)``, on the CPU;
* onnxruntime: ``models.io.pair_diagnosis.diagnose_pair(pair, x, iw_samples=K)`` on the
  encoder and decoder exported from that very VAE (``models.io.onnx_export``), numpy for the rest.

Both run with ``--threads`` threads (torch ``set_num_threads``, onnxruntime intra-op threads) and
batches of 128 rows. The model is ``--run RUN.h5``'s, or the default MLP (``ModelConfig()``,
hidden 512, 256, d = 10) with random weights (speed does not depend on their values). The two
sides take turns, ``--rounds`` times each (torch first in odd rounds, onnxruntime first in even
ones), so a change in the machine's speed during the run favours neither; the figure is each
side's fastest round. Prints a table, then one JSON line (the last) with ``ort_vs_torch``
(torch seconds / onnxruntime seconds: above 1, onnxruntime is faster).

Usage: ``python benchmarks/diagnose_speed.py [--rows 10000] [--k 100] [--rounds 2] [--threads N]``
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

import torch  # noqa: E402

from models.config import ModelConfig  # noqa: E402
from models.data import MNIST_TRAIN, load_dataset  # noqa: E402
from models.data.evaluation import binarize_for_evaluation  # noqa: E402
from models.diagnostics import diagnose  # noqa: E402
from models.io.onnx_export import export_decoder, export_encoder  # noqa: E402
from models.io.onnx_partner import open_pair  # noqa: E402
from models.io.onnx_runtime import default_threads  # noqa: E402
from models.io.pair_diagnosis import diagnose_pair  # noqa: E402
from models.nn.vae import VAE  # noqa: E402

BATCH = 128


def _model(run: str | None) -> VAE:
    if run:
        from models.io.runfile import RunReader

        with RunReader(run) as reader:
            return reader.load_model(device="cpu").eval()
    torch.manual_seed(0)
    return VAE(ModelConfig()).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--run", help="a run file whose model to use (default: the default MLP)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vae = _model(args.run)
    mnist = load_dataset("mnist")
    rows = np.arange(MNIST_TRAIN, MNIST_TRAIN + min(args.rows, len(mnist) - MNIST_TRAIN))
    x = binarize_for_evaluation(mnist.read(rows).reshape(len(rows), *vae.config.data_shape))
    with tempfile.TemporaryDirectory() as tmp:
        enc, dec = os.path.join(tmp, "m.encoder.onnx"), os.path.join(tmp, "m.decoder.onnx")
        export_encoder(vae, enc)
        export_decoder(vae, dec)
        pair = open_pair(enc, dec, threads=args.threads)
        sides = {
            "torch": lambda: diagnose(vae, x, iw_samples=args.k, batch_size=BATCH, seed=0),
            "onnxruntime": lambda: diagnose_pair(pair, x, iw_samples=args.k, batch_size=BATCH,
                                                 seed=0),
        }
        times: dict[str, list[float]] = {s: [] for s in sides}
        result = {}
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            for side in order:
                t0 = time.perf_counter()
                result[side] = sides[side]()
                times[side].append(time.perf_counter() - t0)
                print(f"round {r + 1} {side:12s} {times[side][-1]:8.2f} s", flush=True)
    best = {s: min(t) for s, t in times.items()}
    t, o = result["torch"], result["onnxruntime"]
    print(f"\n{len(x)} rows, K = {args.k}, {args.threads} threads, {platform.processor() or platform.machine()}")
    print(f"{'side':12s} {'best s':>8s} {'rows/s':>9s} {'ELBO':>10s} {'IWAE':>10s} {'active':>6s}")
    for side, d in (("torch", t), ("onnxruntime", o)):
        print(f"{side:12s} {best[side]:8.2f} {len(x) / best[side]:9.0f} {d.elbo:10.3f} "
              f"{d.iwae:10.3f} {d.active_units:6d}")
    print(json.dumps({
        "rows": len(x), "k": args.k, "threads": args.threads, "rounds": args.rounds,
        "torch_s": round(best["torch"], 3), "onnxruntime_s": round(best["onnxruntime"], 3),
        "ort_vs_torch": round(best["torch"] / best["onnxruntime"], 3),
        "elbo_torch": t.elbo, "elbo_onnxruntime": o.elbo,
        "iwae_torch": t.iwae, "iwae_onnxruntime": o.iwae,
        "max_kl_per_dim_diff": float(np.abs(np.subtract(t.kl_per_dim, o.kl_per_dim)).max()),
    }))


if __name__ == "__main__":
    main()
