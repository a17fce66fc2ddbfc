"""The density image of a point cloud (numpy only): what the latent map shows instead of tens of
thousands of symbols while many are in view."""

from __future__ import annotations

import numpy as np


def density_rgba(
    points: np.ndarray,
    labels: np.ndarray | None,
    colours: np.ndarray,
    bins: tuple[float, float, float, float, int, int],
    symbol_alpha: int,
) -> np.ndarray:
    """RGBA uint8 ``[ny, nx, 4]`` of ``points`` [N, 2] over ``bins = (x0, y0, bw, bh, nx, ny)``:
    each bin in the mean colour of its points' labels (``colours`` [L, 3] in 0..1, indexed by
    ``labels``; one colour when ``labels`` is None) and as opaque as that many symbols of
    ``symbol_alpha`` drawn over one another, ``1 - (1 - a)^count``."""
    x0, y0, bw, bh, nx, ny = bins
    ix = np.floor((points[:, 0] - x0) * (1.0 / bw)).astype(np.intp)
    iy = np.floor((points[:, 1] - y0) * (1.0 / bh)).astype(np.intp)
    ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    flat = (iy * nx + ix)[ok]
    size = nx * ny
    count = np.bincount(flat, minlength=size)
    rgba = np.zeros((size, 4), np.uint8)
    if labels is None or len(colours) == 1:
        rgba[:, :3] = np.broadcast_to((colours[0] * 255.0).astype(np.uint8), (size, 3))
    else:
        picked = labels[ok]
        with np.errstate(invalid="ignore", divide="ignore"):
            inv = np.where(count > 0, 255.0 / np.maximum(count, 1), 0.0)
        for c in range(3):
            total = np.bincount(flat, weights=colours[picked, c], minlength=size)
            rgba[:, c] = (total * inv).astype(np.uint8)
    table = (255.0 * (1.0 - (1.0 - symbol_alpha / 255.0) ** np.arange(64)) + 0.5).astype(np.uint8)
    rgba[:, 3] = table[np.minimum(count, 63)]
    return rgba.reshape(ny, nx, 4)
