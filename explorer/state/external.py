"""A model trained elsewhere, as the views see it: one session with one validation point.

File > Open model… opens an encoder/decoder pair on a data set (``explorer.open_model``).
The opened model is a :class:`ModelSession`: a :class:`~explorer.state.session.RunSession`
whose history holds one row, computed by the engine (``models.io.pair_diagnosis``) from one
pass over the data (K = 1 draw of z per row): its step table holds the KL per dimension (the
KL bars), its epoch table the rate and distortion (its one point on the rate-distortion plane,
beside the runs), the activity, I(X;Z) with its ceiling and the marginal KL. The diagnosis
panel shows the same figures, and *Diagnose now* computes the IWAE bound and the gap.

:class:`ModelRequest` is what was asked for (files, data, options): it is written as a small
JSON "model link" for Recent files, so the same pair and data reopen.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from .session import RunSession
from .status import RunStatus

#: A model link's file name ends so (the recent files reopen it through a file handler).
LINK_SUFFIX = ".lemodel"


@dataclass(frozen=True)
class ModelRequest:
    """An encoder and/or a decoder (either alone for a pair we exported), a data spec, and
    what the files cannot say themselves (``None``: from the files)."""

    encoder: str | None
    decoder: str | None
    data: str
    labels: str | None = None
    likelihood: str | None = None
    decoder_output: str | None = None
    encoder_scale: str | None = None
    obs_std: float | None = None
    max_samples: int | None = 10_000

    @property
    def title(self) -> str:
        """``encoder.onnx + decoder.onnx on mnist`` (what the recent files and legends show)."""
        files = " + ".join(os.path.basename(p) for p in (self.encoder, self.decoder) if p)
        data = os.path.basename(self.data.rstrip("/")) if os.sep in self.data else self.data
        return f"{files} on {data}"

    def key(self) -> tuple:
        return tuple(asdict(self).values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, where: str = "model link") -> ModelRequest:
        """Parse a model link; ``ValueError`` with one line when it is not one."""
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"{where}: not a Latent Explorer model link (not JSON)") from None
        names = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), str) or \
                not (isinstance(raw.get("encoder"), str) or isinstance(raw.get("decoder"), str)):
            raise ValueError(f"{where}: not a Latent Explorer model link (no model files or data)")
        kw = {k: v for k, v in raw.items() if k in names}
        for k in ("encoder", "decoder", "labels", "likelihood", "decoder_output", "encoder_scale"):
            if kw.get(k) is not None and not isinstance(kw[k], str):
                raise ValueError(f"{where}: '{k}' is not a string")
        for k, kind in (("obs_std", (int, float)), ("max_samples", int)):
            if kw.get(k) is not None and (not isinstance(kw[k], kind) or isinstance(kw[k], bool)):
                raise ValueError(f"{where}: '{k}' is not a number")
        return cls(**kw)


def link_name(request: ModelRequest) -> str:
    """A readable, stable file name for the request's link."""
    import hashlib

    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.title)[:80]
    digest = hashlib.sha1(repr(request.key()).encode()).hexdigest()[:8]
    return f"{stem}-{digest}{LINK_SUFFIX}"


class ModelSession(RunSession):
    """An opened model: a session with one point, fed once from the engine's diagnosis.

    ``model`` is the engine's ``models.io.pair_diagnosis.PairModel`` (the pair, the diagnosed
    rows and their encodings); ``request`` what was opened; ``path`` is None (no run file:
    nothing exports it or follows it)."""

    def __init__(self, request: ModelRequest, model: Any, decoder: Any, parent=None) -> None:
        super().__init__(f"model: {request.title}", source="model", parent=parent)
        self.request = request
        self.model = model
        self.decoder = decoder  # what the latent explorer decodes with
        self.status = RunStatus.FINISHED  # nothing more will come

    @property
    def label(self) -> str:
        return self.name

    @property
    def latent_dim(self) -> int | None:
        return int(self.model.pair.latent_dim)

    def show_first(self, diagnosis: dict, description: str) -> None:
        """Take the one-pass (K = 1) diagnosis: the step and epoch rows the plots read, and the
        figures that need no IWAE (the IWAE bound, the gap and bits/dim wait for Diagnose now)."""
        kl = np.asarray(diagnosis["kl_per_dim"], dtype=np.float64)
        self.set_info(dataset_info={"name": self.request.data, "description": description,
                                    "likelihood_kind": diagnosis.get("likelihood_kind"),
                                    "n_val": diagnosis.get("n_samples")})
        self.append_step({"step": 0, "epoch": 0, "kl_per_dim": kl, "rate": np.nan,
                          "distortion": np.nan})
        self.epochs.append_row({
            "step": 0, "epoch": 0, "val_elbo": diagnosis["elbo"], "val_rate": diagnosis["rate"],
            "val_distortion": diagnosis["distortion"], "val_kl_per_dim": kl,
            "activity_per_dim": np.asarray(diagnosis["activity_per_dim"], dtype=np.float64),
            "active_units": diagnosis["active_units"], "mutual_info": diagnosis["mutual_info"],
            "marginal_kl": diagnosis["marginal_kl"], "mi_ceiling": diagnosis["mi_ceiling"],
            "mi_saturated": float(bool(diagnosis["mi_saturated"])),
        })
        self.verdicts.append(str(diagnosis.get("verdict") or ""))
        self.epochsAppended.emit(1)
        first = {k: v for k, v in diagnosis.items()
                 if k not in ("iwae", "elbo_gap", "bits_per_dim", "iw_samples")}
        first.update(source="model", epoch=None, description=description)
        self.diagnosis = first
        self.diagnosisChanged.emit(first)
