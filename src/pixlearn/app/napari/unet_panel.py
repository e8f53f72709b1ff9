"""The U-Net part of the dock widget: settings, training in a worker, progress and loss curve.

Training is :func:`pixlearn.nets.fit.fit_network`: semantic on the same strokes as the preview
(unlabelled pixels ignored), or instances on a Labels layer of objects (painted or loaded), with a per-epoch callback for progress and the stop button (the
best weights are kept), then :func:`pixlearn.predict.apply_model`. Torch is imported only inside
the worker. :class:`UNetPanel` is one of the parts of :class:`pixlearn.app.napari.widget.PixlearnWidget`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pixlearn.app.napari.image_panel import UNET, WidgetPart
from pixlearn.app.napari.layers import (
    canonical_image,
    label_colormap,
)
from pixlearn.classical.annotation import scribbles_to_targets

STROKES_TARGET = "strokes (semantic)"


class ProgressBridge(QObject):
    """Carries progress from a worker thread to the GUI thread (queued signal)."""

    progress = Signal(object)



class LossCurve(QWidget):
    """A small plot of the training and validation loss per epoch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.records: list[dict[str, float]] = []
        self.setMinimumHeight(70)

    def set_records(self, records: list[dict[str, float]]) -> None:
        self.records = list(records)
        self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#262930"))
        values = [r[k] for r in self.records for k in ("train_loss", "val_loss") if np.isfinite(r.get(k, np.nan))]
        if len(self.records) < 1 or not values:
            painter.end()
            return
        lo, hi = min(values), max(values)
        hi = hi if hi > lo else lo + 1.0
        w, h, n = self.width() - 8, self.height() - 8, max(1, len(self.records) - 1)
        for key, color in (("train_loss", "#4c9be8"), ("val_loss", "#f5a623")):
            painter.setPen(QPen(QColor(color), 2))
            points = [(4 + w * i / n, 4 + h * (1 - (r[key] - lo) / (hi - lo))) for i, r in enumerate(self.records)]
            for (x0, y0), (x1, y1) in zip(points, points[1:]):
                painter.drawLine(int(x0), int(y0), int(x1), int(y1))
            if len(points) == 1:
                painter.drawEllipse(int(points[0][0]) - 2, int(points[0][1]) - 2, 4, 4)
        painter.end()



