"""Seeded corruption of a run file: every damaged copy is read as `diagnose` and `export` read it.

From one small finished run (``--run FILE``, or one trained here on shapes:32), it writes
``--cases`` damaged copies, a third each of: 1 to 8 bytes flipped in the first 4 KiB (superblock
and object headers), 1 to 8 bytes flipped anywhere, the file cut at a random length. Each copy is
opened with ``RunReader``, its steps and epochs read and its model rebuilt (``load_model``), in
this process. An outcome is one of

* ``damage reported``: a LatentExplorerError of one line naming the file;
* ``no effect``: the same rows and weights as the original;
* ``changed output``: read without error, but other values (HDF5 keeps no checksum of these
  datasets unless the writer asks for Fletcher-32);
* ``traceback``: any other exception (a bug), with its type and first line.

A hang is caught by the caller's timeout. Prints one line per traceback case, then the counts;
the last line is JSON.

Usage: ``python benchmarks/runfile_corruption.py [--cases 120] [--seed 0] [--run FILE]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.errors import LatentExplorerError  # noqa: E402
from models.io.runfile import RunReader  # noqa: E402

KINDS = ("header", "data", "truncate")


def _train(folder: Path) -> Path:
    out = folder / "run.h5"
    subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--data", "shapes:32", "--max-samples",
                    "500", "--hidden", "8", "--latent-dim", "2", "--epochs", "2", "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    return out


def corrupt(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    if kind == "truncate":
        return bytes(buf[: int(rng.integers(0, len(buf)))])
    top = min(len(buf), 4096) if kind == "header" else len(buf)
    for _ in range(int(rng.integers(1, 9))):
        buf[int(rng.integers(top))] ^= int(rng.integers(1, 256))
    return bytes(buf)


def read_all(path: Path) -> tuple[dict, dict]:
    with RunReader(path) as r:
        steps, epochs = r.steps(), r.epochs()
        model = r.load_model()
        weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return {**{f"s/{k}": v for k, v in steps.items()}, **{f"e/{k}": v for k, v in epochs.items()}}, weights


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape:
            return False
        if x.dtype.kind == "f" and not np.array_equal(x, y, equal_nan=True):
            return False
        if x.dtype.kind != "f" and not np.array_equal(x, y):
            return False
    return True


def outcome(path: Path, reference: tuple[dict, dict]) -> str:
    try:
        got = read_all(path)
    except LatentExplorerError as exc:
        text = str(exc)
        if "\n" in text or str(path) not in text:
            return f"traceback: error not one line naming the file: {text[:120]!r}"
        return "damage reported"
    except Exception as exc:  # noqa: BLE001 - this is what the benchmark counts
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        return f"traceback: {type(exc).__name__}: {first}"
    return "no effect" if _same(got[0], reference[0]) and _same(got[1], reference[1]) else "changed output"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = args.run or _train(folder)
        data = source.read_bytes()
        reference = read_all(source)
        counts: Counter[str] = Counter()
        by_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
        for case in range(args.cases):
            kind = KINDS[case % len(KINDS)]
            path = folder / f"case{case:03d}.h5"
            path.write_bytes(corrupt(data, kind, rng))
            result = outcome(path, reference)
            label = result.split(":")[0]
            counts[label] += 1
            by_kind[kind][label] += 1
            if label == "traceback":
                print(f"case {case} ({kind}): {result}")
            path.unlink()
    for kind in KINDS:
        print(f"{kind:>9}: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind[kind].items())))
    print(json.dumps({"cases": args.cases, "seed": args.seed,
                      **{k.replace(" ", "_"): v for k, v in counts.items()},
                      "by_kind": {k: dict(v) for k, v in by_kind.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
