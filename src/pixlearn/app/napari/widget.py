"""The dock widget: scribbles -> live random-forest preview -> uncertainty, suggestions -> U-Net.

All computation runs in background threads (``superqt.utils.create_worker``), one library call
each; the widget only moves arrays between napari layers and the library:

* live preview: :meth:`pixlearn.classical.interactive.InteractiveSession.step` on the strokes
  and the region on screen, debounced after each stroke and after panning or changing plane;
* suggestions: :meth:`~pixlearn.classical.interactive.InteractiveSession.suggest`;
* U-Net: :func:`pixlearn.nets.fit.fit_network` (semantic, unlabelled pixels ignored) with a
  per-epoch callback for progress and the stop button (the best weights are kept), then
  :func:`pixlearn.predict.apply_model`;
* models: :func:`pixlearn.models.model_file.save_model` / ``load_model`` and ``apply_model``.

Torch is imported only inside the U-Net and model workers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pixlearn.app.napari.layers import (
    canonical_image,
    check_axes,
    class_color,
    default_axes,
    label_colormap,
    rectangle,
    snap_region,
    spatial_shape,
    visible_region,
)
from pixlearn.classical.annotation import scribbles_to_targets
from pixlearn.classical.features import FeatureConfig
from pixlearn.classical.interactive import InteractiveSession
from pixlearn.classical.preview import PreviewConfig

logger = logging.getLogger(__name__)

SCRIBBLES = "pixlearn scribbles"
PREVIEW = "pixlearn preview"
UNCERTAINTY = "pixlearn uncertainty"
SUGGESTIONS = "pixlearn suggestions"
UNET = "pixlearn U-Net"
DEFAULT_CLASSES = ("background", "foreground")


class _Bridge(QObject):
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


class PixlearnWidget(QWidget):
    """Dock widget of the pixlearn plugin (see the module docstring).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    feature_cfg : FeatureConfig, optional
        Filter bank of the preview and of the saved random forest.
    preview_cfg : PreviewConfig, optional
    debounce_ms : int
        Quiet time after a stroke (or a pan) before the preview is updated.
    """

    preview_updated = Signal()
    suggestions_updated = Signal()
    unet_progress = Signal(object)
    unet_finished = Signal(object)
    model_applied = Signal(object)
    model_saved = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer: Any, *, feature_cfg: FeatureConfig | None = None,
                 preview_cfg: PreviewConfig | None = None, debounce_ms: int = 300) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.feature_cfg = feature_cfg or FeatureConfig()
        self.preview_cfg = preview_cfg or PreviewConfig()
        self.session: InteractiveSession | None = None
        self._session_key: tuple[Any, ...] | None = None
        self.rf_model: Any | None = None
        self.unet_model: Any | None = None
        self.loaded_model: Any | None = None
        self._worker: Any | None = None
        self._unet_worker: Any | None = None
        self._queue: list[Callable[[], None]] = []
        self._preview_pending = False
        self._stop = threading.Event()
        self._bridge = _Bridge()
        self._bridge.progress.connect(self._on_unet_progress)
        self._records: list[dict[str, float]] = []
        self._train_started = 0.0
        self._build(debounce_ms)
        self.viewer.layers.events.inserted.connect(self._refresh_images)
        self.viewer.layers.events.removed.connect(self._refresh_images)
        self.viewer.camera.events.center.connect(self._on_view_changed)
        self.viewer.camera.events.zoom.connect(self._on_view_changed)
        self.viewer.dims.events.current_step.connect(self._on_view_changed)
        self._refresh_images()

    # ------------------------------------------------------------------ layout

    def _build(self, debounce_ms: int) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.image_combo = QComboBox()
        self.image_combo.currentIndexChanged.connect(self._on_image_changed)
        self.axes_edit = QLineEdit()
        self.axes_edit.setToolTip("axes of the layer's data: C first (multichannel), Z, Y, X; RGB: YXC")
        self.axes_edit.editingFinished.connect(self._on_image_changed)
        form.addRow("image", self.image_combo)
        form.addRow("axes", self.axes_edit)
        layout.addLayout(form)

        classes = QGroupBox("classes (double-click to rename)")
        cl = QVBoxLayout(classes)
        self.class_list = QListWidget()
        self.class_list.setMaximumHeight(110)
        self.class_list.currentRowChanged.connect(self._on_class_selected)
        self.class_list.itemChanged.connect(self._on_class_renamed)
        cl.addWidget(self.class_list)
        row = QHBoxLayout()
        self.add_class_button = QPushButton("add class")
        self.add_class_button.clicked.connect(lambda: self.add_class())
        self.scribbles_button = QPushButton("scribbles layer")
        self.scribbles_button.setToolTip("make (or select) the Labels layer to paint on")
        self.scribbles_button.clicked.connect(lambda: self.ensure_scribbles())
        row.addWidget(self.add_class_button)
        row.addWidget(self.scribbles_button)
        cl.addLayout(row)
        layout.addWidget(classes)
        for name in DEFAULT_CLASSES:
            self.add_class(name)

        preview = QGroupBox("random forest")
        pl = QVBoxLayout(preview)
        self.live_check = QCheckBox("live preview")
        self.live_check.setChecked(True)
        self.live_check.toggled.connect(lambda on: on and self.request_preview())
        pl.addWidget(self.live_check)
        row = QHBoxLayout()
        self.suggest_button = QPushButton("suggest where to paint")
        self.suggest_button.clicked.connect(lambda: self.suggest())
        self.suggest_count = QSpinBox()
        self.suggest_count.setRange(1, 20)
        self.suggest_count.setValue(3)
        row.addWidget(self.suggest_button)
        row.addWidget(self.suggest_count)
        pl.addLayout(row)
        row = QHBoxLayout()
        self.save_rf_button = QPushButton("save model...")
        self.save_rf_button.clicked.connect(self._save_rf_dialog)
        row.addWidget(self.save_rf_button)
        pl.addLayout(row)
        layout.addWidget(preview)

        unet = QGroupBox("U-Net on the same strokes")
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

        files = QGroupBox("files")
        fl = QHBoxLayout(files)
        for text, slot in (("apply model...", self._apply_dialog), ("save scribbles...", self._save_scribbles_dialog),
                           ("load scribbles...", self._load_scribbles_dialog)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            fl.addWidget(button)
        layout.addWidget(files)
        self.status = QLabel("paint two classes on the scribbles layer")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self.request_preview)

    # ------------------------------------------------------------------ layers and classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, in painted-value order (class ``k`` is painted as ``k + 1``)."""
        return tuple(self.class_list.item(i).text() for i in range(self.class_list.count()))

    def add_class(self, name: str | None = None) -> None:
        """Add a class (its colour is the next of the palette) and make it the painting class."""
        k = self.class_list.count() + 1
        item = QListWidgetItem(name or f"class {k}")
        pixmap = QPixmap(12, 12)
        pixmap.fill(QColor(class_color(k)))
        item.setIcon(QIcon(pixmap))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.class_list.addItem(item)
        self.class_list.setCurrentRow(k - 1)
        if self.session is not None:
            self.session.class_names = self.class_names

    def set_class_names(self, names: list[str] | tuple[str, ...]) -> None:
        """Replace the classes."""
        self.class_list.blockSignals(True)
        self.class_list.clear()
        self.class_list.blockSignals(False)
        for name in names:
            self.add_class(name)

    def _on_class_renamed(self, item: QListWidgetItem) -> None:
        if self.session is not None:
            self.session.class_names = self.class_names
        for name in (PREVIEW, SCRIBBLES):
            if name in self.viewer.layers:
                self.viewer.layers[name].metadata["class_names"] = list(self.class_names)

    def _on_class_selected(self, row: int) -> None:
        layer = self.scribbles_layer
        if layer is not None and row >= 0:
            layer.selected_label = row + 1

    def _refresh_images(self, event: Any = None) -> None:
        names = [layer.name for layer in self.viewer.layers if layer._type_string == "image"
                 and not layer.name.startswith("pixlearn ")]
        current = self.image_combo.currentText()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems(names)
        if current in names:
            self.image_combo.setCurrentText(current)
        self.image_combo.blockSignals(False)
        if self.image_combo.currentText() != current:
            self._on_image_changed()

    @property
    def image_layer(self) -> Any | None:
        name = self.image_combo.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    @property
    def scribbles_layer(self) -> Any | None:
        return self.viewer.layers[SCRIBBLES] if SCRIBBLES in self.viewer.layers else None

    def _on_image_changed(self, *args: Any) -> None:
        layer = self.image_layer
        if layer is None:
            return
        if self.sender() is not self.axes_edit or not self.axes_edit.text():
            self.axes_edit.setText(default_axes(layer))
        self.session, self._session_key = None, None
        try:
            self.axes  # noqa: B018 - validates
        except ValueError as exc:
            self.status.setText(str(exc))

    @property
    def axes(self) -> str:
        """Axes of the current image layer's data."""
        layer = self.image_layer
        if layer is None:
            raise ValueError("no image layer")
        shape = tuple(layer.data[0].shape if layer.multiscale else layer.data.shape)
        return check_axes(self.axes_edit.text() or default_axes(layer), shape, bool(layer.rgb))

    @property
    def spatial(self) -> tuple[int, ...]:
        layer = self.image_layer
        shape = tuple(layer.data[0].shape if layer.multiscale else layer.data.shape)
        return spatial_shape(shape, self.axes)

    def ensure_scribbles(self) -> Any:
        """The scribbles Labels layer (made to fit the current image when missing or mis-shaped)."""
        layer = self.scribbles_layer
        spatial = self.spatial
        if layer is not None and tuple(layer.data.shape) == spatial:
            self.viewer.layers.selection.active = layer
            return layer
        if layer is not None:
            self.viewer.layers.remove(layer)
        layer = self.viewer.add_labels(np.zeros(spatial, np.uint8), name=SCRIBBLES,
                                       colormap=label_colormap(len(self.class_names)),
                                       scale=self.image_layer.scale[-len(spatial):],
                                       translate=self.image_layer.translate[-len(spatial):])
        layer.brush_size = 5
        layer.mode = "paint"
        layer.selected_label = max(1, self.class_list.currentRow() + 1)
        layer.metadata["class_names"] = list(self.class_names)
        layer.events.paint.connect(self._on_strokes)
        layer.events.data.connect(self._on_strokes)
        self.viewer.layers.selection.active = layer
        return layer

    def _output_layer(self, name: str, kind: str, dtype: Any, **kwargs: Any) -> Any:
        spatial = self.spatial
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            if tuple(layer.data.shape) == spatial:
                return layer
            self.viewer.layers.remove(layer)
        image = self.image_layer
        place = dict(scale=image.scale[-len(spatial):], translate=image.translate[-len(spatial):])
        add = self.viewer.add_labels if kind == "labels" else self.viewer.add_image
        layer = add(np.zeros(spatial, dtype), name=name, **place, **kwargs)
        scribbles = self.scribbles_layer
        if scribbles is not None:  # keep the strokes on top, and the one being painted selected
            self.viewer.layers.move(self.viewer.layers.index(scribbles), len(self.viewer.layers))
            self.viewer.layers.selection.active = scribbles
        return layer

    # ------------------------------------------------------------------ workers

    @property
    def busy(self) -> bool:
        """Whether a preview/suggestion/model job is running or queued."""
        return self._worker is not None or bool(self._queue) or self._preview_pending

    def _run(self, fn: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """Run `fn` in a worker thread after the running job; `done(result)` in the GUI thread."""
        from superqt.utils import create_worker

        def start() -> None:
            worker = create_worker(fn, _start_thread=False)
            worker.returned.connect(done)
            worker.errored.connect(self._on_error)
            worker.finished.connect(self._on_finished)
            self._worker = worker
            worker.start()

        if self._worker is None:
            start()
        else:
            self._queue.append(start)

    def _on_finished(self) -> None:
        self._worker = None
        if self._queue:
            self._queue.pop(0)()
        elif self._preview_pending:
            self._preview_pending = False
            self.request_preview()

    def _on_error(self, exc: BaseException) -> None:
        logger.warning("pixlearn job failed: %s", exc, exc_info=exc)
        self.status.setText(f"error: {exc}")
        self.failed.emit(str(exc))

    def _session_factory(self) -> Callable[[], InteractiveSession]:
        """A function (to call in a worker) that gives the session of the current image and axes.

        What it needs from the widgets is read here, in the GUI thread.
        """
        axes = self.axes
        key = (self.image_combo.currentText(), axes, id(self.image_layer.data), self.feature_cfg, self.preview_cfg)
        layer, names = self.image_layer, self.class_names

        def get() -> InteractiveSession:
            if self.session is None or self._session_key != key:
                image = canonical_image(layer, axes)
                self.session = InteractiveSession(image, self.feature_cfg, self.preview_cfg, class_names=names)
                self._session_key = key
            self.session.class_names = names
            return self.session

        return get

    # ------------------------------------------------------------------ live preview

    def _on_strokes(self, event: Any = None) -> None:
        if self.live_check.isChecked():
            self._timer.start()

    def _on_view_changed(self, event: Any = None) -> None:
        if self.live_check.isChecked() and self.session is not None and self.session.is_fitted:
            self._timer.start()

    def current_region(self) -> tuple[slice, ...]:
        """The spatial region on screen (grown to a 64-pixel grid)."""
        region = visible_region(self.image_layer, self.spatial, tuple(self.viewer.dims.displayed),
                                tuple(self.viewer.dims.point), self.axes)
        return snap_region(region, self.spatial)

    def request_preview(self, region: tuple[slice, ...] | None = None) -> None:
        """Refit on the strokes and predict `region` (default: the view) in the background."""
        scribbles = self.scribbles_layer
        if self.image_layer is None or scribbles is None:
            return
        if self._worker is not None:
            self._preview_pending = True
            return
        strokes = np.asarray(scribbles.data).copy()
        region = self.current_region() if region is None else region
        if strokes.max(initial=0) > len(self.class_names):
            self.status.setText(f"painted value {int(strokes.max())} has no class: add classes")
            return
        get_session = self._session_factory()

        def job() -> Any:
            session = get_session()
            start = time.perf_counter()
            result = session.step(strokes, region)
            return region, result, time.perf_counter() - start

        self._run(job, self._show_preview)

    def _show_preview(self, returned: Any) -> None:
        region, result, seconds = returned
        if result is None:
            self.status.setText("paint at least two classes for a preview")
            return
        labels, uncertainty = result
        preview = self._output_layer(PREVIEW, "labels", np.uint8, opacity=0.45,
                                     colormap=label_colormap(len(self.class_names)))
        preview.metadata["class_names"] = list(self.class_names)
        preview.data[region] = labels + 1
        preview.refresh()
        layer = self._output_layer(UNCERTAINTY, "image", np.float32, colormap="magma", contrast_limits=(0.0, 1.0),
                                   blending="additive", visible=False)
        layer.data[region] = uncertainty
        layer.refresh()
        n = self.session.n_labelled if self.session is not None else 0
        self.status.setText(f"preview of {_shape(region)} updated in {seconds:.2f} s ({n} painted pixels)")
        self.preview_updated.emit()

    # ------------------------------------------------------------------ suggestions

    def suggest(self, n: int | None = None) -> None:
        """Mark the `n` regions where new strokes would help most (a Shapes layer)."""
        if self.scribbles_layer is None or self.image_layer is None:
            return
        n = self.suggest_count.value() if n is None else n
        strokes = np.asarray(self.scribbles_layer.data).copy()
        view = self.current_region()
        # 2D: the whole image; 3D: the plane on screen
        region = tuple(slice(0, s) for s in self.spatial)
        if len(self.spatial) == 3:
            region = (view[0] if view[0].stop - view[0].start == 1 else slice(0, 1),) + region[1:]
        get_session = self._session_factory()

        def job() -> Any:
            session = get_session()
            if session.step(strokes, view) is None:
                return None
            return session.suggest(n, region)

        self._run(job, self._show_suggestions)

    def _show_suggestions(self, suggestions: Any) -> None:
        if suggestions is None:
            self.status.setText("paint at least two classes first")
            return
        shapes = [rectangle(s.region) for s in suggestions]
        if SUGGESTIONS in self.viewer.layers:
            self.viewer.layers.remove(SUGGESTIONS)
        image = self.image_layer
        nd = len(self.spatial)
        layer = self.viewer.add_shapes(shapes, shape_type="rectangle", name=SUGGESTIONS, edge_color="#ffff00",
                                       face_color="transparent", edge_width=4, scale=image.scale[-nd:],
                                       translate=image.translate[-nd:])
        layer.metadata["scores"] = [s.score for s in suggestions]
        if self.scribbles_layer is not None:
            self.viewer.layers.selection.active = self.scribbles_layer
        self.status.setText("paint in the yellow boxes: " + ", ".join(f"{s.score:.2f}" for s in suggestions))
        self.suggestions_updated.emit()

    # ------------------------------------------------------------------ U-Net

    def unet_configs(self) -> tuple[Any, Any]:
        """``(UNetConfig, TrainConfig)`` from the widget's settings (imports torch)."""
        from pixlearn.nets.training import TrainConfig
        from pixlearn.nets.unet import UNetConfig

        n_channels = 1 if "C" not in self.axes else self.image_layer.data.shape[self.axes.index("C")]
        nd = len(self.spatial)
        unet = UNetConfig(ndim=nd, in_channels=int(n_channels), out_channels=len(self.class_names),
                          depth=self.depth_spin.value(), base_channels=self.channels_spin.value())
        patch = tuple(min(self.patch_spin.value(), s) for s in self.spatial)
        if nd == 3:
            patch = (min(self.spatial[0], max(8, self.patch_spin.value() // 4)),) + patch[1:]
        train = TrainConfig(epochs=self.epochs_spin.value(), steps_per_epoch=self.steps_spin.value(),
                            batch_size=self.batch_spin.value(), patch_shape=patch, patience=0,
                            val_patches=max(2, self.batch_spin.value()))
        return unet, train

    def train_unet(self) -> None:
        """Train a U-Net on the strokes in the background; the result becomes a Labels layer."""
        if self._unet_worker is not None or self.scribbles_layer is None:
            return
        strokes = np.asarray(self.scribbles_layer.data).copy()
        if len(np.unique(strokes[strokes > 0])) < 2:
            self.status.setText("paint at least two classes before training a U-Net")
            return
        image = np.asarray(canonical_image(self.image_layer, self.axes))
        targets = scribbles_to_targets(strokes)
        names = self.class_names
        unet, train = self.unet_configs()
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

            model = fit_network([image], [targets], "semantic", unet=unet, train_config=train, class_names=names,
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

    # ------------------------------------------------------------------ models and files

    def set_model(self, model: Any, path: Path | None = None) -> None:
        """Take a loaded model (e.g. from the reader) and apply it to the current image."""
        self.loaded_model = model
        self.status.setText(f"model {path.name if path else ''} loaded ({model.kind}, {model.task})")
        if self.image_layer is not None:
            self.apply_model(model, name=f"{path.stem if path else 'model'} result")

    def apply_model(self, model: Any, *, name: str = "pixlearn result") -> None:
        """Apply a model to the current image in the background (tiled, as the command line does)."""
        image = canonical_image(self.image_layer, self.axes)

        def job() -> Any:
            from pixlearn.predict import apply_model

            return model, apply_model(model, image)

        def done(returned: Any) -> None:
            model, result = returned
            result = np.asarray(result)
            nd = len(self.spatial)
            place = dict(scale=self.image_layer.scale[-nd:], translate=self.image_layer.translate[-nd:])
            if model.task == "semantic":
                layer = self.viewer.add_labels(result.astype(np.uint16) + 1, name=name, opacity=0.6,
                                               colormap=label_colormap(model.n_outputs), **place)
            elif model.task == "instances":
                layer = self.viewer.add_labels(result, name=name, **place)
            else:
                layer = self.viewer.add_image(np.moveaxis(result, -1, 0) if result.shape[-1] > 1 else result[..., 0],
                                              name=name, **place)
            self.status.setText(f"applied the model: layer '{layer.name}'")
            self.model_applied.emit(layer)

        self._run(job, done)

    def apply_model_file(self, path: str | Path) -> None:
        """Load a pixlearn model file and apply it to the current image."""
        from pixlearn.models.model_file import load_model

        path = Path(path)
        self.set_model(load_model(path), path)

    def save_model(self, path: str | Path, which: str = "rf") -> None:
        """Save the random forest (fitted on the strokes with the regular settings) or the U-Net."""
        path = Path(path)
        if which == "unet":
            if self.unet_model is None:
                raise ValueError("no U-Net trained yet")
            model = self.unet_model

            def job() -> Any:
                from pixlearn.models.model_file import save_model

                return save_model(model, path)

            self._run(job, self._saved)
            return
        strokes = np.asarray(self.scribbles_layer.data).copy()
        names = self.class_names
        get_session = self._session_factory()

        def fit_and_save() -> Any:
            from pixlearn.models.model_file import save_model

            session = get_session()
            session.update_strokes(strokes)
            self.rf_model = session.to_pixel_classifier(names)
            return save_model(self.rf_model, path)

        self._run(fit_and_save, self._saved)

    def _saved(self, path: Any) -> None:
        self.status.setText(f"saved {path}")
        self.model_saved.emit(path)

    def settings(self) -> dict[str, Any]:
        """The widget's settings as JSON-safe data (saved beside the scribbles)."""
        return {
            "class_names": list(self.class_names),
            "axes": self.axes,
            "features": self.feature_cfg.to_dict(),
            "preview": self.preview_cfg.to_dict(),
            "unet": {"depth": self.depth_spin.value(), "base_channels": self.channels_spin.value(),
                     "epochs": self.epochs_spin.value(), "steps_per_epoch": self.steps_spin.value(),
                     "patch": self.patch_spin.value(), "batch_size": self.batch_spin.value()},
        }

    def apply_settings(self, settings: dict[str, Any]) -> None:
        """Inverse of :meth:`settings` (missing keys keep their values)."""
        if "class_names" in settings:
            self.set_class_names(settings["class_names"])
        if "axes" in settings:
            self.axes_edit.setText(settings["axes"])
        if "features" in settings:
            self.feature_cfg = FeatureConfig.from_dict(settings["features"])
        if "preview" in settings:
            self.preview_cfg = PreviewConfig.from_dict(settings["preview"])
        spins = {"depth": self.depth_spin, "base_channels": self.channels_spin, "epochs": self.epochs_spin,
                 "steps_per_epoch": self.steps_spin, "patch": self.patch_spin, "batch_size": self.batch_spin}
        for key, value in settings.get("unet", {}).items():
            if key in spins:
                spins[key].setValue(int(value))
        self.session, self._session_key = None, None

    def save_scribbles(self, path: str | Path) -> Path:
        """Write the scribbles (TIFF/PNG/npy/Zarr by suffix) and the settings beside them (``.json``)."""
        from pixlearn.data.writers import write_image

        path = Path(path)
        layer = self.scribbles_layer
        if layer is None:
            raise ValueError("no scribbles to save")
        nd = layer.data.ndim
        write_image(path, np.asarray(layer.data), axes="ZYX" if nd == 3 else "YX")
        path.with_suffix(".json").write_text(json.dumps(self.settings(), indent=2) + "\n")
        self.status.setText(f"saved scribbles to {path}")
        return path

    def load_scribbles(self, path: str | Path) -> None:
        """Read scribbles (and the settings saved beside them) onto the scribbles layer."""
        from pixlearn.data.images import read_labels

        path = Path(path)
        settings = path.with_suffix(".json")
        if settings.exists():
            self.apply_settings(json.loads(settings.read_text()))
        labels = read_labels(path)
        layer = self.ensure_scribbles()
        if tuple(labels.shape) != tuple(layer.data.shape):
            raise ValueError(f"scribbles of shape {labels.shape} do not fit the image {tuple(layer.data.shape)}")
        while int(labels.max(initial=0)) > len(self.class_names):
            self.add_class()
        layer.data = labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)
        self._on_strokes()

    # ------------------------------------------------------------------ dialogs (thin)

    def _file(self, save: bool, title: str, filters: str) -> str | None:
        dialog = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        path, _ = dialog(self, title, "", filters)
        return path or None

    def _save_rf_dialog(self) -> None:
        if path := self._file(True, "Save random forest", "pixlearn model (*.zip)"):
            self.save_model(path, "rf")

    def _save_unet_dialog(self) -> None:
        if path := self._file(True, "Save U-Net", "pixlearn model (*.zip)"):
            self.save_model(path, "unet")

    def _apply_dialog(self) -> None:
        if path := self._file(False, "Apply a pixlearn model", "pixlearn model (*.zip);;all files (*)"):
            self.apply_model_file(path)

    def _save_scribbles_dialog(self) -> None:
        if path := self._file(True, "Save scribbles", "TIFF (*.tif)"):
            self.save_scribbles(path)

    def _load_scribbles_dialog(self) -> None:
        if path := self._file(False, "Load scribbles", "images (*.tif *.tiff *.png *.npy)"):
            self.load_scribbles(path)


def _spin(lo: int, hi: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    return spin


def _shape(region: tuple[slice, ...]) -> str:
    return "x".join(str(s.stop - s.start) for s in region)
