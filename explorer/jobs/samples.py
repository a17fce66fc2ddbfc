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


def display_images(x: np.ndarray, data_shape: tuple[int, ...],
                   display_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Model-space rows ([N, *data_shape]) as uint8 images, shown and laid out as the run's
    exported decoder's ``decode_uint8`` shows them (``models.io.onnx_runtime.grey_levels``)."""
    from models.io.onnx_runtime import grey_levels

    return grey_levels(x, display_range, data_shape)


def sample_images(run_path: str, n_reconstructions: int = N_RECONSTRUCTIONS,
                  n_prior: int = N_PRIOR, seed: int = SEED,
                  state: TaskState | None = None) -> SampleImages:
    """Reconstructions and prior samples of the run file's latest weights, on the CPU."""
    import torch

    from models.data import validation_rows
    from models.data.preprocessing import trained_dequantized
    from models.io.runfile import RunReader
    from models.latent.discrete import display_range
    from models.latent.geometry import prior_samples

    with RunReader(run_path) as reader:  # RunFileError: a run with no weights saved yet
        vae = reader.load_model("cpu").eval()
        step = int(reader.weights_step)
        rows = validation_rows(reader, max_samples=n_reconstructions, seed=seed)
        shown = display_range(trained_dequantized(reader))  # as metadata_from_run exports it
    if state is not None:
        state.raise_if_interrupted()
    shape = tuple(vae.config.data_shape)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(rows.x, dtype=np.float32))
        mu, _logvar = vae.encode(x)
        recon = vae.decode(mu).numpy()
        z = torch.from_numpy(prior_samples(n_prior, vae.latent_dim, seed))
        prior = vae.decode(z).numpy()
    return SampleImages(run_path, step, display_images(rows.x, shape, shown),
                        display_images(recon, shape, shown), display_images(prior, shape, shown),
                        rows.description)


def samples_task(state: TaskState, run_path: str) -> SampleImages:
    """The task: :func:`sample_images` of ``run_path``, checked for a cancel after reading."""
    return sample_images(run_path, state=state)
