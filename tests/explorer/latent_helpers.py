"""Real ONNX decoders for the latent explorer's tests.

- :func:`export_vae_decoder`: a small VAE's decoder exported by ``models.io.onnx_export`` (our
  format, with metadata). ``dead_dims`` zero the decoder's weights from those latent
  dimensions, so they change nothing: collapsed dimensions by construction.
- :func:`third_party_decoder`: an ONNX graph built with ``onnx.helper`` as someone else might
  ship it: no metadata, input float [N, d], output sigmoid(z W + b) [N, 16] (a 4 x 4 image);
  rows of W for ``dead_dims`` are zero.
"""

from __future__ import annotations

import os

import numpy as np


def export_vae_decoder(path, *, latent_dim=4, hidden=(32,), dead_dims=(), seed=0, metadata=None,
                       arch="mlp"):
    import torch

    from models.config import ModelConfig
    from models.io.onnx_export import export_decoder
    from models.nn.vae import VAE

    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, latent_dim=latent_dim, hidden=tuple(hidden))
    vae = VAE(cfg)
    with torch.no_grad():
        first = vae.decoder.net[0] if arch == "mlp" else vae.decoder.fc[0]
        first.weight.mul_(3.0)  # livelier images than the default initialisation
        for d in dead_dims:
            first.weight[:, d] = 0.0
    export_decoder(vae, path, metadata or {}, overwrite=True)
    return os.fspath(path)


def third_party_decoder(path, *, latent_dim=3, side=4, dead_dims=(2,), seed=0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((latent_dim, side * side)).astype(np.float32)
    for d in dead_dims:
        w[d] = 0.0
    b = rng.standard_normal(side * side).astype(np.float32) * 0.1
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["h"]),
            helper.make_node("Add", ["h", "B"], ["a"]),
            helper.make_node("Sigmoid", ["a"], ["output"]),
        ],
        "third_party_decoder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", latent_dim])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", side * side])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))
    return os.fspath(path), w, b
