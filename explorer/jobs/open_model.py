"""Opening a model trained elsewhere (an ONNX encoder/decoder pair) on a data set, as tasks.

:func:`open_model_task` opens the pair and the data and encodes the rows
(``models.io.pair_diagnosis.open_model``), then diagnoses them in one pass (K = 1 draw of z per
row: the distortion, the rate, the KL per dimension, I(X;Z) with its ceiling, the verdict);
:func:`diagnose_model_task` is *Diagnose now* for such a model (the IWAE bound with K draws, the
gap, bits/dim). Both report progress per batch and stop between batches. Nothing here touches a
Qt object; torch is never imported.

:class:`PairDecoder` is the pair's decoder as the latent explorer wants one: the mean of
p(x|z) mapped to [0, 1] for display, and uint8 images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..state.external import ModelRequest
from ..tasks import Cancelled, TaskState

#: The first pass draws one z per row: enough for D and R, not for the gap (Diagnose now).
FIRST_PASS_K = 1


class PairDecoder:
    """``decode``/``decode_uint8`` of an ``OnnxPair`` for the latent explorer.

    The display range is (0, 1) for a Bernoulli likelihood (probabilities); for a Gaussian, the
    0.5th to 99.5th percentiles of the diagnosed rows (the data's own range, so a decoded mean
    and a data row show on one scale)."""

    def __init__(self, pair: Any, rows: np.ndarray, kl_per_dim: list[float] | None = None,
                 collapsed_dims: list[int] | None = None) -> None:
        from models.io.onnx_runtime import image_shape

        self.pair = pair
        self.path = pair.decoder_path
        self.latent_dim = int(pair.latent_dim)
        self.output_shape = tuple(int(s) for s in pair.data_shape)
        self.image_shape = image_shape(self.output_shape)
        lo, hi = 0.0, 1.0
        if pair.likelihood != "bernoulli" and rows.size:
            lo, hi = (float(v) for v in np.percentile(rows, [0.5, 99.5]))
            if not hi > lo:
                lo, hi = lo - 0.5, lo + 0.5
        self.display_range = (lo, hi)
        self.metadata: dict[str, Any] = {}
        if kl_per_dim is not None:
            self.metadata["kl_per_dim"] = list(kl_per_dim)
        if collapsed_dims is not None:
            self.metadata["collapsed_dims"] = list(collapsed_dims)

    def _means(self, z: Any) -> tuple[np.ndarray, bool]:
        arr = np.asarray(z, dtype=np.float32)
        single = arr.ndim == 1
        arr = arr.reshape(1, -1) if single else arr
        out = np.array(self.pair.decode(np.ascontiguousarray(arr)), dtype=np.float32)
        return out.reshape(len(arr), *self.output_shape), single

    def decode(self, z: Any) -> np.ndarray:
        """Display-ready float32 values in [0, 1]; [N, *output_shape] (or one sample for z [d])."""
        from models.io.onnx_runtime import to_display

        out, single = self._means(z)
        out = to_display(out, self.display_range)
        return out[0] if single else out

    def decode_uint8(self, z: Any) -> np.ndarray:
        """Display-ready uint8 images [N, *image_shape] (or one image for z [d])."""
        from models.io.onnx_runtime import grey_levels

        out, single = self._means(z)
        img = grey_levels(out, self.display_range, self.output_shape)
        return img[0] if single else img


@dataclass
class OpenedModel:
    """What :func:`open_model_task` hands back to the GUI thread: plain data and ONNX sessions."""

    request: ModelRequest
    model: Any  # models.io.pair_diagnosis.PairModel
    decoder: PairDecoder
    diagnosis: dict  # Diagnosis.to_json_dict() of the K = 1 pass
    label_names: list[str] | None
    description: str


def _options(request: ModelRequest):
    from models.io.onnx_pair import PairOptions

    return PairOptions(likelihood=request.likelihood, decoder_output=request.decoder_output,
                       encoder_scale=request.encoder_scale, obs_std=request.obs_std)


def open_model_task(state: TaskState, request: ModelRequest) -> OpenedModel:
    """Open, encode and diagnose once (K = 1); progress: encoding, then the diagnosis pass."""
    from models.io.pair_diagnosis import DiagnosisStopped, open_model

    def halves(offset: int):
        return lambda done, total: state.set_progress(offset * total + done, 2 * total)

    try:
        model = open_model(request.encoder, request.decoder, request.data, labels=request.labels,
                           options=_options(request), max_samples=request.max_samples,
                           progress=halves(0), should_stop=state.is_interruption_requested)
        diagnosis = model.diagnose(FIRST_PASS_K, progress=halves(1),
                                   should_stop=state.is_interruption_requested).to_json_dict()
    except DiagnosisStopped:
        raise Cancelled() from None
    decoder = PairDecoder(model.pair, model.x, diagnosis["kl_per_dim"], diagnosis["collapsed_dims"])
    return OpenedModel(request, model, decoder, diagnosis, model.dataset.label_names, model.source)


def diagnose_model_task(state: TaskState, model: Any, iw_samples: int, max_samples: int = 0,
                        seed: int = 0) -> dict:
    """*Diagnose now* for an opened model: ``models.io.pair_diagnosis.diagnose_pair`` with K
    importance samples on ``max_samples`` of its rows (0: all; a seeded subset otherwise)."""
    from models.data.preprocessing import subset
    from models.io.pair_diagnosis import DiagnosisStopped, diagnose_pair, dequantizes

    rows, _note = subset(len(model.x), int(max_samples) or None, seed)
    try:
        d = diagnose_pair(model.pair, model.x[rows], iw_samples=int(iw_samples), seed=seed,
                          progress=state.set_progress, should_stop=state.is_interruption_requested,
                          dequantized=dequantizes(model.pair, model.dataset))
    except DiagnosisStopped:
        raise Cancelled() from None
    return d.to_json_dict()
