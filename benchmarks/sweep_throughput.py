"""Sweep throughput: a four-run beta sweep on MNIST, three ways, on one machine.

1. *sequential*: the four runs one after another in this process, torch using every core (the
   loop a user writes by hand), each through ``models.sweep.worker.train_one``;
2. *local*: the same runs on ``LocalBackend(workers=2)``: child processes, the cores split
   between them (``threads_per_run``);
3. *ray*: the same runs on ``RayBackend(workers=2)`` on a new local Ray instance. The instance's
   start (``ray.init``) and the start of the backend's two actors (``warm_up``: their imports)
   are timed apart and not counted in the sweep's wall time.

Every run is the ``train`` command's default model (MLP 512-256, 10 latent dimensions,
Bernoulli, batch 128) for ``--epochs`` (default 1) on ``--max-samples`` training rows (default
all 60,000), beta 0.25, 1, 4, 16, seed 0; wall times include loading the data and starting each
process, as a user waits for them; what a process imports once for its whole life is not
(torch, before the sequential loop; the fork server's imports, before the local pool's; the Ray
actors', before Ray's). The CPU seconds of the sequential and local phases (this
process and its children) are printed too: on a shared machine, where the wall times depend on
the other load, they tell whether a phase was slow because it worked more or because it waited. Targets on a 2-core machine: local at least 1.15x the
sequential loop, Ray within 20 % of local. Each run's last validation R and D are printed too
(they should fall and rise with beta).

Usage: ``python benchmarks/sweep_throughput.py [--max-samples N] [--epochs E] [--workers 2]
[--no-ray]``. The last line printed is JSON: ``{"sequential_s", "local_s", "ray_s",
"ray_init_s", "ray_warm_up_s", "local_speedup", "ray_over_local", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig  # noqa: E402
from models.sweep.manifest import summarize  # noqa: E402
from models.sweep.spec import DEFAULT_BETAS, SweepSpec  # noqa: E402

WAIT_S = 3600


def configs(args: argparse.Namespace) -> list[RunConfig]:
    base = RunConfig(
        model=ModelConfig(arch="mlp", data_shape=(784,), latent_dim=10, hidden=(512, 256)),
        objective=ObjectiveConfig(),
        train=TrainConfig(data="mnist", epochs=args.epochs, max_train_samples=args.max_samples),
    )
    return [r.config for r in SweepSpec(base, {"beta": DEFAULT_BETAS}).runs]


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children, user + system, and of the children the
    fork server has reaped (the local pool's runs are its children on Linux, not ours)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + fork_server_children_cpu()


def fork_server_children_cpu() -> float:
    """CPU seconds of the children the fork server has reaped (0 before it runs, off Linux)."""
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime


def sequential(runs: list[RunConfig], folder: str) -> float:
    import torch

    from models.sweep.worker import Control, train_one

    torch.set_num_threads(os.cpu_count() or 1)
    t = time.perf_counter()
    for i, config in enumerate(runs):
        fin = train_one(config, os.path.join(folder, f"run{i}.h5"), lambda ev: None, Control())
        assert fin.status == "finished", fin
    return time.perf_counter() - t


def pooled(backend, runs: list[RunConfig], folder: str) -> float:  # noqa: ANN001
    t = time.perf_counter()
    handles = [backend.submit(c, os.path.join(folder, f"run{i}.h5")) for i, c in enumerate(runs)]
    for h in handles:
        fin = h.wait(WAIT_S)
        assert fin is not None and fin.status == "finished", fin
    wall = time.perf_counter() - t
    backend.close()
    return wall


def frontier(folder: str, n: int) -> list[tuple[float, float]]:
    out = []
    for i in range(n):
        s = summarize(os.path.join(folder, f"run{i}.h5"))
        out.append((round(s.rate, 3), round(s.distortion, 3)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-samples", type=int, default=None, help="training rows per run (default: all)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-ray", action="store_true", help="skip the Ray phase")
    args = p.parse_args()
    runs = configs(args)
    cores = os.cpu_count() or 1
    print(f"{len(runs)} runs (beta {', '.join(f'{b:g}' for b in DEFAULT_BETAS)}), {args.epochs} epoch(s) on "
          f"{args.max_samples or 'all'} MNIST rows; {cores} cores, {args.workers} workers", flush=True)
    result: dict = {"cores": cores, "workers": args.workers, "runs": len(runs), "epochs": args.epochs,
                    "max_samples": args.max_samples}
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        for name in ("sequential", "local", "ray"):
            os.makedirs(os.path.join(tmp, name))
        cpu = cpu_seconds()
        result["sequential_s"] = round(sequential(runs, os.path.join(tmp, "sequential")), 2)
        result["sequential_cpu_s"] = round(cpu_seconds() - cpu, 1)
        print(f"sequential, one process with {cores} threads: {result['sequential_s']:.1f} s "
              f"({result['sequential_cpu_s']:.0f} CPU-s)", flush=True)

        from models.sweep.local import LocalBackend

        from models.sweep.process import warm_up

        warm_up()  # the fork server's imports, once, untimed: as torch's before the sequential loop
        local = LocalBackend(args.workers)
        result["threads_per_run"] = local.threads
        cpu = cpu_seconds()
        result["local_s"] = round(pooled(local, runs, os.path.join(tmp, "local")), 2)
        result["local_cpu_s"] = round(cpu_seconds() - cpu, 1)
        result["local_speedup"] = round(result["sequential_s"] / result["local_s"], 3)
        result["frontier_r_d"] = frontier(os.path.join(tmp, "local"), len(runs))
        print(f"local pool, {args.workers} workers x {local.threads} threads: {result['local_s']:.1f} s "
              f"({result['local_cpu_s']:.0f} CPU-s) = {result['local_speedup']:.2f}x the sequential loop "
              "(target >= 1.15)", flush=True)
        print("  (R, D) by beta: " + ", ".join(f"{b:g}: {rd}" for b, rd in zip(DEFAULT_BETAS, result["frontier_r_d"])))

        if not args.no_ray:
            import ray

            from models.sweep.ray_backend import RayBackend, connect

            t = time.perf_counter()
            connect(num_cpus=cores)
            result["ray_init_s"] = round(time.perf_counter() - t, 2)
            backend = RayBackend(args.workers)
            t = time.perf_counter()
            backend.warm_up()  # the pool's imports, once, untimed: as the fork server's above
            result["ray_warm_up_s"] = round(time.perf_counter() - t, 2)
            result["ray_s"] = round(pooled(backend, runs, os.path.join(tmp, "ray")), 2)
            ray.shutdown()
            result["ray_over_local"] = round(result["ray_s"] / result["local_s"], 3)
            print(f"ray, local instance ({result['ray_init_s']:.1f} s to start and "
                  f"{result['ray_warm_up_s']:.1f} s to warm its {args.workers} actors, not counted): "
                  f"{result['ray_s']:.1f} s = {result['ray_over_local']:.2f}x the local pool's time "
                  "(target <= 1.20)", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
