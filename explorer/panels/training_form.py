"""The training form: data set, model, objective, optimisation and run file, as a RunConfig.

:class:`TrainingForm` only collects settings: :meth:`~TrainingForm.config` reads them (a
``ConfigError`` with one line if they do not make a run), :meth:`~TrainingForm.set_config` fills
them in, and they persist through :meth:`~TrainingForm.save_settings` /
:meth:`~TrainingForm.restore_settings`; ``settingsChanged()`` says a value was edited (the
window then saves its settings). The panel with the buttons and the progress is
:class:`explorer.panels.training.TrainingPanel`.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
from models.errors import ConfigError

from .. import dialogs
from ..datafiles import ArrayInfo, list_arrays, preferred_labels

#: (label, data spec, sample shape) of the built-in data sets.
BUILTIN_DATA = (
    ("MNIST (built-in, 28×28)", "mnist", (1, 28, 28)),
    ("Shapes (built-in, 64×64)", "shapes", (1, 64, 64)),
    ("Shapes (built-in, 32×32)", "shapes:32", (1, 32, 32)),
)
HDF5_ITEM = "HDF5 file…"
DEFAULT_HIDDEN = {"mlp": "512, 256", "conv": "32, 64, 256"}


def sample_shape_of(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A file array's sample shape, as ``models.data`` reads it: N x D, N x H x W, N x C x H x W."""
    if len(shape) == 2:
        return (shape[1],)
    if len(shape) == 3:
        return (1, shape[1], shape[2])
    return tuple(shape[1:])


def _spin(lo: int, hi: int, value: int, step: int = 1, suffix: str = "") -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setValue(value)
    w.setSuffix(suffix)
    w.setGroupSeparatorShown(True)
    return w


def _dspin(lo: float, hi: float, value: float, decimals: int, step: float, suffix: str = "") -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    w.setValue(value)
    w.setSuffix(suffix)
    return w


