"""Training throughput: our Trainer against the canonical PyTorch MNIST VAE example, one machine.

The reference is the recipe of pytorch/examples ``vae/main.py``: a 784-400-20 MLP with ReLU, a
Bernoulli decoder (sigmoid + binary cross-entropy, summed), Adam(lr=1e-3), batch 128, fed by
``DataLoader(TensorDataset(x), batch_size=128, shuffle=True)`` and adding ``loss.item()`` up each
step. Ours is ``models.training.Trainer`` with the same architecture
(``ModelConfig(arch="mlp", hidden=(400,), latent_dim=20)``), Bernoulli likelihood, dynamic
binarisation, Adam(1e-3), batch 128, with its ordinary logging (a step row every 10 steps, an
epoch of validation diagnostics) left on. Both train on MNIST training images.

Our figure is the trainer's own: samples over the summed logged intervals, which exclude the
per-epoch validation; the reference's is samples over wall time, both after a warm-up. The
fraction of peak divides the FLOP rate achieved (about 3x the forward pass's multiply-adds
times 2 per sample: forward, and backward for activations and weights) by this machine's fp32
``torch.matmul`` rate on large square matrices.

Each round trains one epoch over the first (``--steps`` + 10) x 128 training images (default
300 timed steps; ``--steps 0`` takes all 60,000), the same rows on both sides. The sides run
alternately for ``--rounds`` rounds (default 5) and each keeps its best round, so a busy spell
on a shared machine does not decide the ratio ("ratio" is best over best). The median of the
rounds' own ratios (each round's two sides ran back to back) is printed too, as
"paired_ratio_median": when the two disagree, the machine's speed changed during the run.

``--binarize threshold`` trains ours on images binarised once (pixel > 0.5) instead of drawing
fresh bits every step: like the reference, which fits the grey levels and draws nothing, it then
does no per-step sampling, so the ratio measures the trainer's own overhead alone.

Usage: ``python benchmarks/train_throughput.py [--rounds 5] [--steps 300] [--device cpu|cuda]
[--threads N] [--binarize dynamic|threshold]``.
The last line printed is JSON:
``{"ours_samples_per_s", "reference_samples_per_s", "ratio", "fraction_of_matmul_peak", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig  # noqa: E402
from models.data import load_mnist, split_indices  # noqa: E402
from models.training import StepEvent, Trainer  # noqa: E402

BATCH = 128
WARMUP_STEPS = 10
SIZES = (784, 400, 20)


class ReferenceVAE(nn.Module):
    """The model of pytorch/examples vae/main.py."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def reference_loss(recon_x, x, mu, logvar):  # noqa: ANN001, ANN201  (as in the example)
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_reference(x: torch.Tensor, device: torch.device) -> float:
    """Samples per second of the reference recipe over one epoch of x, after WARMUP_STEPS steps."""
    torch.manual_seed(1)
    model = ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x), batch_size=BATCH, shuffle=True)
    model.train()
    train_loss = 0.0
    samples = 0
    t0 = 0.0
    for step, (data,) in enumerate(loader):
        if step == WARMUP_STEPS:
            _sync(device)
            t0 = time.perf_counter()
            samples = 0
        data = data.to(device)
        optimizer.zero_grad()
        recon, mu, logvar = model(data)
        loss = reference_loss(recon, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        samples += len(data)
    _sync(device)
    return samples / (time.perf_counter() - t0)


def run_ours(train, train_idx, val_x, device: torch.device, binarize: str = "dynamic") -> tuple[float, float]:
    """(samples/s from the trainer's own logged intervals after the first WARMUP_STEPS steps,
    wall-clock samples/s of the whole run() including the epoch's validation).

    ``train_idx`` holds a multiple of BATCH rows, so every step's batch is full."""
    config = RunConfig(
        model=ModelConfig(arch="mlp", data_shape=(1, 28, 28), hidden=(400,), latent_dim=20),
        objective=ObjectiveConfig(),
        train=TrainConfig(data="mnist", epochs=1, batch_size=BATCH, lr=1e-3, seed=1,
                          log_every=WARMUP_STEPS, binarize=binarize),
    )
    events: list[StepEvent] = []
    trainer = Trainer(
        config, train, val_x, train_indices=train_idx, device=device,
        callbacks=[lambda ev: events.append(ev) if isinstance(ev, StepEvent) else None],
    )
    t0 = time.perf_counter()
    fin = trainer.run()
    wall = time.perf_counter() - t0
    if fin.status != "finished":
        raise SystemExit(f"our run did not finish: {fin.status}: {fin.message}")
    timed = events[1:]  # the first interval, WARMUP_STEPS steps, holds the warm-up
    samples = np.diff([events[0].step] + [e.step for e in timed]) * BATCH
    seconds = samples / np.array([e.samples_per_s for e in timed])
    return float(samples.sum() / seconds.sum()), trainer.n_train / wall


def matmul_peak(device: torch.device) -> float:
    """fp32 FLOP/s of torch.matmul on large square matrices (best of several)."""
    n = 4096 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    reps = 20 if device.type == "cuda" else 3
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(3):
        _sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def flops_per_sample() -> float:
    """Training FLOPs per sample: 3 x the forward pass's 2 x multiply-adds of its linear layers."""
    d, h, z = SIZES
    macs = d * h + h * 2 * z + z * h + h * d
    return 3 * 2 * macs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300,
                        help="timed steps per round and side (default 300; 0: a whole epoch)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; best is kept")
    parser.add_argument("--device", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--binarize", choices=("dynamic", "threshold"), default="dynamic",
                        help="our trainer's binarisation (default dynamic, the trainer's default; "
                        "the reference fits the grey levels and draws nothing)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, on both sides

    data = load_mnist()
    train_idx, val_idx = split_indices(data, seed=0)
    n = len(train_idx) if args.steps <= 0 else (args.steps + WARMUP_STEPS) * BATCH
    train_idx = train_idx[: n - n % BATCH]  # whole batches only: the same rows on both sides
    x_ref = torch.from_numpy(data.read(train_idx).reshape(-1, 784))
    val_x = data.read(val_idx[:1000])  # the trainer's per-epoch validation; not timed
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"cpu, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}; {len(train_idx)} MNIST training images ({len(train_idx) // BATCH} "
          f"steps of {BATCH}), {args.rounds} alternating rounds per side")

    ref = ours = ours_wall = 0.0
    paired: list[float] = []  # each round's ours / reference, the two run back to back
    for r in range(args.rounds):  # alternate, so a busy spell on the machine hits both sides
        ref_r = run_reference(x_ref, device)
        ours_r, wall_r = run_ours(data, train_idx, val_x, device, args.binarize)
        print(f"round {r + 1}: reference {ref_r:,.0f} samples/s, ours {ours_r:,.0f} samples/s "
              f"({wall_r:,.0f} over the whole run, validation included)", flush=True)
        ref, ours, ours_wall = max(ref, ref_r), max(ours, ours_r), max(ours_wall, wall_r)
        paired.append(ours_r / ref_r)
    print(f"best of {args.rounds}: reference (pytorch/examples vae recipe) {ref:,.0f} samples/s; "
          f"ours (Trainer, logged intervals) {ours:,.0f} samples/s; ratio {ours / ref:.3f} "
          f"(per round: {', '.join(f'{p:.2f}' for p in paired)}; median {np.median(paired):.3f})")
    peak = matmul_peak(device)
    fps = flops_per_sample()
    frac = ours * fps / peak
    print(f"fp32 matmul peak {peak / 1e9:,.1f} GFLOP/s; model {fps / 1e6:.2f} MFLOP per sample; "
          f"ours reaches {ours * fps / 1e9:,.1f} GFLOP/s = {100 * frac:.1f}% of peak "
          f"(reference {100 * ref * fps / peak:.1f}%)")
    print(json.dumps({
        "ours_samples_per_s": round(ours, 1),
        "reference_samples_per_s": round(ref, 1),
        "ratio": round(ours / ref, 3),
        "paired_ratio_median": round(float(np.median(paired)), 3),
        "fraction_of_matmul_peak": round(frac, 4),
        "binarize": args.binarize,
        "device": name,
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "flops_per_sample": fps,
        "ours_wall_samples_per_s": round(ours_wall, 1),
    }))


if __name__ == "__main__":
    main()