class UNetPanel(WidgetPart):
    """U-Net settings, training in the background, its progress (a part of the widget)."""

    def _build_unet_panel(self, layout: QVBoxLayout) -> None:
        unet = QGroupBox("U-Net")
        ul = QVBoxLayout(unet)
        uform = QFormLayout()
        self.depth_spin = _spin(1, 5, 2)
        self.channels_spin = _spin(2, 128, 16)
        self.epochs_spin = _spin(1, 10_000, 30)
        self.steps_spin = _spin(1, 10_000, 20)
        self.patch_spin = _spin(8, 1024, 96)
        self.batch_spin = _spin(1, 256, 4)
        for label, spin in (("depth", self.depth_spin), ("base channels", self.channels_spin),
                            ("epochs", self.epochs_spin), ("steps per epoch", self.steps_spin),
                            ("patch size", self.patch_spin), ("batch size", self.batch_spin)):
            uform.addRow(label, spin)
        ul.addLayout(uform)
        self.targets_combo = QComboBox()
        self.targets_combo.addItem(STROKES_TARGET)
        self.viewer.layers.events.inserted.connect(self._refresh_targets)
        self.viewer.layers.events.removed.connect(self._refresh_targets)
        uform.addRow("train on", self.targets_combo)
        row = QHBoxLayout()
        self.train_button = QPushButton("train U-Net")
        self.train_button.clicked.connect(lambda: self.train_unet())
        self.stop_button = QPushButton("stop (keep best)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_unet)
        row.addWidget(self.train_button)
        row.addWidget(self.stop_button)
        ul.addLayout(row)
        self.progress_bar = QProgressBar()
        self.progress_label = QLabel("")
        self.curve = LossCurve()
        ul.addWidget(self.progress_bar)
        ul.addWidget(self.progress_label)
        ul.addWidget(self.curve)
        self.save_unet_button = QPushButton("save U-Net...")
        self.save_unet_button.setEnabled(False)
        self.save_unet_button.clicked.connect(self._save_unet_dialog)
        ul.addWidget(self.save_unet_button)
        layout.addWidget(unet)

    # ------------------------------------------------------------------ U-Net

    def _refresh_targets(self, *args: Any) -> None:
        """Offer the strokes and every Labels layer that is not pixlearn's own as training targets."""
        current = self.targets_combo.currentText()
        names = [layer.name for layer in self.viewer.layers
                 if layer.__class__.__name__ == "Labels" and not layer.name.startswith("pixlearn ")]
        self.targets_combo.blockSignals(True)
        self.targets_combo.clear()
        self.targets_combo.addItems([STROKES_TARGET] + [f"{name} (instances)" for name in names])
        index = self.targets_combo.findText(current)
        self.targets_combo.setCurrentIndex(max(index, 0))
        self.targets_combo.blockSignals(False)

    def unet_configs(self, out_channels: int | None = None) -> tuple[Any, Any]:
        """``(UNetConfig, TrainConfig)`` from the widget's settings (imports torch); `out_channels`
        defaults to one per class (semantic)."""
        from pixlearn.nets.training import TrainConfig
        from pixlearn.nets.unet import UNetConfig

        n_channels = 1 if "C" not in self.axes else self.image_layer.data.shape[self.axes.index("C")]
        nd = len(self.spatial)
        outputs = len(self.class_names) if out_channels is None else out_channels
        unet = UNetConfig(ndim=nd, in_channels=int(n_channels), out_channels=outputs,
                          depth=self.depth_spin.value(), base_channels=self.channels_spin.value())
        patch = tuple(min(self.patch_spin.value(), s) for s in self.spatial)
        if nd == 3:
            patch = (min(self.spatial[0], max(8, self.patch_spin.value() // 4)),) + patch[1:]
        train = TrainConfig(epochs=self.epochs_spin.value(), steps_per_epoch=self.steps_spin.value(),
                            batch_size=self.batch_spin.value(), patch_shape=patch, patience=0,
                            val_patches=max(2, self.batch_spin.value()))
        return unet, train

    def train_unet(self, instances_layer: str | None = None) -> None:
        """Train a U-Net in the background; the result becomes a Labels layer.

        Parameters
        ----------
        instances_layer : str, optional
            A Labels layer of objects (``0`` background, ``1..N`` objects): train for instances
            (foreground and distance, seeded watershed). Default: the choice in the widget;
            the strokes train a semantic network.
        """
        if self._unet_worker is not None:
            return
        choice = self.targets_combo.currentText()
        if instances_layer is None and choice != STROKES_TARGET:
            instances_layer = choice.removesuffix(" (instances)")
        image = np.asarray(canonical_image(self.image_layer, self.axes))
        setup = self._training_targets(instances_layer)
        if setup is None:
            return
        task, names, targets, (unet, train) = setup
        self._stop.clear()
        self._records = []
        self._train_started = time.monotonic()
        stop, bridge = self._stop, self._bridge

        def job() -> Any:
            from pixlearn.nets.fit import FitOptions, fit_network
            from pixlearn.predict import apply_model

            def callback(epoch: int, record: dict[str, float], net: Any) -> bool:
                bridge.progress.emit(dict(record, epochs=train.epochs))
                return stop.is_set()

            model = fit_network([image], [targets], task, unet=unet, train_config=train, class_names=names,
                                options=FitOptions(callbacks=(callback,)))
            return model, apply_model(model, image)

        from superqt.utils import create_worker

        worker = create_worker(job, _start_thread=False)
        worker.returned.connect(self._show_unet)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_unet_finished)
        self._unet_worker = worker
        self.train_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress_bar.setRange(0, train.epochs)
        self.progress_bar.setValue(0)
        self.progress_label.setText("training...")
        worker.start()

    def _training_targets(self, instances_layer: str | None) -> tuple[str, Any, np.ndarray, tuple[Any, Any]] | None:
        """Task, class names, targets and the (UNetConfig, TrainConfig) of a training run, from the
        objects of `instances_layer` or, without one, the strokes; ``None`` (with a status line)
        when they cannot train."""
        if instances_layer is not None:
            from pixlearn.postprocess.instances import N_OUTPUTS

            targets = np.asarray(self.viewer.layers[instances_layer].data).astype(np.int64)
            if targets.shape != tuple(self.spatial) or targets.max() < 1:
                self.status.setText(f"'{instances_layer}' must hold objects of the image's shape {self.spatial}")
                return None
            return "instances", (), targets, self.unet_configs(out_channels=N_OUTPUTS)
        if self.scribbles_layer is None:
            return None
        strokes = np.asarray(self.scribbles_layer.data).copy()
        if len(np.unique(strokes[strokes > 0])) < 2:
            self.status.setText("paint at least two classes before training a U-Net")
            return None
        return "semantic", self.class_names, scribbles_to_targets(strokes), self.unet_configs()

    def stop_unet(self) -> None:
        """Stop training after the current epoch; the best weights so far are kept."""
        self._stop.set()
        self.progress_label.setText("stopping after this epoch...")

    def _on_unet_progress(self, record: dict[str, Any]) -> None:
        self._records.append(record)
        epoch, epochs = int(record["epoch"]), int(record["epochs"])
        elapsed = time.monotonic() - self._train_started
        left = elapsed / max(epoch, 1) * (epochs - epoch)
        self.progress_bar.setValue(epoch)
        self.progress_label.setText(f"epoch {epoch}/{epochs}  loss {record['train_loss']:.3f}  "
                                    f"validation {record['val_loss']:.3f}  ~{left:.0f} s left")
        self.curve.set_records(self._records)
        self.unet_progress.emit(record)

    def _show_unet(self, returned: Any) -> None:
        model, labels = returned
        self.unet_model = model
        if model.task == "instances":  # one colour per object
            if UNET in self.viewer.layers:
                self.viewer.layers.remove(UNET)
            nd = len(self.spatial)
            layer = self.viewer.add_labels(np.asarray(labels), name=UNET, opacity=0.6,
                                           scale=self.image_layer.scale[-nd:],
                                           translate=self.image_layer.translate[-nd:])
        else:
            layer = self._output_layer(UNET, "labels", np.uint8, colormap=label_colormap(len(self.class_names)),
                                       opacity=0.6)
            layer.data[...] = np.asarray(labels) + 1
            layer.metadata["class_names"] = list(self.class_names)
            layer.refresh()
        history = model.history
        self.progress_label.setText(f"U-Net: best epoch {history.get('best_epoch')} of {history.get('epochs')} "
                                    f"({history.get('stop_reason')}), validation loss {history.get('best_val_loss') or 0:.3f}")
        self.save_unet_button.setEnabled(True)
        self.unet_finished.emit(model)

    def _on_unet_finished(self) -> None:
        self._unet_worker = None
        self.train_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    @property
    def training(self) -> bool:
        """Whether a U-Net is being trained."""
        return self._unet_worker is not None


def _spin(lo: int, hi: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    return spin

