"""What a trained VAE does with its latent space: the summary, the verdict, the full diagnosis.

The record, its JSON keys, the summary, the verdict and the report are torch-free (a model
trained elsewhere is diagnosed through onnxruntime with them); ``diagnose``, ``encode_dataset``
and ``importance_terms`` run a torch model and load torch on first use (PEP 562).
"""

from models.diagnostics.report import format_report
from models.diagnostics.result import JSON_KEYS, Diagnosis, NonFiniteModelError, assemble
from models.diagnostics.summary import data_spread, latent_summary
from models.diagnostics.verdict import training_state, verdict
from models.latent.stats import ACTIVE_THRESHOLD, MI_SAMPLES, activity, kl_per_dim, mutual_information

_TORCH_NAMES = ("diagnose", "encode_dataset", "importance_terms")

__all__ = [
    "ACTIVE_THRESHOLD", "JSON_KEYS", "MI_SAMPLES", "Diagnosis", "NonFiniteModelError", "activity",
    "assemble", "data_spread", "format_report", "kl_per_dim", "latent_summary",
    "mutual_information", "training_state", "verdict", *_TORCH_NAMES,
]


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        from models.diagnostics import diagnosis

        return getattr(diagnosis, name)
    raise AttributeError(f"module 'models.diagnostics' has no attribute {name!r}")
