"""Export a VAE's decoder (and encoder) to ONNX, with metadata, verified before it is kept.

The decoder maps z [N, latent_dim] (float32) to the mean of p(x|z) in the data's own shape:
probabilities for a Bernoulli likelihood, means for a Gaussian one. The encoder maps
x [N, *data_shape] to the posterior's parameters ``mu`` and ``logvar`` (not a sample). Both have
a dynamic batch axis named ``batch`` and use opset :data:`OPSET`.

Every export is checked before it is declared a success: the written file is run in
onnxruntime on random inputs and edge cases (batch 1, batch 1024, zeros, large-magnitude latents)
and compared with torch. If any output differs by more than ``atol`` (scaled by the output's
magnitude where it exceeds 1), :class:`~models.errors.ExportError` is raised and no file is left
behind; an existing file is replaced only by a verified export (temporary file in the same
directory, then ``os.replace``).

Metadata (``metadata_props``, keys ``latent_explorer.<name>``, values JSON) is documented in
``docs/onnx.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from models.io import atomic
from models.io.atomic import temp_prefix, write_temp_beside
from models.errors import ExportError, ModelFileError, first_line
from models.io.onnx_runtime import _open_session
from models.io.onnx_checks import CHECKSUM_KEY, content_sha256
from models.io.onnx_metadata import metadata_props
from models.nn.vae import VAE, DecoderMean, EncoderParams

#: The ONNX opset written, requested explicitly from the torch exporter (torch 2.13's default; an
#: exporter whose op library targets another opset converts the graph with onnxscript's version
#: converter, and the verification below runs on the converted file either way). The files carry
#: ONNX IR version 10, which onnxruntime reads from 1.18 on (1.17 stops at IR version 9).
OPSET = 20
#: Tolerance of the verification (absolute; relative for outputs larger than 1).
ATOL = 1e-4

Role = Literal["decoder", "encoder"]

#: torch's exporter keeps process-wide state (torch.export, dynamo): two exports at once from two
#: threads (File > Export and the latent explorer's export of the current run) fail. They take turns.
_EXPORT_LOCK = threading.Lock()

DECODER_INPUT, DECODER_OUTPUT = "z", "x_mean"
ENCODER_INPUT, ENCODER_OUTPUTS = "x", ("mu", "logvar")


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how well it verified."""

    path: str
    role: Role
    opset: int
    bytes: int
    n_checked: int  # inputs run through both torch and onnxruntime
    max_abs_diff: float  # largest |onnxruntime - torch| over all checked outputs
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.role} -> {self.path} ({self.bytes / 1e6:.2f} MB, opset {self.opset}); "
            f"verified on {self.n_checked} inputs, max |onnxruntime - torch| = {self.max_abs_diff:.2e}"
        )


# --------------------------------------------------------------------------- export
@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The torch exporter logs and warns about things that are not the user's business
    (missing torchvision, deprecations inside torch); keep the terminal quiet."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _to_onnx(module: nn.Module, example: torch.Tensor, input_name: str, output_names: list[str],
             opset: int):
    with _quiet_exporter():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[input_name],
            output_names=output_names,
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            external_data=False,
            verbose=False,
            optimize=True,
        )
    return program.model_proto


