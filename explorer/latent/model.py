"""The latent explorer's model: a decoder, the points on the map, the projection and the anchors.

:class:`LatentSpace` holds everything the explorer's views show and nothing they draw. Views
take it in ``__init__``, read its state and connect to its signals; user actions call its
methods. The maths (interpolation, projections, traversal grids) is in
:mod:`models.latent.geometry`, which needs neither torch nor Qt.

Anchors are full latent vectors. The map shows two coordinates of them (a pair of dimensions or
the first two principal components); moving an anchor on the map changes only those, and every
other coordinate keeps the anchor's own value (set with the sliders). A new anchor placed on the
map takes its hidden coordinates from the current anchor.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from models.latent import geometry as lm

Mode = Literal["linear", "spherical"]

#: Prior draws shown on the map when there is nothing to encode (a decoder on its own).
PRIOR_POINTS = 5000
#: Traversal rows shown at most (dimensions with the most KL first).
MAX_TRAVERSAL_ROWS = 32


class Decoder(Protocol):
    """What the explorer needs of a decoder (``models.io.onnx_runtime.OnnxDecoder`` in the app)."""

    latent_dim: int
    output_shape: tuple[int, ...]

    def decode(self, z: np.ndarray) -> np.ndarray: ...

    def decode_uint8(self, z: np.ndarray) -> np.ndarray: ...


class LatentSpace(QObject):
    """State of the latent explorer for one decoder.

    Parameters
    ----------
    decoder
        Anything with ``latent_dim``, ``output_shape``, ``decode(z)`` and ``decode_uint8(z)``
        (and optionally a ``metadata`` dict with ``kl_per_dim`` / ``collapsed_dims``).
    n_prior, seed
        Number of prior draws z ~ N(0, I) shown on the map until encodings are set.

    Signals
    -------
    pointsChanged()
        the cloud on the map changed (encodings set or cleared, or the projection changed).
    projectionChanged()
        the projection changed; every map position changed.
    anchorsChanged()
        anchors were added, removed or reset (the number of anchors may differ).
    anchorMoved(int)
        the latent vector of anchor ``i`` changed (a drag or a slider).
    currentAnchorChanged(int)
        another anchor became current (its values show on the sliders; the traversal uses it).
    interpolationChanged()
        the interpolation mode or number of steps changed.
    traversalChanged()
        the traversal's number of columns or range changed.
    """

    pointsChanged = Signal()
    projectionChanged = Signal()
    anchorsChanged = Signal()
    anchorMoved = Signal(int)
    currentAnchorChanged = Signal(int)
    interpolationChanged = Signal()
    traversalChanged = Signal()

    def __init__(
        self,
        decoder: Decoder,
        parent: QObject | None = None,
        *,
        n_prior: int = PRIOR_POINTS,
        seed: int = 0,
    ) -> None:
        super().__init__(parent)
        self.decoder = decoder
        self.latent_dim = int(decoder.latent_dim)
        self.output_shape = tuple(int(s) for s in decoder.output_shape)
        self.metadata: dict[str, Any] = dict(getattr(decoder, "metadata", None) or {})
        self._prior = lm.prior_samples(n_prior, self.latent_dim, seed)
        self._means: np.ndarray | None = None
        self._logvar: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.label_names: list[str] | None = None
        self._samples: Any = None
        self._sample_indices: np.ndarray | None = None
        self._kl_enc: np.ndarray | None = None
        self._collapsed_enc: list[int] | None = None
        self._anchors: list[np.ndarray] = []
        self._current = 0
        self._mode: Mode = "linear"
        self._steps = 8
        self._trav_columns = 9
        self._trav_limit = 3.0
        self._projection: lm.Projection = self._default_projection()
        self._total_variance = 0.0
        self._points = self._project_cloud()
        self.reset_anchors(emit=False)

    # ------------------------------------------------------------------ the cloud on the map
    @property
    def has_encodings(self) -> bool:
        return self._means is not None

    @property
    def latents(self) -> np.ndarray:
        """The latent vectors behind the map's points: posterior means [N, d], or prior draws."""
        return self._means if self._means is not None else self._prior

    @property
    def logvar(self) -> np.ndarray | None:
        return self._logvar

    @property
    def points(self) -> np.ndarray:
        """Map positions of :attr:`latents`: [N, 2] float32 (computed once per projection)."""
        return self._points

    def set_encodings(
        self,
        means: np.ndarray,
        logvar: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        label_names: Sequence[str] | None = None,
        samples: Any = None,
        sample_indices: np.ndarray | None = None,
    ) -> None:
        """Show encoded data: posterior means [N, d] (never samples), optional log-variances.

        ``labels`` [N] colour the points (names from ``label_names``). ``samples`` gives the data
        rows for showing a point's sample beside its reconstruction: an array [N, ...] or an
        object with ``read(indices)`` (a ``models.data.Dataset``), read at ``sample_indices[k]``
        for point k (default: k).
        """
        means = np.ascontiguousarray(means, dtype=np.float32)
        if means.ndim != 2 or means.shape[1] != self.latent_dim or len(means) == 0:
            raise ValueError(
                f"encodings must be [N, {self.latent_dim}] posterior means, not {means.shape}"
            )
        n = len(means)
        if logvar is not None:
            logvar = np.ascontiguousarray(logvar, dtype=np.float32)
            if logvar.shape != means.shape:
                raise ValueError(f"logvar has shape {logvar.shape}, means {means.shape}")
        if labels is not None:
            labels = np.asarray(labels).astype(np.int64, copy=False).reshape(-1)
            if len(labels) != n:
                raise ValueError(f"{len(labels)} labels for {n} points")
        if sample_indices is not None:
            sample_indices = np.asarray(sample_indices, dtype=np.int64)
            if len(sample_indices) != n:
                raise ValueError(f"{len(sample_indices)} sample indices for {n} points")
        self._means, self._logvar = means, logvar
        self.labels = labels
        if labels is not None and label_names is None:
            label_names = [str(k) for k in range(int(labels.max()) + 1)]
        self.label_names = list(label_names) if label_names is not None else None
        self._samples, self._sample_indices = samples, sample_indices
        self._kl_enc = lm.kl_per_dim(means, logvar) if logvar is not None else None
        self._collapsed_enc = lm.collapsed_dims(means)
        self._projection = self._default_projection()
        self._points = self._project_cloud()
        self.reset_anchors(emit=False)
        self.projectionChanged.emit()
        self.pointsChanged.emit()
        self.anchorsChanged.emit()
        self.currentAnchorChanged.emit(self._current)

    def clear_encodings(self) -> None:
        """Back to the prior's draws (the decoder-only view)."""
        self._means = self._logvar = self.labels = None
        self.label_names = None
        self._samples = self._sample_indices = None
        self._kl_enc = None
        self._collapsed_enc = None
        self._projection = self._default_projection()
        self._points = self._project_cloud()
        self.reset_anchors(emit=False)
        self.projectionChanged.emit()
        self.pointsChanged.emit()
        self.anchorsChanged.emit()
        self.currentAnchorChanged.emit(self._current)

    def sample(self, k: int) -> np.ndarray | None:
        """Data row behind point ``k`` (float, the model's input scale), or None if unknown."""
        if self._samples is None or self._means is None:
            return None
        idx = int(k if self._sample_indices is None else self._sample_indices[k])
        if hasattr(self._samples, "read"):
            return np.asarray(self._samples.read(np.array([idx])))[0]
        return np.asarray(self._samples[idx])

    # ------------------------------------------------------------------ KL and collapse
    @property
    def kl_per_dim(self) -> np.ndarray | None:
        """KL per dimension in nats: from the encodings (with log-variances), else the decoder's
        metadata (``kl_per_dim``), else None (a third-party decoder on its own)."""
        if self._kl_enc is not None:
            return self._kl_enc
        kl = self.metadata.get("kl_per_dim")
        if isinstance(kl, (list, tuple)) and len(kl) == self.latent_dim:
            try:
                return np.asarray(kl, dtype=np.float64)
            except (TypeError, ValueError):
                return None
        return None

    @property
    def collapsed_dims(self) -> list[int]:
        """Collapsed dimensions: from the encodings' activity, else the decoder's metadata."""
        if self._collapsed_enc is not None:
            return list(self._collapsed_enc)
        dims = self.metadata.get("collapsed_dims")
        if isinstance(dims, (list, tuple)):
            return sorted(int(i) for i in dims if isinstance(i, int) and 0 <= i < self.latent_dim)
        return []

    def dims_by_kl(self) -> np.ndarray:
        """All dimensions, most KL first (index order when no KL is known)."""
        return lm.dims_by_kl(self.kl_per_dim, self.latent_dim)

    # ------------------------------------------------------------------ projection
    @property
    def projection(self) -> lm.Projection:
        return self._projection

    @property
    def projection_kind(self) -> str:
        return "pca" if isinstance(self._projection, lm.PCAProjection) else "dims"

    def set_projection_dims(self, x_dim: int, y_dim: int | None) -> None:
        """Show dimensions ``x_dim`` and ``y_dim`` on the map (ValueError if out of range)."""
        self._set_projection(lm.DimPairProjection(self.latent_dim, int(x_dim), y_dim))

    def set_projection_pca(self) -> None:
        """Show the first two principal components of the map's latent vectors."""
        self._set_projection(lm.PCAProjection.fit(self.latents))

    def axis_labels(self, form: int = 0) -> tuple[str, str]:
        """The map's axis names. For PCA each axis gives its share of the TOTAL variance of the
        map's latent vectors (all d dimensions, not only the two shown). ``form`` 1 and 2 are
        shorter ("PC1 (31%)", "PC1") for a small map."""
        proj = self._projection
        if not isinstance(proj, lm.PCAProjection):
            return proj.axis_labels()
        total = self._total_variance or 1.0
        shares = [100.0 * float(v) / total for v in proj.explained_variance]
        forms = (
            lambda i, p: f"PC{i + 1} ({p:.0f}% of the total variance)",
            lambda i, p: f"PC{i + 1} ({p:.0f}%)",
            lambda i, p: f"PC{i + 1}",
        )
        make = forms[min(max(form, 0), len(forms) - 1)]
        return make(0, shares[0]), make(1, shares[1])  # type: ignore[return-value]

    def _set_projection(self, projection: lm.Projection) -> None:
        if isinstance(projection, lm.PCAProjection):
            # Sum of the per-dimension variances, with the estimator PCA uses (n - 1).
            z = np.asarray(self.latents, dtype=np.float64)
            self._total_variance = float(z.var(axis=0, ddof=1).sum()) if len(z) > 1 else 0.0
        self._projection = projection
        self._points = self._project_cloud()
        self.projectionChanged.emit()
        self.pointsChanged.emit()

    def _default_projection(self) -> lm.Projection:
        if self.latent_dim == 1:
            return lm.DimPairProjection(1, 0, None)
        order = self.dims_by_kl()
        return lm.DimPairProjection(self.latent_dim, int(order[0]), int(order[1]))

    def _project_cloud(self) -> np.ndarray:
        return np.ascontiguousarray(self._projection.project(self.latents), dtype=np.float32)

    # ------------------------------------------------------------------ anchors
    @property
    def anchors(self) -> np.ndarray:
        """The anchors' latent vectors: [K, d] float32 (a copy)."""
        return np.stack(self._anchors).astype(np.float32)

    @property
    def n_anchors(self) -> int:
        return len(self._anchors)

    def anchor(self, i: int) -> np.ndarray:
        return self._anchors[i].copy()

    def anchor_position(self, i: int) -> tuple[float, float]:
        x, y = self._projection.project(self._anchors[i])
        return float(x), float(y)

    @property
    def current_anchor(self) -> int:
        return self._current

    def set_current_anchor(self, i: int) -> None:
        if not 0 <= i < len(self._anchors):
            raise IndexError(f"no anchor {i}; there are {len(self._anchors)}")
        if i != self._current:
            self._current = i
            self.currentAnchorChanged.emit(i)

    def reset_anchors(self, emit: bool = True) -> None:
        """Two anchors: on two encoded points (of different labels where there are labels), or
        one standard deviation either side of the origin along the map's first axis."""
        if self._means is not None and len(self._means) > 1:
            first = 0
            second = 1
            if self.labels is not None:
                other = np.flatnonzero(self.labels != self.labels[0])
                if len(other):
                    second = int(other[0])
            self._anchors = [self._means[first].copy(), self._means[second].copy()]
        else:
            zero = np.zeros(self.latent_dim, dtype=np.float32)
            self._anchors = [
                self._projection.unproject((-1.0, 0.0), zero),
                self._projection.unproject((1.0, 0.0), zero),
            ]
        self._current = 0
        if emit:
            self.anchorsChanged.emit()
            self.currentAnchorChanged.emit(0)

    def add_anchor(
        self, z: np.ndarray | None = None, xy: Sequence[float] | None = None
    ) -> int:
        """Add an anchor at latent ``z``, or at map position ``xy`` with the current anchor's
        hidden coordinates, or (neither) a copy of the current anchor. It becomes current."""
        base = self._anchors[self._current] if self._anchors else np.zeros(self.latent_dim)
        if z is not None:
            new = self._checked(z)
        elif xy is not None:
            new = self._projection.unproject(xy, base)
        else:
            new = np.array(base, dtype=np.float32)
        self._anchors.append(new)
        self._current = len(self._anchors) - 1
        self.anchorsChanged.emit()
        self.currentAnchorChanged.emit(self._current)
        return self._current

    def remove_anchor(self, i: int) -> bool:
        """Remove anchor ``i``; the last remaining anchor stays (returns False)."""
        if not 0 <= i < len(self._anchors):
            raise IndexError(f"no anchor {i}; there are {len(self._anchors)}")
        if len(self._anchors) == 1:
            return False
        del self._anchors[i]
        if self._current >= len(self._anchors) or self._current > i:
            self._current = max(0, self._current - 1)
        self.anchorsChanged.emit()
        self.currentAnchorChanged.emit(self._current)
        return True

    def move_anchor(self, i: int, xy: Sequence[float]) -> None:
        """Put anchor ``i`` at map position ``xy``; its hidden coordinates stay."""
        self._anchors[i] = self._projection.unproject(xy, self._anchors[i])
        self.anchorMoved.emit(i)

    def set_anchor_latent(self, i: int, z: np.ndarray) -> None:
        self._anchors[i] = self._checked(z)
        self.anchorMoved.emit(i)

    def set_anchor_dim(self, i: int, dim: int, value: float) -> None:
        """Set one coordinate of anchor ``i`` (a slider)."""
        if float(self._anchors[i][dim]) == float(np.float32(value)):
            return
        self._anchors[i][dim] = value
        self.anchorMoved.emit(i)

    def _checked(self, z: np.ndarray) -> np.ndarray:
        z = np.array(z, dtype=np.float32).reshape(-1)
        if z.shape != (self.latent_dim,) or not np.isfinite(z).all():
            raise ValueError(f"an anchor is a finite vector of size {self.latent_dim}")
        return z

    # ------------------------------------------------------------------ interpolation
    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def steps(self) -> int:
        """Images per segment between consecutive anchors, both anchors included."""
        return self._steps

    def set_mode(self, mode: Mode) -> None:
        if mode not in ("linear", "spherical"):
            raise ValueError(f"mode must be 'linear' or 'spherical', not {mode!r}")
        if mode != self._mode:
            self._mode = mode
            self.interpolationChanged.emit()

    def set_steps(self, steps: int) -> None:
        if steps < 2:
            raise ValueError(f"steps must be at least 2, not {steps}")
        if steps != self._steps:
            self._steps = int(steps)
            self.interpolationChanged.emit()

    def path_latents(self) -> np.ndarray:
        """Latents along the path through all anchors in order: [(K-1)(steps-1)+1, d]."""
        return lm.interpolate_path(np.stack(self._anchors), self._steps, self._mode)

    def anchor_rows(self) -> list[int]:
        """Rows of :meth:`path_latents` that are the anchors themselves."""
        return lm.anchor_rows(len(self._anchors), self._steps)

    # ------------------------------------------------------------------ traversal
    @property
    def traversal_columns(self) -> int:
        return self._trav_columns

    @property
    def traversal_limit(self) -> float:
        return self._trav_limit

    def set_traversal(self, columns: int | None = None, limit: float | None = None) -> None:
        """Columns per row and the range [-limit, limit] each dimension sweeps."""
        columns = self._trav_columns if columns is None else int(columns)
        limit = self._trav_limit if limit is None else float(limit)
        if columns < 2 or not limit > 0:
            raise ValueError(f"a traversal needs 2+ columns and a positive range ({columns}, {limit})")
        if (columns, limit) != (self._trav_columns, self._trav_limit):
            self._trav_columns, self._trav_limit = columns, limit
            self.traversalChanged.emit()

    def traversal_dims(self) -> np.ndarray:
        """The traversal's rows: dimensions, most KL first (at most ``MAX_TRAVERSAL_ROWS``)."""
        return self.dims_by_kl()[:MAX_TRAVERSAL_ROWS]

    def traversal_values(self) -> np.ndarray:
        return lm.prior_values(self._trav_columns, self._trav_limit)

    def traversal_latents(self) -> np.ndarray:
        """[rows * columns, d]: row r sweeps ``traversal_dims()[r]``, others at the current anchor."""
        return lm.traversal_latents(
            self._anchors[self._current], self.traversal_dims(), self.traversal_values()
        )
