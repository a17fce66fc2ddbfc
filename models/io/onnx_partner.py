"""Opening a pair: the two files named, or the other file of a pair we exported found beside the
one given (no file a model names).

Only ``.onnx`` files in the given file's own folder are opened, and only their metadata is read
to match them: a model's metadata never makes us open a file it names.
"""

from __future__ import annotations

import os

from models.errors import ModelFileError
from models.io.onnx_pair import OnnxPair, PairOptions, _Graph

_SAME_MODEL_KEYS = ("model_config", "run_file", "weights_step", "producer")
_MAX_SIBLINGS = 64


def find_partner(path: str | os.PathLike) -> tuple[str, str]:
    """(encoder, decoder) for one file of a pair we exported: its partner is the ``.onnx`` file
    in the same folder with the other role and the same model (``model_config``, ``run_file``,
    ``weights_step``, ``producer`` in the metadata). Names with ``encoder``/``decoder`` swapped
    are tried first, then the folder's other ``.onnx`` files (at most 64)."""
    name = os.fspath(path)
    meta = _Graph(name, "model", 1).metadata
    role = meta.get("role")
    if role not in ("encoder", "decoder") or "format_version" not in meta:
        raise ModelFileError(f"{name}: has no Latent Explorer metadata saying whether it is an "
                             "encoder or a decoder; name both files (--encoder and --decoder)")
    other = "decoder" if role == "encoder" else "encoder"
    folder, base = os.path.split(os.path.abspath(name))
    guess = [base.replace(role, other), base.replace(role[:3], other[:3])]
    try:
        rest = sorted(f for f in os.listdir(folder) if f.endswith(".onnx"))[:_MAX_SIBLINGS]
    except OSError:
        rest = []
    for cand in dict.fromkeys([*guess, *rest]):
        full = os.path.join(folder, cand)
        if cand == base or not os.path.isfile(full):
            continue
        try:
            m = _Graph(full, "model", 1).metadata
        except ModelFileError:
            continue
        if m.get("role") == other and all(m.get(k) == meta.get(k) for k in _SAME_MODEL_KEYS):
            found = os.path.join(os.path.dirname(name), cand)
            return (name, found) if role == "encoder" else (found, name)
    raise ModelFileError(f"{name}: no {other} of the same model found beside it; name it with "
                         f"--{other}")


def open_pair(encoder: str | os.PathLike | None, decoder: str | os.PathLike | None,
              options: PairOptions = PairOptions(), threads: int | None = None) -> OnnxPair:
    """Open and check a pair. Either path may be None for a pair we exported: the other file is
    then found beside the given one by :func:`find_partner`."""
    if encoder is None and decoder is None:
        raise ModelFileError("no model files given: name an encoder and a decoder")
    if encoder is None or decoder is None:
        encoder, decoder = find_partner(encoder if decoder is None else decoder)
    if os.path.abspath(os.fspath(encoder)) == os.path.abspath(os.fspath(decoder)):
        raise ModelFileError(f"{os.fspath(encoder)}: the encoder and the decoder are the same file")
    return OnnxPair(encoder, decoder, options, threads)