def _decoder_checks(latent_dim: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    d = latent_dim
    big = rng.standard_normal((16, d)) * 10.0  # far outside the prior's typical set
    big[0] = 50.0
    big[1] = -50.0
    return [
        rng.standard_normal((1, d)),  # one dragged point
        np.zeros((1, d)),
        rng.standard_normal((64, d)),  # an interpolation strip
        rng.standard_normal((1024, d)),  # a large batch
        big,
    ]


def _encoder_checks(data_shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.random((1, *data_shape)),
        np.zeros((1, *data_shape)),
        np.ones((3, *data_shape)),
        (rng.random((64, *data_shape)) > 0.5).astype(np.float64),
        rng.random((256, *data_shape)),
    ]


def _verify(path: str, module: nn.Module, inputs: list[np.ndarray], atol: float) -> tuple[int, float]:
    """Run the file in onnxruntime and the module in torch on the same inputs; return
    (n inputs, max abs diff) or raise ExportError naming the worst case."""
    try:
        _, session = _open_session(path, threads=None)
    except ModelFileError as exc:
        raise ExportError(f"the exported file does not load in onnxruntime: {exc}") from None
    in_name = session.get_inputs()[0].name
    out_names = [o.name for o in session.get_outputs()]
    worst, n = 0.0, 0
    for x in inputs:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        with torch.inference_mode():
            ref = module(torch.from_numpy(x32))
        refs = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
        try:
            got = session.run(out_names, {in_name: x32})
        except Exception as exc:
            raise ExportError(f"onnxruntime failed on a batch of {len(x32)}: {exc}".splitlines()[0]) from None
        for name, r, g in zip(out_names, refs, got):
            if r.shape != g.shape:
                raise ExportError(
                    f"output '{name}' has shape {list(g.shape)} in onnxruntime but "
                    f"{list(r.shape)} in torch (batch {len(x32)})"
                )
            if not np.array_equal(np.isfinite(r), np.isfinite(g)):
                raise ExportError(f"output '{name}' is finite in one runtime only (batch {len(x32)})")
            fin = np.isfinite(r)
            diff = np.abs(g[fin].astype(np.float64) - r[fin])
            scale = np.maximum(1.0, np.abs(r[fin]))
            if diff.size:
                worst = max(worst, float(diff.max()))
                excess = diff / scale
                if float(excess.max()) >= atol:
                    raise ExportError(
                        f"output '{name}' differs from torch by {float(diff.max()):.3g} "
                        f"(tolerance {atol:g}) on a batch of {len(x32)}"
                    )
        n += len(x32)
    return n, worst


def _write_failure(path: str, exc: OSError) -> ExportError:
    """An OSError while writing, as an ExportError naming the target, not the temporary file."""
    return ExportError(f"{path}: cannot write it ({exc.strerror or exc})")


def check_target(path: str | os.PathLike, overwrite: bool) -> None:
    """Raise ExportError unless ``path`` can be written (``models.io.atomic.check_target``)."""
    atomic.check_target(path, overwrite, ExportError)


@dataclass
class PendingExport:
    """A verified export in a temporary file beside its target, not yet in place: put it there
    with :func:`commit_exports`, or drop it with :meth:`discard`."""

    path: str
    tmp: str
    report: ExportReport

    def discard(self) -> None:
        """Remove the temporary file (nothing happens once it has been committed)."""
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def check_finite(module: nn.Module, path: str, role: Role) -> None:
    """ExportError naming the first weight of ``module`` that holds a NaN or an infinity."""
    for name, t in module.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ExportError(f"{path}: the {role}'s weight {name} is not finite (NaN or infinite); "
                              "nothing written")


def prepare_export(vae: VAE, path: str | os.PathLike, metadata: Mapping[str, Any] | None,
                   role: Role, *, overwrite: bool = False, atol: float = ATOL, opset: int = OPSET,
                   seed: int = 0) -> PendingExport:
    """Export and verify ``vae``'s decoder or encoder into a temporary file beside ``path``.

    Raises ExportError, and leaves no temporary file, if the target cannot be written, the export
    fails or the file does not verify. The target itself is not touched.
    """
    t0 = time.perf_counter()
    path = os.fspath(path)
    check_target(path, overwrite)  # before the slow export
    # A CPU copy (the caller's model, maybe on CUDA or in training mode, is left untouched).
    model = VAE(vae.config)
    model.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in vae.state_dict().items()})
    model.eval()
    cfg = model.config
    if role == "decoder":
        module: nn.Module = DecoderMean(model).eval()
        example = torch.randn(2, cfg.latent_dim, generator=torch.Generator().manual_seed(seed))
        in_name, out_names = DECODER_INPUT, [DECODER_OUTPUT]
        checks = _decoder_checks(cfg.latent_dim, seed)
    else:
        module = EncoderParams(model).eval()
        example = torch.rand(2, *cfg.data_shape, generator=torch.Generator().manual_seed(seed))
        in_name, out_names = ENCODER_INPUT, list(ENCODER_OUTPUTS)
        checks = _encoder_checks(cfg.data_shape, seed)
    props = metadata_props(model, role, metadata)
    check_finite(module, path, role)  # a model of NaN weights decodes to NaN: never write one

    try:
        with _EXPORT_LOCK:
            proto = _to_onnx(module, example, in_name, out_names, opset)
    except ExportError:
        raise
    except Exception as exc:  # the exporter's own failure: report it in one line
        first = first_line(exc)
        raise ExportError(f"{path}: torch could not export the {role} ({first[:200]})") from None
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    entry = proto.metadata_props.add()  # the graph's checksum: damage is reported as damage
    entry.key, entry.value = CHECKSUM_KEY, json.dumps(content_sha256(proto.graph.SerializeToString(), props))
    proto.doc_string = (
        f"Latent Explorer {role}: "
        + ("z [N, latent_dim] -> mean of p(x|z) [N, *data_shape]" if role == "decoder"
           else "x [N, *data_shape] -> (mu, logvar) of q(z|x), each [N, latent_dim]")
    )
    try:
        data = proto.SerializeToString()
    except ValueError as exc:  # protobuf's 2 GB limit; our decoders are megabytes
        raise ExportError(f"{path}: the {role} is too large for a single ONNX file ({exc})") from None

    try:
        tmp = write_temp_beside(path, data, fsync=True)
    except OSError as exc:
        raise _write_failure(path, exc) from None
    try:
        n, worst = _verify(tmp, module, [c for c in checks], atol)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, ExportError):
            raise ExportError(f"{path}: verification failed, nothing written: {exc}") from None
        raise
    report = ExportReport(path, role, opset, len(data), n, worst, time.perf_counter() - t0)
    return PendingExport(path, tmp, report)