class TrainingForm(QWidget):
    """The settings of a new run, in a scroll area (:attr:`form_area`)."""

    settingsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        defaults = RunConfig()
        self._arrays: list[ArrayInfo] = []

        # --- data
        self.data_combo = QComboBox()
        for label, spec, _shape in BUILTIN_DATA:
            self.data_combo.addItem(label, spec)
        self.data_combo.addItem(HDF5_ITEM, "hdf5")
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("path/to/data.h5")
        self.file_button = QPushButton("Browse…")
        self.array_combo = QComboBox()
        self.array_combo.setToolTip("Numeric arrays of the file: N x D, N x H x W or N x C x H x W")
        self.labels_combo = QComboBox()
        self.labels_combo.setToolTip("Optional integer labels, one per row (for colouring the latent map)")
        self.max_samples = _spin(0, 10_000_000, 0, 1000)
        self.max_samples.setSpecialValueText("all")
        self.max_samples.setToolTip("Train on at most this many samples (0 = all)")
        file_row = QHBoxLayout()
        file_row.setContentsMargins(0, 0, 0, 0)
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.file_button)
        self.file_row = QWidget()
        self.file_row.setLayout(file_row)
        data_box = QGroupBox("Data set")
        data_form = QFormLayout(data_box)
        data_form.addRow("Data", self.data_combo)
        data_form.addRow("File", self.file_row)
        data_form.addRow("Array", self.array_combo)
        data_form.addRow("Labels", self.labels_combo)
        data_form.addRow("Training samples", self.max_samples)
        self._data_form = data_form

        # --- model
        m = defaults.model
        self.arch_combo = QComboBox()
        self.arch_combo.addItem("MLP", "mlp")
        self.arch_combo.addItem("Convolutional", "conv")
        self.latent_spin = _spin(1, 1024, m.latent_dim)
        self.hidden_edit = QLineEdit(DEFAULT_HIDDEN["mlp"])
        self.hidden_edit.setToolTip(
            "MLP: hidden widths of the encoder (the decoder mirrors them).\n"
            "Conv: channels of each stride-2 stage, then the fully connected width."
        )
        self.likelihood_combo = QComboBox()
        self.likelihood_combo.addItem("Bernoulli (binary pixels)", "bernoulli")
        self.likelihood_combo.addItem("Gaussian", "gaussian")
        self.learn_std = QCheckBox("learn σ")
        self.learn_std.setChecked(True)
        self.obs_std = _dspin(1e-3, 10.0, 0.1, 3, 0.01)
        std_row = QHBoxLayout()
        std_row.setContentsMargins(0, 0, 0, 0)
        std_row.addWidget(self.learn_std)
        std_row.addWidget(self.obs_std, 1)
        self.std_row = QWidget()
        self.std_row.setLayout(std_row)
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        model_form.addRow("Architecture", self.arch_combo)
        model_form.addRow("Latent size", self.latent_spin)
        model_form.addRow("Hidden", self.hidden_edit)
        model_form.addRow("Likelihood", self.likelihood_combo)
        model_form.addRow("Obs. std σ", self.std_row)

        # --- objective
        o = defaults.objective
        self.beta_spin = _dspin(0.0, 1000.0, o.beta, 3, 0.1)
        self.beta_spin.setToolTip("Weight of the KL term: D + β R (β = 1 is the ELBO)")
        self.warmup_spin = _spin(0, 10_000_000, o.warmup_steps, 100, " steps")
        self.warmup_spin.setToolTip("Raise the KL weight linearly from 0 to β over this many steps")
        self.free_bits_spin = _dspin(0.0, 100.0, o.free_bits, 3, 0.05, " nats")
        self.free_bits_spin.setToolTip("Per-dimension KL floor λ (Kingma et al. 2016)")
        obj_box = QGroupBox("Objective")
        obj_form = QFormLayout(obj_box)
        obj_form.addRow("β (KL weight)", self.beta_spin)
        obj_form.addRow("KL warm-up", self.warmup_spin)
        obj_form.addRow("Free bits λ", self.free_bits_spin)

        # --- optimisation
        t = defaults.train
        self.epochs_spin = _spin(1, 100_000, t.epochs)
        self.batch_spin = _spin(1, 65_536, t.batch_size, 32)
        self.lr_spin = _dspin(1e-6, 1.0, t.lr, 6, 1e-4)
        self.seed_spin = _spin(0, 2**31 - 1, t.seed)
        opt_box = QGroupBox("Optimisation")
        opt_form = QFormLayout(opt_box)
        opt_form.addRow("Epochs", self.epochs_spin)
        opt_form.addRow("Batch size", self.batch_spin)
        opt_form.addRow("Learning rate", self.lr_spin)
        opt_form.addRow("Seed", self.seed_spin)

        # --- run file
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("automatic (runs folder)")
        self.out_edit.setToolTip("Where the run file is written; empty: a new file in the runs folder")
        self.out_button = QPushButton("…")
        self.out_button.setFixedWidth(32)
        out_row = QHBoxLayout()
        out_row.setContentsMargins(0, 0, 0, 0)
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.out_button)
        out_box = QGroupBox("Run file")
        out_box.setLayout(out_row)

        inner = QWidget()
        col = QVBoxLayout(inner)
        col.setContentsMargins(4, 4, 4, 4)
        for box in (data_box, model_box, obj_box, opt_box, out_box):
            col.addWidget(box)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner.setMinimumWidth(260)
        # Long items (an HDF5 array's description) never widen the form: the combos elide them.
        for combo in inner.findChildren(QComboBox):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        scroll.setMinimumWidth(inner.minimumWidth() + scroll.verticalScrollBar().sizeHint().width())
        self.form_area = scroll

        # --- wiring
        self.data_combo.currentIndexChanged.connect(self._data_kind_changed)
        self.file_button.clicked.connect(self._browse_data)
        self.file_edit.editingFinished.connect(lambda: self.set_data_file(self.file_edit.text(), quiet=True))
        self.arch_combo.currentIndexChanged.connect(self._arch_changed)
        self.likelihood_combo.currentIndexChanged.connect(self._likelihood_changed)
        self.learn_std.toggled.connect(lambda on: self.obs_std.setEnabled(not on))
        self.out_button.clicked.connect(self._browse_out)
        for w in inner.findChildren(QWidget):  # any edit of a saved value
            if isinstance(w, (QSpinBox, QDoubleSpinBox)):
                w.valueChanged.connect(self.settingsChanged)
            elif isinstance(w, QComboBox):
                w.currentIndexChanged.connect(self.settingsChanged)
            elif isinstance(w, QLineEdit):
                w.textChanged.connect(self.settingsChanged)
            elif isinstance(w, QCheckBox):
                w.toggled.connect(self.settingsChanged)

        self._data_kind_changed()
        self._likelihood_changed()
        self.obs_std.setEnabled(False)

    # ------------------------------------------------------------------ form <-> config
    def data_spec(self) -> tuple[str, str | None, tuple[int, ...] | None]:
        """(data spec, labels path or None, sample shape if known) from the form."""
        kind = self.data_combo.currentData()
        if kind != "hdf5":
            shape = next(s for _l, spec, s in BUILTIN_DATA if spec == kind)
            return kind, None, shape
        path = self.file_edit.text().strip()
        if not path:
            raise ConfigError("choose an HDF5 file for the data set (Data > HDF5 file…)")
        info = self.array_combo.currentData()
        if info is None:
            raise ConfigError(f"{path}: choose an array of the file to train on")
        labels = self.labels_combo.currentData()
        return f"{path}:{info.path}", (labels or None), sample_shape_of(info.shape)

    def config(self) -> RunConfig:
        """The run configuration in the form; raises ConfigError with one line if invalid."""
        spec, labels, shape = self.data_spec()
        try:
            hidden = tuple(int(h) for h in self.hidden_edit.text().replace(";", ",").split(",") if h.strip())
        except ValueError:
            raise ConfigError(
                f"hidden widths must be integers separated by commas, not {self.hidden_edit.text()!r}"
            ) from None
        likelihood = self.likelihood_combo.currentData()
        model = ModelConfig(
            arch=self.arch_combo.currentData(),
            data_shape=shape or (1, 28, 28),
            latent_dim=self.latent_spin.value(),
            hidden=hidden,
            likelihood=likelihood,
            obs_std=None if (likelihood != "gaussian" or self.learn_std.isChecked()) else self.obs_std.value(),
        )
        objective = ObjectiveConfig(
            beta=self.beta_spin.value(),
            warmup_steps=self.warmup_spin.value(),
            free_bits=self.free_bits_spin.value(),
        )
        train = TrainConfig(
            data=spec,
            labels=labels,
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=self.lr_spin.value(),
            seed=self.seed_spin.value(),
            max_train_samples=self.max_samples.value() or None,
        )
        return RunConfig(model=model, objective=objective, train=train)

    def set_config(self, cfg: RunConfig) -> None:
        """Fill the form from a configuration (e.g. the current run's, to train a variant)."""
        data = cfg.train.data
        idx = self.data_combo.findData(data)
        if idx >= 0:
            self.data_combo.setCurrentIndex(idx)
        else:
            from models.data import parse_hdf5_spec

            path, array = parse_hdf5_spec(data)
            self.data_combo.setCurrentIndex(self.data_combo.findData("hdf5"))
            self.set_data_file(path, quiet=True, array=array, labels=cfg.train.labels or "")
        self.max_samples.setValue(int(cfg.train.max_train_samples or 0))
        self.arch_combo.setCurrentIndex(max(0, self.arch_combo.findData(cfg.model.arch)))
        self.latent_spin.setValue(int(cfg.model.latent_dim))
        self.hidden_edit.setText(", ".join(str(h) for h in cfg.model.hidden))
        self.likelihood_combo.setCurrentIndex(max(0, self.likelihood_combo.findData(cfg.model.likelihood)))
        self.learn_std.setChecked(cfg.model.obs_std is None)
        if cfg.model.obs_std is not None:
            self.obs_std.setValue(float(cfg.model.obs_std))
        self.beta_spin.setValue(float(cfg.objective.beta))
        self.warmup_spin.setValue(int(cfg.objective.warmup_steps))
        self.free_bits_spin.setValue(float(cfg.objective.free_bits))
        self.epochs_spin.setValue(int(cfg.train.epochs))
        self.batch_spin.setValue(int(cfg.train.batch_size))
        self.lr_spin.setValue(float(cfg.train.lr))
        self.seed_spin.setValue(int(cfg.train.seed))

    # ------------------------------------------------------------------ data file
    def set_data_file(self, path: str, *, quiet: bool = False, array: str | None = None,
                      labels: str | None = None) -> bool:
        """Use the HDF5 file ``path`` as data: list its numeric arrays in the pickers.

        ``labels`` None preselects the file's labels array (:func:`~explorer.datafiles.preferred_labels`);
        ``""`` selects none.

        Errors (not HDF5, no numeric array) are shown in one dialog unless ``quiet``; returns
        whether the file can be used.
        """
        from models.errors import DataError

        path = path.strip()
        if not path:
            return False
        # Check the file first: one that cannot be used leaves the form as it was.
        try:
            arrays = list_arrays(path)
            data_arrays = [a for a in arrays if a.is_data]
            if not data_arrays:
                raise DataError(f"{path}: no numeric array of rank 2 to 4 to use as data")
        except DataError as exc:
            if not quiet:
                dialogs.show_error(self, str(exc))
            return False
        self.data_combo.setCurrentIndex(self.data_combo.findData("hdf5"))
        self.file_edit.setText(path)
        self.array_combo.clear()
        self.labels_combo.clear()
        self.labels_combo.addItem("(none)", "")
        self._arrays = arrays
        for a in data_arrays:
            self.array_combo.addItem(a.describe(), a)
        for a in arrays:
            if a.is_labels:
                self.labels_combo.addItem(a.describe(), a.path)
        if array is not None:
            for i in range(self.array_combo.count()):
                if self.array_combo.itemData(i).path == array.strip("/"):
                    self.array_combo.setCurrentIndex(i)
        if labels is None:  # not named: the file's labels array for the chosen data, if any
            guess = preferred_labels(arrays, self.array_combo.currentData())
            labels = guess.path if guess is not None else ""
        if labels:
            i = self.labels_combo.findData(labels.strip("/"))
            if i >= 0:
                self.labels_combo.setCurrentIndex(i)
        return True

    def _browse_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open data set", self.file_edit.text(),
                                              "HDF5 files (*.h5 *.hdf5 *.he5);;All files (*)")
        if path:
            self.set_data_file(path)

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Run file", self.out_edit.text(),
                                              "Run files (*.h5)")
        if path:
            if not path.endswith((".h5", ".hdf5")):
                path += ".h5"
            self.out_edit.setText(path)

    def _data_kind_changed(self) -> None:
        hdf5 = self.data_combo.currentData() == "hdf5"
        for w in (self.file_row, self.array_combo, self.labels_combo):
            self._data_form.setRowVisible(w, hdf5)

    def _arch_changed(self) -> None:
        arch = self.arch_combo.currentData()
        other = "mlp" if arch == "conv" else "conv"
        if self.hidden_edit.text().replace(" ", "") == DEFAULT_HIDDEN[other].replace(" ", ""):
            self.hidden_edit.setText(DEFAULT_HIDDEN[arch])

    def _likelihood_changed(self) -> None:
        gaussian = self.likelihood_combo.currentData() == "gaussian"
        self.std_row.setEnabled(gaussian)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        """Store the form (as the configuration JSON and the data choice; not the run file)."""
        settings.beginGroup("training")
        try:
            settings.setValue("config", self._config_for_settings())
            settings.setValue("data_kind", self.data_combo.currentData())
            settings.setValue("data_file", self.file_edit.text())
        finally:
            settings.endGroup()

    def _config_for_settings(self) -> str:
        try:
            return self.config().to_json()
        except ConfigError:
            # An unfinished HDF5 choice: keep the rest of the form.
            idx = self.data_combo.currentIndex()
            self.data_combo.blockSignals(True)
            self.data_combo.setCurrentIndex(0)
            try:
                return self.config().to_json()
            except ConfigError:
                return ""
            finally:
                self.data_combo.setCurrentIndex(idx)
                self.data_combo.blockSignals(False)

    def restore_settings(self, settings: QSettings) -> None:
        settings.beginGroup("training")
        try:
            text = settings.value("config", "", type=str)
            kind = settings.value("data_kind", "", type=str)
            data_file = settings.value("data_file", "", type=str)
        finally:
            settings.endGroup()
        if text:
            try:
                self.set_config(RunConfig.from_json(text))
            except (ConfigError, TypeError, ValueError):
                pass  # a stale or hand-edited setting: keep the defaults
        if kind == "hdf5" and data_file and self.file_edit.text() != data_file:
            self.set_data_file(data_file, quiet=True)
        elif kind and kind != "hdf5":
            i = self.data_combo.findData(kind)
            if i >= 0:
                self.data_combo.setCurrentIndex(i)
        self._data_kind_changed()
