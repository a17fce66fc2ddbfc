"""Latent-space geometry for the explorer, in plain numpy (no torch, no Qt).

Interpolation (linear and spherical), paths through several anchors, principal components,
projections of latent vectors onto a 2-D map and back, traversal grids, KL-based orderings of
the dimensions, and the tiling of decoded images (``OnnxDecoder.decode_uint8``'s display layout,
[N, H, W] or [N, H, W, 3]) into one strip or grid.

A *projection* maps latent vectors ``z`` [N, d] to map positions [N, 2]. Its inverse is not
unique when d > 2, so ``unproject(xy, base)`` returns the latent vector that lies at ``xy`` on the
map and agrees with ``base`` everywhere the map cannot see: the other dimensions (dimension-pair
projection) or the component orthogonal to the principal plane (PCA projection). Projecting the
result gives ``xy`` back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

# The latent statistics the views use, defined once in models.latent.stats (re-exported here).
from models.latent.stats import (  # noqa: F401
    ACTIVE_THRESHOLD,
    activity,
    collapsed_dims,
    dims_by_kl,
    kl_per_dim,
)

Mode = Literal["linear", "spherical"]

# Below this angle (radians) two vectors count as parallel and slerp falls back to lerp.
_SLERP_MIN_ANGLE = 1e-4


# --------------------------------------------------------------------------- interpolation
def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points ``(1 - t) a + t b`` for each t: [len(t), d], float32."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[:, None]
    return ((1.0 - t) * a + t * b).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation: [len(t), d], float32, exactly ``a`` at t=0 and ``b`` at t=1.

    ``sin((1-t) W) / sin W * a + sin(t W) / sin W * b`` with W the angle between ``a`` and ``b``
    (White, 2016, "Sampling generative networks"). Under a Gaussian prior it keeps the path at a
    typical norm where the straight line passes through the low-norm middle. Nearly parallel,
    antiparallel or zero vectors have no well-defined great circle: these fall back to ``lerp``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return lerp(a, b, t)
    cos = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    omega = float(np.arccos(cos))
    if omega < _SLERP_MIN_ANGLE or np.pi - omega < _SLERP_MIN_ANGLE:
        return lerp(a, b, t)
    s = np.sin(omega)
    wa = np.sin((1.0 - t) * omega) / s
    wb = np.sin(t * omega) / s
    out = wa[:, None] * a + wb[:, None] * b
    out[t == 0.0] = a  # exact endpoints, free of rounding
    out[t == 1.0] = b
    return out.astype(np.float32)


def interpolate_path(anchors: np.ndarray, steps: int, mode: Mode = "linear") -> np.ndarray:
    """Latents along the path through consecutive anchors: [(K-1)(steps-1)+1, d], float32.

    Each of the K-1 segments has ``steps`` points, both anchors included; segments share their
    end points, so anchor k sits at row ``k * (steps - 1)``. One anchor gives one row.
    """
    anchors = np.asarray(anchors, dtype=np.float32)
    if anchors.ndim != 2 or len(anchors) == 0:
        raise ValueError(f"anchors must be a non-empty [K, d] array, not shape {anchors.shape}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, not {steps}")
    if mode not in ("linear", "spherical"):
        raise ValueError(f"mode must be 'linear' or 'spherical', not {mode!r}")
    if len(anchors) == 1:
        return anchors.copy()
    fn = lerp if mode == "linear" else slerp
    t = np.linspace(0.0, 1.0, steps)
    parts = [fn(anchors[0], anchors[1], t)]
    for k in range(1, len(anchors) - 1):
        parts.append(fn(anchors[k], anchors[k + 1], t)[1:])
    return np.concatenate(parts, axis=0)


def anchor_rows(n_anchors: int, steps: int) -> list[int]:
    """Rows of :func:`interpolate_path`'s output that hold the anchors themselves."""
    return [k * (steps - 1) for k in range(n_anchors)]


def pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal components of the rows of ``x`` [N, d].

    Returns ``(mean [d], components [k, d] orthonormal rows, explained_variance [k])``, components
    ordered by variance, each with its largest-magnitude entry positive (a deterministic sign).
    When d < k the missing components are zero rows with zero variance.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"pca needs a non-empty [N, d] array, not shape {x.shape}")
    mean = x.mean(axis=0)
    xc = x - mean
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2 / max(len(x) - 1, 1)
    comps = np.zeros((k, x.shape[1]))
    ev = np.zeros(k)
    m = min(k, vt.shape[0])
    comps[:m] = vt[:m]
    ev[:m] = var[:m]
    for i in range(m):
        j = int(np.argmax(np.abs(comps[i])))
        if comps[i, j] < 0:
            comps[i] = -comps[i]
    return mean, comps, ev