def commit_exports(pending: Sequence[PendingExport]) -> list[ExportReport]:
    """Move verified exports into place, all or none: if one cannot be renamed over its target,
    those already moved are put back as they were (a target that existed gets its old bytes back
    from a copy taken first; one that did not is removed) and ExportError names the target.
    Temporary files are removed in every case."""
    done: list[tuple[PendingExport, str | None]] = []
    backups: list[str] = []
    current: PendingExport | None = None
    try:
        for i, p in enumerate(pending):
            current = p
            backup = None
            if i < len(pending) - 1 and os.path.exists(p.path):  # a later rename may still fail
                parent = os.path.dirname(os.path.abspath(p.path))
                fd, backup = tempfile.mkstemp(dir=parent, prefix=temp_prefix(p.path), suffix=".bak")
                os.close(fd)
                backups.append(backup)
                shutil.copy2(p.path, backup)
            os.replace(p.tmp, p.path)
            done.append((p, backup))
    except BaseException as exc:  # an OSError, or Ctrl-C between two renames
        for p, backup in reversed(done):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, p.path)
                else:
                    os.unlink(p.path)
        if isinstance(exc, OSError) and current is not None:
            raise _write_failure(current.path, exc) from None
        raise
    finally:
        for p in pending:
            p.discard()
        for backup in backups:
            with contextlib.suppress(OSError):
                os.unlink(backup)
    return [p.report for p in pending]


def _export(vae: VAE, path: str | os.PathLike, metadata: Mapping[str, Any] | None, role: Role, *,
            overwrite: bool, atol: float, opset: int, seed: int) -> ExportReport:
    pending = prepare_export(vae, path, metadata, role, overwrite=overwrite, atol=atol,
                             opset=opset, seed=seed)
    return commit_exports([pending])[0]


def export_decoder(vae: VAE, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None,
                   *, overwrite: bool = False, atol: float = ATOL, opset: int = OPSET,
                   seed: int = 0) -> ExportReport:
    """Export ``vae``'s decoder, z [N, latent_dim] -> mean of p(x|z) [N, *data_shape], to ``path``.

    ``metadata`` adds run-level entries (e.g. from :func:`metadata_from_run`); the model's own
    fields (latent_dim, data_shape, likelihood, ...) are filled in from ``vae``. Raises
    ExportError (and leaves no file) if the export fails or does not verify within ``atol``.
    """
    return _export(vae, path, metadata, "decoder", overwrite=overwrite, atol=atol, opset=opset,
                   seed=seed)


def export_encoder(vae: VAE, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None,
                   *, overwrite: bool = False, atol: float = ATOL, opset: int = OPSET,
                   seed: int = 0) -> ExportReport:
    """Export ``vae``'s encoder, x [N, *data_shape] -> (mu, logvar) [N, latent_dim] each, to
    ``path``; same metadata, verification and atomicity as :func:`export_decoder`."""
    return _export(vae, path, metadata, "encoder", overwrite=overwrite, atol=atol, opset=opset,
                   seed=seed)
