"""ONNX pairs built by hand with onnx.helper (no torch), whose answers are known."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(nodes, inputs, outputs, inits, path: Path, meta: dict[str, str] | None = None) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v, np.float32), k)
                               for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _vi(name: str, shape: list, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


@dataclass
class LinearGaussian:
    """z ~ N(0, I_k), x = W z + b + N(0, sigma^2 I_D) with W = U diag(s) (orthogonal columns), so
    the exact posterior is a diagonal Gaussian: mean A^T (x - b), A = W (W^T W + sigma^2)^-1,
    variance sigma^2 / (s^2 + sigma^2). ``pad`` latent dimensions output the prior N(0, 1) and
    are ignored by the decoder."""

    d_x: int = 6
    k: int = 2
    pad: int = 2
    sigma: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        u, _ = np.linalg.qr(rng.standard_normal((self.d_x, self.k)))
        self.s = np.linspace(2.0, 1.0, self.k)
        self.W = u * self.s  # [D, k]
        self.b = rng.standard_normal(self.d_x) * 0.5
        self.A = self.W / (self.s**2 + self.sigma**2)  # [D, k]
        self.post_var = self.sigma**2 / (self.s**2 + self.sigma**2)

    @property
    def latent_dim(self) -> int:
        return self.k + self.pad

    def sample(self, n: int, seed: int = 1) -> np.ndarray:
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.k))
        return (z @ self.W.T + self.b + self.sigma * rng.standard_normal((n, self.d_x))).astype(np.float32)

    def log_px(self, x: np.ndarray) -> np.ndarray:
        """The exact log p(x) per row, nats: N(x; b, W W^T + sigma^2 I)."""
        cov = self.W @ self.W.T + self.sigma**2 * np.eye(self.d_x)
        r = np.asarray(x, np.float64) - self.b
        _, logdet = np.linalg.slogdet(cov)
        maha = np.einsum("ni,ij,nj->n", r, np.linalg.inv(cov), r)
        return -0.5 * (self.d_x * math.log(2 * math.pi) + logdet + maha)

    def write(self, folder: Path, scale: str = "logvar", sigma_output: bool = False,
              prefix: str = "lg") -> tuple[Path, Path]:
        d, kp = self.d_x, self.latent_dim
        a_pad = np.zeros((d, kp))
        a_pad[:, : self.k] = self.A
        spread = np.zeros(kp)  # the prior's logvar 0 in the padded dimensions
        spread[: self.k] = np.log(self.post_var)
        if scale == "log_std":
            spread = 0.5 * spread
        elif scale == "std":
            spread = np.exp(0.5 * spread)
        enc = _save(
            [helper.make_node("Sub", ["x", "b"], ["xc"]),
             helper.make_node("MatMul", ["xc", "A"], ["mu"]),
             helper.make_node("MatMul", ["x", "Z0"], ["zero"]),
             helper.make_node("Add", ["zero", "s"], [scale])],
            [_vi("x", ["N", d])], [_vi("mu", ["N", kp]), _vi(scale, ["N", kp])],
            {"b": self.b, "A": a_pad, "Z0": np.zeros((d, kp)), "s": spread},
            folder / f"{prefix}_encoder.onnx")
        w_pad = np.zeros((kp, d))
        w_pad[: self.k] = self.W.T
        nodes = [helper.make_node("MatMul", ["z", "Wt"], ["h"]),
                 helper.make_node("Add", ["h", "b"], ["mean"])]
        outs = [_vi("mean", ["N", d])]
        inits = {"Wt": w_pad, "b": self.b}
        if sigma_output:
            nodes += [helper.make_node("MatMul", ["z", "Z1"], ["zz"]),
                      helper.make_node("Add", ["zz", "ls"], ["log_std"])]
            outs.append(_vi("log_std", ["N", d]))
            inits.update(Z1=np.zeros((kp, d)), ls=np.full(d, math.log(self.sigma)))
        dec = _save(nodes, [_vi("z", ["N", kp])], outs, inits, folder / f"{prefix}_decoder.onnx")
        return enc, dec


def bernoulli_pair(folder: Path, d_x: int = 16, k: int = 3, seed: int = 0, *,
                   out: str = "logits", enc_outputs: int = 2, dec_inputs: int = 1,
                   dec_k: int | None = None, string_output: bool = False,
                   prefix: str = "bern") -> tuple[Path, Path]:
    """A small Bernoulli pair (random weights), with knobs that make it broken on purpose."""
    rng = np.random.default_rng(seed)
    e_names = ["mu", "logvar"][:enc_outputs]
    enc_nodes = [helper.make_node("MatMul", ["x", "E"], ["mu"])]
    if enc_outputs > 1:
        enc_nodes.append(helper.make_node("MatMul", ["x", "V"], ["logvar"]))
    enc = _save(enc_nodes, [_vi("x", ["N", d_x])], [_vi(n, ["N", k]) for n in e_names],
                {"E": rng.standard_normal((d_x, k)) * 0.3, "V": rng.standard_normal((d_x, k)) * 0.1},
                folder / f"{prefix}_encoder.onnx")
    kd = k if dec_k is None else dec_k
    nodes = [helper.make_node("MatMul", ["z", "D"], ["h"])]
    nodes.append(helper.make_node("Sigmoid" if out == "probabilities" else "Identity", ["h"], [out]))
    inputs = [_vi("z", ["N", kd])] + ([_vi("extra", ["N", 1])] if dec_inputs > 1 else [])
    outputs = [_vi(out, ["N", d_x])]
    if string_output:
        nodes = [helper.make_node("Cast", ["z"], ["text"], to=TensorProto.STRING)]
        outputs = [_vi("text", ["N", kd], TensorProto.STRING)]
    dec = _save(nodes, inputs, outputs, {"D": rng.standard_normal((kd, d_x))} if not string_output else {},
                folder / f"{prefix}_decoder.onnx")
    return enc, dec