class Projection:
    """Maps latent vectors to 2-D map positions and map positions back to latent vectors."""

    latent_dim: int

    def project(self, z: np.ndarray) -> np.ndarray:
        """[N, d] (or [d]) -> [N, 2] (or [2]) float64."""
        raise NotImplementedError

    def unproject(self, xy: Sequence[float] | np.ndarray, base: np.ndarray) -> np.ndarray:
        """The latent vector at ``xy`` on the map that agrees with ``base`` elsewhere: [d] float32."""
        raise NotImplementedError

    def axis_labels(self) -> tuple[str, str]:
        raise NotImplementedError


@dataclass
class DimPairProjection(Projection):
    """The map shows dimensions ``x_dim`` and ``y_dim``; ``y_dim`` is None for a 1-D latent."""

    latent_dim: int
    x_dim: int
    y_dim: int | None

    def __post_init__(self) -> None:
        dims = [self.x_dim] + ([] if self.y_dim is None else [self.y_dim])
        if any(not 0 <= i < self.latent_dim for i in dims):
            raise ValueError(f"dimensions {dims} out of range for latent size {self.latent_dim}")
        if self.y_dim is None and self.latent_dim > 1:
            raise ValueError("a second dimension is needed when the latent has more than one")
        if self.y_dim == self.x_dim:
            raise ValueError(f"the two map dimensions must differ, both are {self.x_dim}")

    def project(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z)
        x = z[..., self.x_dim].astype(np.float64)
        y = np.zeros_like(x) if self.y_dim is None else z[..., self.y_dim].astype(np.float64)
        return np.stack([x, y], axis=-1)

    def unproject(self, xy: Sequence[float] | np.ndarray, base: np.ndarray) -> np.ndarray:
        z = np.array(base, dtype=np.float32, copy=True).reshape(self.latent_dim)
        z[self.x_dim] = xy[0]
        if self.y_dim is not None:
            z[self.y_dim] = xy[1]
        return z

    def axis_labels(self) -> tuple[str, str]:
        return f"z{self.x_dim}", ("(none)" if self.y_dim is None else f"z{self.y_dim}")


@dataclass
class PCAProjection(Projection):
    """The map shows the first two principal components of a cloud of latent vectors."""

    latent_dim: int
    mean: np.ndarray  # [d]
    components: np.ndarray  # [2, d], orthonormal rows (a zero row when d == 1)
    explained_variance: np.ndarray  # [2]

    @classmethod
    def fit(cls, z: np.ndarray) -> "PCAProjection":
        z = np.asarray(z)
        mean, comps, ev = pca(z, 2)
        return cls(z.shape[1], mean, comps, ev)

    def project(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return (z - self.mean) @ self.components.T

    def unproject(self, xy: Sequence[float] | np.ndarray, base: np.ndarray) -> np.ndarray:
        # z = base + C^T (xy - C (base - mean)): moves base within the principal plane only.
        base = np.asarray(base, dtype=np.float64).reshape(self.latent_dim)
        xy = np.asarray(xy, dtype=np.float64).reshape(2)
        delta = xy - self.project(base)
        return (base + delta @ self.components).astype(np.float32)

    def axis_labels(self) -> tuple[str, str]:
        total = float(self.explained_variance.sum()) or 1.0
        return tuple(  # type: ignore[return-value]
            f"PC{i + 1} ({100 * v / total:.0f}% of the 2-D variance)"
            for i, v in enumerate(self.explained_variance)
        )


# --------------------------------------------------------------------------- traversal
def prior_values(n: int, limit: float = 3.0) -> np.ndarray:
    """``n`` evenly spaced values across the prior's range [-limit, limit] (standard deviations)."""
    if n < 2:
        raise ValueError(f"a traversal needs at least 2 values, not {n}")
    return np.linspace(-limit, limit, n).astype(np.float32)


def traversal_latents(base: np.ndarray, dims: Sequence[int], values: np.ndarray) -> np.ndarray:
    """Grid of latents, one row per dimension in ``dims``, one column per value: [R*C, d].

    Row r, column c is ``base`` with dimension ``dims[r]`` set to ``values[c]``; row-major.
    """
    base = np.asarray(base, dtype=np.float32).reshape(-1)
    values = np.asarray(values, dtype=np.float32)
    dims = np.asarray(dims, dtype=np.int64)
    z = np.repeat(base[None, :], len(dims) * len(values), axis=0)
    rows = np.repeat(np.arange(len(dims)), len(values))
    z[np.arange(len(z)), dims[rows]] = np.tile(values, len(dims))
    return z


# --------------------------------------------------------------------------- display images
def tile(images: np.ndarray, rows: int, cols: int, pad: int = 1, fill: int | float = 0) -> np.ndarray:
    """Tiles images [N, H, W(, 3)] into one [rows*(H+pad)-pad, cols*(W+pad)-pad(, 3)] image.

    Row-major; cells past N stay ``fill``. N must be at most rows * cols.
    """
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows} x {cols} grid")
    extra = images.shape[3:]
    out = np.full(
        (rows * (h + pad) - pad, cols * (w + pad) - pad, *extra), fill, dtype=images.dtype
    )
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[k]
    return out


def prior_samples(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """``n`` draws from the prior N(0, I): [n, latent_dim] float32, reproducible by ``seed``."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)
