"""What a run's model produces now: reconstructions of fixed validation images and samples from
the prior, from the run file's latest saved weights (no export). Plain data, no Qt.

The validation images are the same every time (``models.data.validation_rows`` with a fixed seed
picks them, binarised as the run was validated), and so are the prior draws
(``models.latent.geometry.prior_samples`` with a fixed seed): between two epochs only the model
changes. A reconstruction decodes the posterior mean of its image (not a sample of q(z|x)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tasks import TaskState

#: Validation images reconstructed, and prior draws decoded, per refresh.
N_RECONSTRUCTIONS = 8
N_PRIOR = 16
SEED = 0


@dataclass
class SampleImages:
    """Display-ready uint8 images ([N, H, W] grey or [N, H, W, 3] colour) of one checkpoint."""

    run_path: str
    weights_step: int
    originals: np.ndarray
    reconstructions: np.ndarray
    prior: np.ndarray
    description: str  # which validation rows


def display_images(x: np.ndarray, data_shape: tuple[int, ...]) -> np.ndarray:
    """Model-space rows in [0, 1] ([N, *data_shape]) as uint8 images, laid out as the ONNX
    decoder's ``decode_uint8`` lays them out (``models.io.onnx_runtime.to_images``)."""
    from models.io.onnx_runtime import to_images

    x = np.asarray(x, dtype=np.float32).reshape(len(x), *data_shape)
    as_bytes = (np.clip(np.nan_to_num(x), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return to_images(as_bytes, data_shape)


def sample_images(run_path: str, n_reconstructions: int = N_RECONSTRUCTIONS,
                  n_prior: int = N_PRIOR, seed: int = SEED,
                  state: TaskState | None = None) -> SampleImages:
    """Reconstructions and prior samples of the run file's latest weights, on the CPU."""
    import torch

    from models.data import validation_rows
    from models.io.runfile import RunReader
    from models.latent.geometry import prior_samples

    with RunReader(run_path) as reader:  # RunFileError: a run with no weights saved yet
        vae = reader.load_model("cpu").eval()
        step = int(reader.weights_step)
        rows = validation_rows(reader, max_samples=n_reconstructions, seed=seed)
    if state is not None:
        state.raise_if_interrupted()
    shape = tuple(vae.config.data_shape)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(rows.x, dtype=np.float32))
        mu, _logvar = vae.encode(x)
        recon = vae.decode(mu).numpy()
        z = torch.from_numpy(prior_samples(n_prior, vae.latent_dim, seed))
        prior = vae.decode(z).numpy()
    return SampleImages(run_path, step, display_images(rows.x, shape), display_images(recon, shape),
                        display_images(prior, shape), rows.description)


def samples_task(state: TaskState, run_path: str) -> SampleImages:
    """The task: :func:`sample_images` of ``run_path``, checked for a cancel after reading."""
    return sample_images(run_path, state=state)
