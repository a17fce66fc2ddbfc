"""Background work for the explorer: a run's decoder to ONNX, and its data to posterior means.

The work is plain Python that reports progress through callbacks and checks a stop flag between
batches (:func:`encode_rows`, :func:`load_run_for_exploring`); :func:`load_run_task` and
:func:`encode_task` are the same as task functions (``explorer.tasks``), which the panel runs
with a ``Task``. Nothing here touches a Qt object. torch is imported only inside the functions that need a torch model, so the
decoder-only path never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from models.errors import DataError

from ..tasks import Cancelled, TaskState
from .cache import RunCache, cache_key

#: Rows encoded per batch.
BATCH = 1000


class Encoder(Protocol):
    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class Encodings:
    """Posterior means (never samples) and log-variances of data rows, with what they are."""

    means: np.ndarray  # [N, d] float32
    logvar: np.ndarray  # [N, d] float32
    indices: np.ndarray  # [N] rows of the data set
    labels: np.ndarray | None = None  # [N] int64
    label_names: list[str] | None = None
    samples: np.ndarray | None = None  # [N, *data_shape] the encoded model inputs
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class TorchEncoder:
    """``encode(x) -> (mu, logvar)`` numpy, through a torch VAE (on its own device, no grad)."""

    def __init__(self, vae: Any) -> None:
        self.vae = vae.eval()

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.no_grad():
            xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.vae.device)
            mu, logvar = self.vae.encode(xt)
        return mu.cpu().numpy(), logvar.cpu().numpy()


def encode_rows(
    encoder: Encoder,
    x: np.ndarray,
    batch_size: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of the rows of ``x``, in batches.

    Calls ``progress(done, total)`` after each batch and raises :class:`Cancelled` when
    ``should_stop()`` turns true between batches.
    """
    n = len(x)
    means: list[np.ndarray] = []
    logvars: list[np.ndarray] = []
    for start in range(0, n, batch_size):
        if should_stop is not None and should_stop():
            raise Cancelled()
        mu, lv = encoder.encode(x[start : start + batch_size])
        means.append(np.asarray(mu, dtype=np.float32))
        logvars.append(np.asarray(lv, dtype=np.float32))
        if progress is not None:
            progress(min(n, start + batch_size), n)
    if not means:
        raise DataError("there are no rows to encode")
    return np.concatenate(means), np.concatenate(logvars)


def load_run_for_exploring(
    run_path: str,
    decoder_path: str,
    *,
    which: str = "validation",
    on_decoder: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache: RunCache | None = None,
) -> Encodings:
    """Export a run's decoder and encode its data: what the explorer shows for a trained run.

    With a ``cache`` (:class:`~explorer.latent.cache.RunCache`), a run explored before, unchanged
    since, is read back from it (``extra["cached"]`` is True) and neither exported nor encoded;
    a new one is stored there after it is encoded.

    1. Export the decoder of the run file's last saved weights, with the run's metadata, to
       ``decoder_path`` (verified against torch), in a child process
       (:func:`explorer.jobs.export.export_run_decoder`): the ONNX exporter must never trace in
       the app's process while a run may be training in another of its threads.
       ``on_decoder(decoder_path)`` is called as soon as it is written. Then load the same
       weights here (``RunReader.load_model``) to encode.
    2. Read the run's data set, its validation rows (``which="validation"``) or every row
       (``"all"``), made model-ready as for validation, and encode them in batches.
    """
    from explorer.jobs.export import export_run_decoder
    from models.data import validation_rows
    from models.io.runfile import RunReader
    from models.training.devices import default_device

    key = cache_key(run_path, which) if cache is not None else ""
    if cache is not None:
        hit = cache.load(key)
        if hit is not None:
            if on_decoder is not None:
                on_decoder(cache.decoder_path(key))
            return Encodings(**hit, extra={"cached": True})
    with RunReader(run_path) as reader:
        vae = reader.load_model(default_device())
        export_run_decoder(run_path, decoder_path, should_stop=should_stop)
        if on_decoder is not None:
            on_decoder(decoder_path)
        if should_stop is not None and should_stop():
            raise Cancelled()
        # the validation rows (or every row) as the trainer made them model-ready
        got = validation_rows(reader, every_row=which == "all")
    x, rows, dataset = got.x.astype(np.float32, copy=False), got.indices, got.dataset
    what = got.description
    means, logvar = encode_rows(TorchEncoder(vae), x, BATCH, progress, should_stop)
    labels = None if dataset.labels is None else np.asarray(dataset.labels)[rows].astype(np.int64)
    enc = Encodings(
        means=means,
        logvar=logvar,
        indices=rows,
        labels=labels,
        label_names=dataset.label_names,
        samples=x,
        description=what,
        extra={"cached": False},
    )
    if cache is not None:
        try:
            cache.store(key, decoder_path, means=means, logvar=logvar, indices=rows, samples=x,
                        labels=labels, label_names=enc.label_names, description=what)
        except OSError:
            pass  # a full or read-only cache folder: explored all the same, exported next time
    return enc


# --------------------------------------------------------------------------- tasks
@dataclass
class DecoderReady:
    """Partial result of :func:`load_run_task`: the exported decoder is on disk."""

    path: str


def load_run_task(state: TaskState, run_path: str, decoder_path: str,
                  which: str = "validation", cache: RunCache | None = None) -> Encodings:
    """The task: :func:`load_run_for_exploring`, its decoder a partial result
    (:class:`DecoderReady`), its encoding's progress, cancelled between batches."""
    return load_run_for_exploring(
        run_path,
        decoder_path,
        which=which,
        on_decoder=lambda path: state.set_partial_result(DecoderReady(path)),
        progress=state.set_progress,
        should_stop=state.is_interruption_requested,
        cache=cache,
    )


def encode_task(state: TaskState, encoder: Encoder, x: np.ndarray,
                batch_size: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """The task: :func:`encode_rows` with any :class:`Encoder` (e.g. ``models.io.onnx_runtime.OnnxEncoder``),
    progress per batch, cancelled between batches."""
    return encode_rows(encoder, x, batch_size, state.set_progress, state.is_interruption_requested)


def temp_decoder_path(folder: str, run_path: str) -> str:
    """Where the explorer keeps the decoder it exports from ``run_path``."""
    stem = os.path.splitext(os.path.basename(run_path))[0] or "run"
    return os.path.join(folder, f"{stem}-decoder.onnx")
