"""What a trained VAE does with its latent space: the summary, the verdict, the full diagnosis."""

from models.diagnostics.diagnosis import (
    JSON_KEYS,
    Diagnosis,
    NonFiniteModelError,
    diagnose,
    encode_dataset,
    importance_terms,
)
from models.diagnostics.report import format_report
from models.diagnostics.summary import data_spread, latent_summary
from models.diagnostics.verdict import training_state, verdict
from models.latent.stats import ACTIVE_THRESHOLD, MI_SAMPLES, activity, kl_per_dim, mutual_information

__all__ = [
    "ACTIVE_THRESHOLD",
    "JSON_KEYS",
    "MI_SAMPLES",
    "Diagnosis",
    "NonFiniteModelError",
    "activity",
    "data_spread",
    "diagnose",
    "encode_dataset",
    "format_report",
    "importance_terms",
    "kl_per_dim",
    "latent_summary",
    "mutual_information",
    "training_state",
    "verdict",
]
