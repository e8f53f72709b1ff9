"""The dock widget: scribbles -> live random-forest preview -> uncertainty, suggestions -> U-Net.

All computation runs in background threads (``superqt.utils.create_worker``), one library call
each; the widget only moves arrays between napari layers and the library:

* live preview: :meth:`pixlearn.classical.interactive.InteractiveSession.step` on the strokes
  and the region on screen, debounced after each stroke and after panning or changing plane;
* suggestions: :meth:`~pixlearn.classical.interactive.InteractiveSession.suggest`;
* U-Net: :func:`pixlearn.nets.fit.fit_network` (semantic, unlabelled pixels ignored) with a
  per-epoch callback for progress and the stop button (the best weights are kept), then
  :func:`pixlearn.predict.apply_model`;
* models: :func:`pixlearn.models.model_file.save_model`, :func:`pixlearn.zoo.load_model` (model
  files and the built-in models by name) and ``apply_model``; image classifiers are refused;
* object classes: :func:`pixlearn.classical.object_model.fit_object_classifier` on the objects
  clicked on a Labels layer, then every object classified; the object classifier is saved and
  loaded as an ``object-classifier`` model file and applied to any Labels layer of objects.

Torch is imported only inside the U-Net and model workers.

The widget is one object made of parts, one module each, that share its state and its job queue
(:meth:`PixlearnWidget._run`, here): the image, classes and layer helpers
(:mod:`~pixlearn.app.napari.image_panel`), the live preview and suggestions
(:mod:`~pixlearn.app.napari.preview_panel`), the U-Net with its worker and loss curve
(:mod:`~pixlearn.app.napari.unet_panel`), models and scribbles in and out
(:mod:`~pixlearn.app.napari.files_panel`), and object classes by clicking
(:mod:`~pixlearn.app.napari.objects_panel`). The layer names are importable from here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QEvent, Qt, Signal
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from pixlearn.app.napari.files_panel import FilesPanel
from pixlearn.app.napari.image_panel import (
    DEFAULT_CLASSES,
    PREVIEW,
    SCRIBBLES,
    SUGGESTIONS,
    UNCERTAINTY,
    UNET,
    ImagePanel,
)
from pixlearn.app.napari.objects_panel import OBJECT_CLASSES, ObjectsPanel
from pixlearn.app.napari.preview_panel import PreviewPanel
from pixlearn.app.napari.unet_panel import LossCurve, ProgressBridge, UNetPanel
from pixlearn.classical.config import ClassifierConfig
from pixlearn.classical.features import FeatureConfig
from pixlearn.classical.preview import PreviewConfig

logger = logging.getLogger(__name__)


class PixlearnWidget(ImagePanel, PreviewPanel, UNetPanel, FilesPanel, ObjectsPanel, QWidget):
    """Dock widget of the pixlearn plugin (see the module docstring).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    feature_cfg : FeatureConfig, optional
        Filter bank of the preview and of the saved random forest.
    preview_cfg : PreviewConfig, optional
    object_clf_cfg : ClassifierConfig, optional
        Classifier of the object classes (default: a class-balanced random forest).
    debounce_ms : int
        Quiet time after a stroke (or a pan) before the preview is updated.
    """

    preview_updated = Signal()
    suggestions_updated = Signal()
    unet_progress = Signal(object)
    unet_finished = Signal(object)
    model_applied = Signal(object)
    folder_applied = Signal(object)
    model_saved = Signal(object)
    model_refused = Signal(str)
    objects_trained = Signal(object)
    objects_classified = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer: Any, *, feature_cfg: FeatureConfig | None = None,
                 preview_cfg: PreviewConfig | None = None, object_clf_cfg: ClassifierConfig | None = None,
                 debounce_ms: int = 300) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.feature_cfg = feature_cfg or FeatureConfig()
        self.preview_cfg = preview_cfg or PreviewConfig()
        self.object_clf_cfg = object_clf_cfg or ClassifierConfig()
        self.object_model: Any | None = None
        self.session = None
        self._session_key = None
        self.rf_model: Any | None = None
        self.unet_model: Any | None = None
        self.loaded_model: Any | None = None
        self._worker: Any | None = None
        self._unet_worker = None
        self._queue: list[Callable[[], None]] = []
        self._preview_pending = False
        self._stop = threading.Event()
        self._bridge = ProgressBridge()
        self._bridge.progress.connect(self._on_unet_progress)
        self._records = []
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
        """The parts, one under the other, in a vertical scroll area (the widget is taller than
        many screens); the status line stays in view under it."""
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        parts = QWidget()
        layout = QVBoxLayout(parts)
        self._build_image_panel(layout)
        self._build_preview_panel(layout, debounce_ms)
        self._build_unet_panel(layout)
        self._build_files_panel(layout)
        self._build_objects_panel(layout)
        layout.addStretch(1)
        self.scroll_area = _VerticalScrollArea()
        self.scroll_area.setWidget(parts)
        outer.addWidget(self.scroll_area, 1)
        self.status = QLabel("paint two classes on the scribbles layer")
        self.status.setWordWrap(True)
        self.status.setContentsMargins(6, 0, 6, 6)
        outer.addWidget(self.status)

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


class _VerticalScrollArea(QScrollArea):
    """Scrolls its widget up and down only, and stays as wide as the widget needs (napari's style
    is applied after construction, so the width is set again whenever the widget's layout changes)."""

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def setWidget(self, widget: QWidget | None) -> None:  # noqa: N802 - Qt's name
        super().setWidget(widget)
        if widget is not None:
            widget.installEventFilter(self)

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        inner, bar = self.widget(), self.verticalScrollBar()
        if inner is not None and bar is not None and watched is inner and event.type() in (
                QEvent.Type.LayoutRequest, QEvent.Type.Resize):
            self.setMinimumWidth(inner.minimumSizeHint().width() + bar.sizeHint().width())
        return super().eventFilter(watched, event)


__all__ = [
    "DEFAULT_CLASSES",
    "OBJECT_CLASSES",
    "PREVIEW",
    "SCRIBBLES",
    "SUGGESTIONS",
    "UNCERTAINTY",
    "UNET",
    "LossCurve",
    "PixlearnWidget",
]
