"""The generated "shapes" set: one white shape on black per image, with its generative factors.

dSprites-like (square, ellipse, heart, triangle at random scale, rotation and position), 32 or 64
pixels square, uint8 in memory, seeded and prefix-stable (``make_shapes(k)`` is the first k rows of
``make_shapes(n)``).
"""

from __future__ import annotations

import math

import numpy as np

from models.data.dataset import Dataset
from models.errors import ConfigError

SHAPE_NAMES = ["square", "ellipse", "heart", "triangle"]
SHAPES_N = 20_000
SHAPES_SIZES = (32, 64)
_SHAPE_EXTENT = 0.2  # half-extent of a shape at scale 1, as a fraction of the image size
_SHAPE_CHUNK = 2048  # images rendered at once (bounds the temporaries to a few MB)


def make_shapes(n: int = SHAPES_N, size: int = 64, seed: int = 0) -> Dataset:
    """A dSprites-like set: one white shape on black per image, uint8 ``[n, 1, size, size]``.

    Factors, drawn uniformly and independently: ``shape`` (0 square, 1 ellipse, 2 heart,
    3 triangle), ``scale`` in [0.5, 1], ``rotation`` in [0, 2 pi) radians (anticlockwise),
    ``x`` and ``y`` in [0, 1] (left to right, top to bottom; the shape always lies inside the
    image). Pixels are 0 or 255 (a pixel is on when its centre lies inside the shape).
    Each factor has its own random stream, so ``make_shapes(k)`` is the first k rows of
    ``make_shapes(n)`` for k <= n, and the same seed gives identical bytes.
    """
    if size not in SHAPES_SIZES:
        raise ConfigError(f"shapes come in sizes {SHAPES_SIZES}, not {size}")
    if n < 1:
        raise ConfigError(f"the shapes set needs at least 1 image, not {n}")

    def stream(k: int) -> np.ndarray:
        return np.random.default_rng([seed, k]).random(n)

    factors = {
        "shape": np.minimum((stream(0) * len(SHAPE_NAMES)).astype(np.int64), len(SHAPE_NAMES) - 1),
        "scale": (0.5 + 0.5 * stream(1)).astype(np.float32),
        "rotation": (2.0 * np.pi * stream(2)).astype(np.float32),
        "x": stream(3).astype(np.float32),
        "y": stream(4).astype(np.float32),
    }
    images = np.zeros((n, 1, size, size), dtype=np.uint8)
    for start in range(0, n, _SHAPE_CHUNK):
        part = slice(start, min(start + _SHAPE_CHUNK, n))
        _render_shapes(images[part, 0], *(factors[k][part] for k in factors))
    name = "shapes" if size == 64 else f"shapes:{size}"
    return Dataset(
        images,
        name=name,
        scaling="uint8/255",
        labels=factors["shape"].copy(),
        label_names=list(SHAPE_NAMES),
        factors=factors,
        spec=name,
        info={"source": f"generated shapes, seed {seed}", "labels": "built-in", "seed": seed},
    )


def _render_shapes(
    out: np.ndarray,
    shape: np.ndarray,
    scale: np.ndarray,
    rotation: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> None:
    """Draw shapes into ``out`` [n, size, size] (zeros); each in a square patch about its centre."""
    n, size = out.shape[0], out.shape[1]
    h_max = _SHAPE_EXTENT * size
    r = int(math.ceil(h_max + 0.5))  # patch half-width: every pixel the shape can touch
    d = np.arange(-r, r + 1, dtype=np.float32)
    span = np.float32(size - 2 * r - 1)
    cx = np.float32(r) + x * span  # centre in pixel units, pixel (i, j) has centre (j+.5, i+.5)
    cy = np.float32(r) + y * span
    ix, iy = np.floor(cx), np.floor(cy)
    px = (d + np.float32(0.5))[None, :] - (cx - ix)[:, None]  # [n, P] offsets to the right
    py = (cy - iy)[:, None] - (d + np.float32(0.5))[None, :]  # [n, P] offsets upwards
    h = (scale * np.float32(h_max))[:, None, None]
    cos, sin = np.cos(rotation)[:, None, None], np.sin(rotation)[:, None, None]
    pxb, pyb = px[:, None, :], py[:, :, None]
    u = (pxb * cos + pyb * sin) / h  # shape coordinates: the shape fits in the unit disc
    v = (pyb * cos - pxb * sin) / h
    inside = np.zeros(u.shape, dtype=bool)
    for k, test in enumerate(_SHAPE_TESTS):
        sel = np.flatnonzero(shape == k)
        if len(sel):
            inside[sel] = test(u[sel], v[sel])
    rows = iy.astype(np.int64)[:, None] + np.arange(-r, r + 1)
    cols = ix.astype(np.int64)[:, None] + np.arange(-r, r + 1)
    out[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = inside * np.uint8(255)


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    half = np.float32(1 / math.sqrt(2))
    return (np.abs(u) <= half) & (np.abs(v) <= half)


def _ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + (v / np.float32(0.6)) ** 2 <= 1


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # (X^2 + Y^2 - 1)^3 <= X^2 Y^3; the curve lies within radius 1.25 of (0, 0.25).
    hx, hy = u * np.float32(1.25), v * np.float32(1.25) + np.float32(0.25)
    q = hx * hx + hy * hy - 1
    return q * q * q <= hx * hx * hy * hy * hy


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral, circumradius 1, one vertex up: inside all three edges at distance 1/2.
    c = np.float32(math.sqrt(3) / 2)
    return (v >= -0.5) & (c * u + 0.5 * v <= 0.5) & (-c * u + 0.5 * v <= 0.5)


_SHAPE_TESTS = (_square, _ellipse, _heart, _triangle)
