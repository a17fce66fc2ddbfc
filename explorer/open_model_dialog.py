"""File > Open model…: the dialog that names an encoder, a decoder and a data set.

A pair exported by Latent Explorer needs only one of its two files (the other is found beside
it, by its metadata). The data are any data spec (``mnist``, ``shapes:32``, an HDF5 file
``FILE.h5[:array]``, ``FILE.npy``, ``FILE.npz[:array]``, a folder of images). The options say
what a pair without our metadata cannot say itself; "from the files" leaves it to the files.
Nothing is opened here: :meth:`OpenModelDialog.request` is what the opener runs in a task.
"""

from __future__ import annotations

import os

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.io.onnx_pair import DECODER_OUTPUTS, ENCODER_SCALES, LIKELIHOODS

from .state.external import ModelRequest

FROM_FILES = "from the files"
DATA_CHOICES = ("mnist", "shapes:32", "shapes:64")
INTRO = ("A VAE trained elsewhere, as two ONNX files (docs/bring-your-own.md): it is encoded, "
         "diagnosed and explored here without training. A pair exported by Latent Explorer "
         "needs only one of its files.")


def _path_row(edit: QLineEdit, *buttons: QPushButton) -> QWidget:
    w = QWidget()
    row = QHBoxLayout(w)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    for b in buttons:
        row.addWidget(b)
    return w


def _choice(values: tuple[str, ...], tip: str) -> QComboBox:
    combo = QComboBox()
    combo.addItem(FROM_FILES, None)
    for v in values:
        combo.addItem(v, v)
    combo.setToolTip(tip)
    return combo


class OpenModelDialog(QDialog):
    """Encoder, decoder, data, labels and the pair's options; OK when there is enough to open."""

    def __init__(self, parent: QWidget | None = None, start_dir: str = "",
                 previous: ModelRequest | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open model")
        self.setObjectName("dialog.open_model")
        self.start_dir = start_dir
        self.encoder = QLineEdit()
        self.encoder.setPlaceholderText("encoder.onnx: x -> (mu, logvar)")
        self.decoder = QLineEdit()
        self.decoder.setPlaceholderText("decoder.onnx: z -> logits, probabilities or mean")
        self.data = QComboBox()
        self.data.setEditable(True)
        self.data.addItems(DATA_CHOICES)
        self.data.setToolTip("A data spec: mnist, shapes:32, FILE.h5[:array], FILE.npy, "
                             "FILE.npz[:array] or a folder of PNG/JPEG images")
        self.labels = QLineEdit()
        self.labels.setPlaceholderText("optional: an array of the same file, or a .npy file")
        self.likelihood = _choice(LIKELIHOODS, "The likelihood p(x|z) of the decoder")
        self.decoder_output = _choice(DECODER_OUTPUTS, "What the decoder's first output is "
                                      "(logits are the numerically sound choice)")
        self.encoder_scale = _choice(ENCODER_SCALES, "What the encoder's second output is")
        self.obs_std = QDoubleSpinBox()
        self.obs_std.setRange(0.0, 1e6)
        self.obs_std.setDecimals(4)
        self.obs_std.setSingleStep(0.05)
        self.obs_std.setSpecialValueText(FROM_FILES)
        self.obs_std.setToolTip("A Gaussian's fixed sigma (0: from the files)")
        self.rows = QSpinBox()
        self.rows.setRange(0, 10_000_000)
        self.rows.setSingleStep(1000)
        self.rows.setValue(10_000)
        self.rows.setSpecialValueText("all")
        self.rows.setToolTip("Rows of the data set encoded and diagnosed (a seeded random subset)")

        def browse(edit: QLineEdit, title: str, pattern: str) -> QPushButton:
            b = QPushButton("Browse…")
            b.clicked.connect(lambda: self._browse_file(edit, title, pattern))
            return b

        data_file, data_folder = QPushButton("File…"), QPushButton("Folder…")
        data_file.clicked.connect(self._browse_data_file)
        data_folder.clicked.connect(self._browse_data_folder)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Encoder", _path_row(self.encoder, browse(self.encoder, "Encoder", "ONNX models (*.onnx)")))
        form.addRow("Decoder", _path_row(self.decoder, browse(self.decoder, "Decoder", "ONNX models (*.onnx)")))
        form.addRow("Data", _path_row(self.data, data_file, data_folder))
        form.addRow("Labels", _path_row(self.labels, browse(self.labels, "Labels", "NumPy arrays (*.npy);;All files (*)")))
        form.addRow("Likelihood", self.likelihood)
        form.addRow("Decoder output", self.decoder_output)
        form.addRow("Encoder scale", self.encoder_scale)
        form.addRow("Observation σ", self.obs_std)
        form.addRow("Rows", self.rows)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        for edit in (self.encoder, self.decoder):
            edit.textChanged.connect(self._update_ok)
        self.data.editTextChanged.connect(self._update_ok)
        if previous is not None:
            self.set_request(previous)
        self._update_ok()
        self.resize(620, self.sizeHint().height())

    # ------------------------------------------------------------------ values
    def set_request(self, r: ModelRequest) -> None:
        self.encoder.setText(r.encoder or "")
        self.decoder.setText(r.decoder or "")
        self.data.setEditText(r.data)
        self.labels.setText(r.labels or "")
        for combo, value in ((self.likelihood, r.likelihood), (self.decoder_output, r.decoder_output),
                             (self.encoder_scale, r.encoder_scale)):
            combo.setCurrentIndex(max(0, combo.findData(value)) if value else 0)
        self.obs_std.setValue(r.obs_std or 0.0)
        self.rows.setValue(r.max_samples or 0)

    def request(self) -> ModelRequest:
        """What the dialog names (paths made absolute; empty fields None)."""
        def path(text: str) -> str | None:
            text = text.strip()
            return os.path.abspath(os.path.expanduser(text)) if text else None

        data = self.data.currentText().strip()
        if data and data not in DATA_CHOICES and not data.startswith(("mnist", "shapes")):
            file, sep, array = data.partition(":") if not os.path.exists(data) else (data, "", "")
            data = os.path.abspath(os.path.expanduser(file)) + (sep + array if sep else "")
        return ModelRequest(
            encoder=path(self.encoder.text()), decoder=path(self.decoder.text()), data=data,
            labels=self.labels.text().strip() or None,
            likelihood=self.likelihood.currentData(), decoder_output=self.decoder_output.currentData(),
            encoder_scale=self.encoder_scale.currentData(),
            obs_std=self.obs_std.value() or None, max_samples=self.rows.value() or None)

    def _update_ok(self) -> None:
        ok = bool(self.encoder.text().strip() or self.decoder.text().strip()) and \
            bool(self.data.currentText().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(ok)

    # ------------------------------------------------------------------ browsing
    def _browse_file(self, edit: QLineEdit, title: str, pattern: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, title, self.start_dir, f"{pattern};;All files (*)")
        if path:
            edit.setText(path)
            self.start_dir = os.path.dirname(path)

    def _browse_data_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Data set", self.start_dir,
            "Data files (*.h5 *.hdf5 *.npy *.npz);;All files (*)")
        if path:
            self.data.setEditText(path)
            self.start_dir = os.path.dirname(path)

    def _browse_data_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of images", self.start_dir)
        if path:
            self.data.setEditText(path)
            self.start_dir = path
