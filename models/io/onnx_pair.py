"""A VAE given as two ONNX files, an encoder and a decoder, run by onnxruntime alone (no torch).

The encoder takes one float input ``x``, [N, *data_shape] or flat [N, D], and gives the
posterior's mean and spread [N, d]: the outputs named ``mu`` and ``logvar`` (or ``log_std``,
``std``), else the first two outputs in order. ``encoder_scale`` says what the second one is
(``logvar``, ``log_std`` or ``std``); by default its name says, else ``logvar``.

The decoder takes one float input ``z`` [N, d] and gives, for a Bernoulli likelihood, logits or
probabilities (``decoder_output``; logits are the numerically sound choice: a float32
probability saturates at 1 for logits above about 16.6, and ``log(1 - p)`` is then lost; here
probabilities are clipped into [tiny, 1 - 2**-24]), or, for a Gaussian likelihood, the mean. A
Gaussian's sigma is ``obs_std`` (an option, or our metadata), or a second decoder output named
``std``/``sigma``/``obs_std`` (sigma), ``log_std``/``log_sigma`` (log sigma) or ``logvar``
(log sigma squared), per value or one for all.

Our own exports (``models.io.onnx_export``) carry all of this in their ``latent_explorer.*``
metadata, so a pair we exported needs no options; ``onnx_partner.find_partner`` finds the other file of
such a pair beside the one given (by name, then among the ``.onnx`` files of that folder; only
files in that folder are opened, never a file a model's metadata names).

:func:`open_pair` checks the two files against each other when it opens them, and
:meth:`OnnxPair.check_data` against the data: every mismatch is one ``ModelFileError`` line
naming both files (or the file and the data) and both shapes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from models.errors import DataError, ModelFileError
from models.io.onnx_runtime import _FLOAT_TYPES, _dims, _fmt_shape, _open_session, _short, parse_metadata

Likelihood = Literal["bernoulli", "gaussian"]
DecoderOutput = Literal["probabilities", "logits", "mean"]
EncoderScale = Literal["logvar", "log_std", "std"]
LIKELIHOODS = ("bernoulli", "gaussian")
DECODER_OUTPUTS = ("probabilities", "logits", "mean")
ENCODER_SCALES = ("logvar", "log_std", "std")

_MEAN_NAMES = ("mu", "mean", "z_mean", "loc")
#: Output names that say what a spread is: the encoder's second output, the decoder's second.
_SCALE_NAMES = {
    "logvar": "logvar", "log_var": "logvar", "z_log_var": "logvar",
    "log_std": "log_std", "logstd": "log_std", "log_sigma": "log_std", "obs_log_std": "log_std",
    "std": "std", "sigma": "std", "scale": "std", "obs_std": "std",
}
#: Probabilities are clipped into [tiny, 1 - 2**-24] before their log: float32 cannot say more.
_P_MIN, _P_MAX = float(np.finfo(np.float32).tiny), 1.0 - 2.0**-24
_LOG_2PI = math.log(2.0 * math.pi)
_PROBE_N, _PROBE_SEED = 16, 0


@dataclass(frozen=True)
class PairOptions:
    """What a pair without our metadata cannot say itself; ``None`` means "from the files"."""

    likelihood: Likelihood | None = None
    decoder_output: DecoderOutput | None = None
    encoder_scale: EncoderScale | None = None
    obs_std: float | None = None


class _Graph:
    """One ONNX file's session, its float input and its outputs, fixed batch handled."""

    def __init__(self, path: str | os.PathLike, role: str, threads: int | None) -> None:
        self.path, self.session = _open_session(path, threads)
        self.role = role
        self.metadata = parse_metadata(dict(self.session.get_modelmeta().custom_metadata_map))
        inputs, self.outputs = self.session.get_inputs(), self.session.get_outputs()
        want = "one latent matrix z [N, d]" if role == "decoder" else "one data input x [N, ...]"
        if len(inputs) != 1:
            raise ModelFileError(f"{self.path}: the {role} has {len(inputs)} inputs; it takes {want}")
        inp = inputs[0]
        self.in_shape = _dims(inp.shape or [])
        if inp.type not in _FLOAT_TYPES or len(self.in_shape) < 2:
            raise ModelFileError(
                f"{self.path}: the {role}'s input '{inp.name}' is {inp.type} "
                f"{_fmt_shape(self.in_shape)}; it takes {want} of floats"
            )
        if not self.outputs:
            raise ModelFileError(f"{self.path}: the {role} has no outputs")
        for out in self.outputs:
            if out.type not in _FLOAT_TYPES:
                raise ModelFileError(
                    f"{self.path}: the {role}'s output '{out.name}' is {out.type}, not numbers"
                )
        self.in_name, self.in_dtype = inp.name, _FLOAT_TYPES[inp.type]
        b = self.in_shape[0]
        self.fixed_batch = b if isinstance(b, int) and b > 0 else None

    def fixed(self, output: int) -> tuple[int, ...] | None:
        """The per-sample shape of an output when the graph fixes it, else None."""
        shape = _dims(self.outputs[output].shape or [])
        if len(shape) >= 1 and all(isinstance(s, int) for s in shape[1:]):
            return tuple(int(s) for s in shape[1:])
        return None

    def run(self, names: list[str], arr: np.ndarray) -> list[np.ndarray]:
        arr = np.ascontiguousarray(arr, dtype=self.in_dtype)
        b, n = self.fixed_batch, arr.shape[0]
        if b is not None and n != b:  # a graph with a fixed batch size: run in padded chunks
            pad = np.zeros((-(-n // b) * b, *arr.shape[1:]), dtype=arr.dtype)
            pad[:n] = arr
            parts = [self.run(names, pad[i : i + b]) for i in range(0, len(pad), b)]
            return [np.concatenate(p)[:n] for p in zip(*parts)]
        try:
            outs = self.session.run(names, {self.in_name: arr})
        except Exception as exc:  # onnxruntime's own pybind error types
            raise ModelFileError(f"{self.path}: onnxruntime failed to run the {self.role} "
                                 f"({_short(exc)})") from None
        for name, out in zip(names, outs):
            if not isinstance(out, np.ndarray) or out.dtype.kind != "f" or out.shape[:1] != (n,):
                got = list(getattr(out, "shape", [])) if isinstance(out, np.ndarray) else type(out).__name__
                raise ModelFileError(
                    f"{self.path}: the {self.role}'s output '{name}' is {got} for a batch of {n}; "
                    f"expected [{n}, ...] numbers"
                )
        return outs


def _choice(value: Any, allowed: tuple[str, ...], what: str, path: str) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise ModelFileError(f"{path}: {what} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


class OnnxPair:
    """An encoder and a decoder that make one VAE; see the module docstring and :func:`open_pair`.

    Attributes: ``encoder_path``, ``decoder_path``, ``latent_dim``, ``data_shape`` (the decoder's
    per-sample output shape), ``likelihood``, ``decoder_output``, ``encoder_scale``, ``obs_std``
    (a float, or None when sigma is the decoder's second output), ``sigma_source`` (words),
    ``ours`` (both files carry our metadata), ``encoder_metadata``, ``decoder_metadata``.
    """

    def __init__(self, encoder: str | os.PathLike, decoder: str | os.PathLike,
                 options: PairOptions = PairOptions(), threads: int | None = None) -> None:
        self._enc = _Graph(encoder, "encoder", threads)
        self._dec = _Graph(decoder, "decoder", threads)
        self.encoder_path, self.decoder_path = self._enc.path, self._dec.path
        self.encoder_metadata, self.decoder_metadata = self._enc.metadata, self._dec.metadata
        self.ours = "format_version" in self._enc.metadata and "format_version" in self._dec.metadata
        self._pick_encoder_outputs(options)
        self._check_decoder_input()
        self._pick_likelihood(options)
        self.data_shape = self._decoder_shape()
        self._check_outputs_make_sense()

    # ------------------------------------------------------------------ opening
    def _pick_encoder_outputs(self, options: PairOptions) -> None:
        enc, names = self._enc, [o.name for o in self._enc.outputs]
        for graph, role in ((enc, "encoder"), (self._dec, "decoder")):
            said = graph.metadata.get("role")
            if said in ("encoder", "decoder") and said != role:
                raise ModelFileError(f"{graph.path}: its metadata says it is the {said}; give it "
                                     f"as --{said}")
        if len(names) < 2:
            raise ModelFileError(
                f"{enc.path}: the encoder has {len(names)} output; it needs two, the posterior's "
                "mean and log-variance (mu, logvar)"
            )
        mean = next((n for n in names if n.lower() in _MEAN_NAMES), None)
        scale = next((n for n in names if n.lower() in _SCALE_NAMES and n != mean), None)
        if mean is None or scale is None:
            if len(names) > 2:
                raise ModelFileError(
                    f"{enc.path}: the encoder has {len(names)} outputs ({', '.join(names)}); name "
                    "the two that matter mu and logvar"
                )
            mean, scale = names
        self._enc_names = [mean, scale]
        by_name = _SCALE_NAMES.get(scale.lower())
        self.encoder_scale = (_choice(options.encoder_scale, ENCODER_SCALES, "encoder scale", enc.path)
                              or by_name or "logvar")
        shapes = {n: _dims(o.shape or []) for n, o in zip(names, enc.outputs)}
        d = shapes[mean][1] if len(shapes[mean]) == 2 else None
        if not isinstance(d, int):
            meta_d = enc.metadata.get("latent_dim")
            d = meta_d if isinstance(meta_d, int) else None
        if d is None:  # left open by the graph: one probe encoding says
            mu, _ = self._run_encoder(np.zeros((1, *self.encoder_input_shape()), np.float32))
            d = mu.shape[1]
        self.latent_dim = int(d)

    def encoder_input_shape(self) -> tuple[int, ...]:
        """One sample's shape as the encoder takes it (from the graph, else our metadata)."""
        shape = self._enc.in_shape[1:]
        if all(isinstance(s, int) for s in shape):
            return tuple(int(s) for s in shape)
        meta = self._enc.metadata.get("data_shape")
        if isinstance(meta, list) and all(isinstance(s, int) for s in meta):
            return tuple(meta)
        dec = self._dec.fixed(0)
        if dec is not None and len(dec) == len(shape):
            return dec
        raise ModelFileError(f"{self._enc.path}: the encoder's input shape "
                             f"{_fmt_shape(self._enc.in_shape)} is not fixed in the graph")

    def _check_decoder_input(self) -> None:
        dec, shape = self._dec, self._dec.in_shape
        if len(shape) != 2:
            raise ModelFileError(f"{dec.path}: the decoder's input '{dec.in_name}' is "
                                 f"{_fmt_shape(shape)}, not a latent matrix [N, d]")
        d = shape[1] if isinstance(shape[1], int) else dec.metadata.get("latent_dim")
        if isinstance(d, int) and d != self.latent_dim:
            raise ModelFileError(
                f"{self.encoder_path} and {dec.path} do not fit: the encoder gives latent "
                f"vectors [N, {self.latent_dim}] but the decoder takes {_fmt_shape(shape)}"
                + ("" if isinstance(shape[1], int) else f" (latent_dim {d} in its metadata)")
            )

    def _pick_likelihood(self, options: PairOptions) -> None:
        dec, meta = self._dec, self._dec.metadata
        out0 = self._dec.outputs[0].name.lower()
        named = "logits" if "logit" in out0 else ("probabilities" if "prob" in out0 else None)
        output = _choice(options.decoder_output, DECODER_OUTPUTS, "decoder output", dec.path)
        meta_out = {"probabilities": "probabilities", "means": "mean", "logits": "logits"}.get(
            str(meta.get("output")))
        output = output or meta_out or named
        lik = _choice(options.likelihood, LIKELIHOODS, "likelihood", dec.path) or meta.get("likelihood")
        if lik is None and output in ("probabilities", "logits"):
            lik = "bernoulli"
        if lik not in LIKELIHOODS:
            raise ModelFileError(
                f"{dec.path}: the decoder does not say its likelihood; give --likelihood "
                "bernoulli or gaussian"
            )
        if lik == "gaussian":
            if output not in (None, "mean"):
                raise ModelFileError(f"{dec.path}: a Gaussian decoder outputs the mean, not {output}")
            output = "mean"
        elif output not in ("probabilities", "logits"):
            raise ModelFileError(
                f"{dec.path}: the decoder does not say whether it outputs logits or "
                "probabilities; give --decoder-output logits (the sound choice) or probabilities"
            )
        self.likelihood, self.decoder_output = lik, output
        self._dec_names = [self._dec.outputs[0].name]
        self.obs_std, self._sigma_kind, self.sigma_source = None, None, ""
        if lik != "gaussian":
            return
        if options.obs_std is not None:
            if not (math.isfinite(options.obs_std) and options.obs_std > 0):
                raise ModelFileError(f"{dec.path}: --obs-std must be a positive number, "
                                     f"not {options.obs_std}")
            self.obs_std, self.sigma_source = float(options.obs_std), "--obs-std"
        elif len(dec.outputs) >= 2:
            name = dec.outputs[1].name
            kind = _SCALE_NAMES.get(name.lower())
            if kind is None:
                raise ModelFileError(
                    f"{dec.path}: the decoder's second output '{name}' is not named std, log_std "
                    "or logvar, so its meaning is unknown; give --obs-std S instead"
                )
            self._dec_names.append(name)
            self._sigma_kind, self.sigma_source = kind, f"decoder output '{name}' ({kind})"
        elif isinstance(meta.get("obs_std"), (int, float)) and meta["obs_std"] > 0:
            self.obs_std, self.sigma_source = float(meta["obs_std"]), "the decoder's metadata"
        else:
            raise ModelFileError(f"{dec.path}: a Gaussian decoder needs its sigma: give "
                                 "--obs-std S or a second output named std or log_std")

    def _decoder_shape(self) -> tuple[int, ...]:
        shape = self._dec.fixed(0)
        if shape is None:
            out = self._dec.run(self._dec_names[:1], np.zeros((1, self.latent_dim), np.float32))[0]
            shape = tuple(int(s) for s in out.shape[1:])
        meta = self._dec.metadata.get("data_shape")
        if isinstance(meta, list) and math.prod(meta) == math.prod(shape) and len(meta) > len(shape):
            shape = tuple(int(s) for s in meta)  # a flat output of our own data shape
        enc_in = self.encoder_input_shape()
        if math.prod(enc_in) != math.prod(shape) or (len(enc_in) > 1 and len(shape) > 1
                                                     and enc_in != shape):
            raise ModelFileError(
                f"{self.encoder_path} and {self.decoder_path} do not fit: the encoder takes "
                f"samples {list(enc_in)} but the decoder outputs {list(shape)}"
            )
        return shape if len(shape) >= len(enc_in) else enc_in

    def _check_outputs_make_sense(self) -> None:
        """Decode a few prior draws: probabilities must lie in [0, 1], a sigma be positive."""
        z = np.random.default_rng(_PROBE_SEED).standard_normal((_PROBE_N, self.latent_dim))
        out = self._dec.run(self._dec_names, z.astype(np.float32))
        if not all(np.isfinite(o).all() for o in out):
            raise ModelFileError(f"{self.decoder_path}: the decoder gives NaN or infinite values "
                                 "for latent vectors drawn from the prior")
        if self.decoder_output == "probabilities":
            lo, hi = float(out[0].min()), float(out[0].max())
            if lo < 0.0 or hi > 1.0:
                raise ModelFileError(
                    f"{self.decoder_path}: outputs values from {lo:.3g} to {hi:.3g} for prior draws, "
                    "so not probabilities; give --decoder-output logits"
                )

    # ------------------------------------------------------------------ running
    def _run_encoder(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        names = getattr(self, "_enc_names", [o.name for o in self._enc.outputs[:2]])
        mu, spread = self._enc.run(names, x)
        return mu, spread

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) of q(z|x), float64 [N, d] each, for x [N, *data_shape] or flat rows.

        Never a sample. A ``log_std`` or ``std`` output is turned into the log-variance here;
        non-finite or non-positive spreads raise ``ModelFileError``."""
        x = np.asarray(x)
        shape = self.encoder_input_shape()
        mu, spread = self._run_encoder(x.reshape(len(x), *shape))
        mu, spread = mu.astype(np.float64), spread.astype(np.float64)
        if mu.shape != (len(x), self.latent_dim) or spread.shape != mu.shape:
            raise ModelFileError(
                f"{self.encoder_path}: the encoder gives {list(mu.shape)} and {list(spread.shape)} "
                f"for {len(x)} samples; expected [{len(x)}, {self.latent_dim}] each"
            )
        if self.encoder_scale == "std":
            if not (spread > 0).all():
                raise ModelFileError(f"{self.encoder_path}: the encoder's std output is not "
                                     "positive everywhere (is it a log-variance? --encoder-scale)")
            logvar = 2.0 * np.log(spread)
        else:
            logvar = 2.0 * spread if self.encoder_scale == "log_std" else spread
        return mu, logvar

    def decoder_params(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The decoder's raw first output for z [N, d] (logits, probabilities or the mean) in
        ``[N, *data_shape]``, and sigma (float32, [N, *data_shape] or broadcastable) or None."""
        z = np.asarray(z, dtype=np.float32)
        outs = self._dec.run(self._dec_names, z)
        first = outs[0].reshape(len(z), *self.data_shape)
        if self.likelihood != "gaussian":
            return first, None
        if self._sigma_kind is None:
            return first, np.float32(self.obs_std)
        raw = outs[1].astype(np.float32, copy=False)
        raw = raw.reshape(len(z), *self.data_shape) if raw[0].size == first[0].size else \
            raw.reshape(len(z), *([1] * len(self.data_shape)))
        sigma = {"std": raw, "log_std": np.exp(raw), "logvar": np.exp(0.5 * raw)}[self._sigma_kind]
        return first, sigma

    def decode(self, z: np.ndarray) -> np.ndarray:
        """The mean of p(x|z), float32 [N, *data_shape]: probabilities or the Gaussian mean."""
        out, _ = self.decoder_params(z)
        if self.decoder_output == "logits":
            return (0.5 * (1.0 + np.tanh(0.5 * out))).astype(np.float32)  # sigmoid, no overflow
        return out.astype(np.float32, copy=False)

    def log_px_given_z(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``log p(x|z)`` in nats, float64 [N], for rows x [N, *data_shape] and z [N, d], with
        its normalising constant. Bernoulli data must be binary (0 or 1)."""
        out, sigma = self.decoder_params(z)
        x = np.asarray(x, dtype=np.float32).reshape(out.shape)
        n = len(x)
        if self.likelihood == "bernoulli":
            if self.decoder_output == "logits":
                lp = x * out - (np.maximum(out, 0.0) + np.log1p(np.exp(-np.abs(out))))
            else:
                p = np.where(x > 0.5, out, np.float32(1.0) - out)
                lp = np.log(np.clip(p, _P_MIN, _P_MAX))
            return lp.reshape(n, -1).sum(1, dtype=np.float64)
        sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float32), out.shape)
        if not (np.isfinite(sigma).all() and (sigma > 0).all()):
            raise ModelFileError(f"{self.decoder_path}: the decoder's sigma is not a positive number")
        r = (x - out) / sigma
        lp = -0.5 * r * r - np.log(sigma)
        return lp.reshape(n, -1).sum(1, dtype=np.float64) - 0.5 * _LOG_2PI * x[0].size

    # ------------------------------------------------------------------ the data
    def check_data(self, name: str, sample_shape: tuple[int, ...], lo: float, hi: float) -> None:
        """Refuse data of another shape, or outside [0, 1] for a Bernoulli likelihood."""
        shape, want = tuple(sample_shape), self.data_shape
        flat_ok = math.prod(shape) == math.prod(want) and (len(shape) == 1 or len(want) == 1)
        if shape != want and not flat_ok:
            raise DataError(
                f"{name} does not fit {self.decoder_path}: samples of shape {list(shape)}, but "
                f"the decoder outputs {list(want)}"
            )
        if self.likelihood == "bernoulli" and (lo < 0.0 or hi > 1.0):
            raise DataError(
                f"{name}: values range over [{lo:g}, {hi:g}], but the Bernoulli likelihood of "
                f"{self.decoder_path} needs values in [0, 1]"
            )

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary of what was found and assumed."""
        return {
            "encoder": self.encoder_path, "decoder": self.decoder_path, "ours": self.ours,
            "latent_dim": self.latent_dim, "data_shape": list(self.data_shape),
            "likelihood": self.likelihood, "decoder_output": self.decoder_output,
            "encoder_scale": self.encoder_scale, "obs_std": self.obs_std,
            "sigma_source": self.sigma_source or None,
        }
