"""Aggressive inference-network training (He et al. 2019, "Lagging Inference Networks and
Posterior Collapse in Variational Autoencoders", Algorithm 1).

Early in training the encoder lags behind the true posterior, and the decoder learns to ignore
z before the encoder has caught up. In the aggressive phase each decoder update is preceded by
an inner loop of encoder-only updates on fresh minibatches (the outer batch first), which ends
when the inner loss stops improving (its mean over a window of ``INNER_WINDOW`` steps is not
below the previous window's) or at the cap ``objective.aggressive_inner_steps``; the decoder is
then updated once on the outer batch, with the encoder fixed. At each epoch's end the phase
ends when the validation I(X;Z) does not climb (not above the previous epoch's), and training
goes on with joint updates.

The two updates share the trainer's Adam: a backward pass restricted to one part's parameters
(``backward(inputs=...)``) leaves the other's gradients unset, and Adam skips those parameters,
so each part keeps its own moment estimates and step count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch

from models.config import ObjectiveConfig
from models.nn.objectives import elbo_terms, kl_weight, training_loss
from models.nn.vae import VAE
from models.training.batches import TrainingBatches

log = logging.getLogger(__name__)

#: The inner loop compares the mean loss of successive windows of this many encoder steps.
INNER_WINDOW = 10
#: The epochs of the inner loop's own pass through the training rows are numbered from here
#: (an out-of-core data set seeds its block order by the epoch number).
_INNER_EPOCHS = 1_000_000


def keeps_climbing(previous_mi: float | None, mutual_info: float) -> bool:
    """The aggressive phase's ending rule: go on while I(X;Z) climbs (the first epoch always)."""
    return previous_mi is None or mutual_info > previous_mi


def inner_loop_done(window_means: list[float], steps: int, cap: int) -> bool:
    """The inner loop's stopping rule: at the cap, or when the last window's mean loss is not
    below the one before it."""
    if steps >= cap:
        return True
    return len(window_means) >= 2 and not window_means[-1] < window_means[-2]


class AggressivePhase:
    """The encoder's inner loop before each decoder update, and the rule that ends the phase.

    ``optimizer`` is the trainer's, over all parameters; ``batches`` the run's training rows
    (the inner loop draws its fresh minibatches from its own passes over them).
    """

    def __init__(
        self,
        model: VAE,
        optimizer: torch.optim.Optimizer,
        batches: TrainingBatches,
        objective: ObjectiveConfig,
        total_steps: int,
        generator: torch.Generator,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.batches = batches
        self.objective = objective
        self.total_steps = total_steps
        self.generator = generator
        self.cap = objective.aggressive_inner_steps
        encoder = {id(p) for p in model.encoder.parameters()}
        params = [p for p in model.parameters() if p.requires_grad]
        self.encoder_params = [p for p in params if id(p) in encoder]
        #: the decoder's side: the decoder and any parameter of the likelihood (a learned std)
        self.decoder_params = [p for p in params if id(p) not in encoder]
        self.encoder_steps = 0  # all inner steps so far
        self.decoder_steps = 0
        self.previous_mi: float | None = None
        self.ended_after: int | None = None  # the epoch after which the phase ended
        self._stream = self._fresh_batches()

    def _fresh_batches(self) -> Iterator[torch.Tensor]:
        k = _INNER_EPOCHS
        while True:
            for xb, _rows in self.batches.epoch(k):
                yield xb
            k += 1

    def _loss(self, xb: torch.Tensor, step: int) -> torch.Tensor:
        terms = elbo_terms(self.model, xb, generator=self.generator)
        beta_t = kl_weight(step, self.objective, self.total_steps)
        return training_loss(terms, beta_t, self.objective.free_bits)

    def train_encoder(self, xb: torch.Tensor, step: int) -> int:
        """The inner loop before the decoder update of ``step``: encoder-only Adam updates, on
        ``xb`` then on fresh minibatches, until the loss stops improving or the cap. Returns the
        number of encoder updates made."""
        window_means: list[float] = []
        window = torch.zeros((), dtype=torch.float64, device=xb.device)
        steps, batch = 0, xb
        while True:
            loss = self._loss(batch, step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=self.encoder_params)
            self.optimizer.step()
            window += loss.detach().double()
            steps += 1
            if steps % INNER_WINDOW == 0 or steps >= self.cap:
                window_means.append(float(window) / (steps - INNER_WINDOW * len(window_means)))
                window.zero_()
                if inner_loop_done(window_means, steps, self.cap):
                    break
            batch = next(self._stream)
        self.encoder_steps += steps
        self.decoder_steps += 1
        return steps

    def keep_going(self, mutual_info: float, epoch: int) -> bool:
        """After an epoch's validation: whether the phase goes on (I(X;Z) still climbs)."""
        go_on = keeps_climbing(self.previous_mi, mutual_info)
        if not go_on:
            self.ended_after = epoch
            log.info(
                "aggressive encoder training ends after epoch %d: I(X;Z) %.3f did not climb "
                "above %.3f (%d encoder updates for %d decoder updates)", epoch, mutual_info,
                self.previous_mi, self.encoder_steps, self.decoder_steps,
            )
        self.previous_mi = mutual_info
        return go_on
