"""The random-forest part of the dock widget: live preview, uncertainty and suggestions.

The preview is :meth:`pixlearn.classical.interactive.InteractiveSession.step` on the strokes and
the region on screen, debounced after each stroke and after panning or changing plane; the
suggestions are :meth:`~pixlearn.classical.interactive.InteractiveSession.suggest`. Both run in
the widget's job queue. :class:`PreviewPanel` is one of the parts of
:class:`pixlearn.app.napari.widget.PixlearnWidget`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from pixlearn.app.napari.image_panel import PREVIEW, SUGGESTIONS, UNCERTAINTY, WidgetPart
from pixlearn.app.napari.layers import (
    canonical_image,
    label_colormap,
    rectangle,
    snap_region,
    visible_region,
)
from pixlearn.classical.interactive import InteractiveSession


class PreviewPanel(WidgetPart):
    """Live preview, uncertainty and suggestions (a part of the widget)."""

    def _build_preview_panel(self, layout: QVBoxLayout, debounce_ms: int) -> None:
        preview = QGroupBox("random forest")
        pl = QVBoxLayout(preview)
        self.live_check = QCheckBox("live preview")
        self.live_check.setChecked(True)
        self.live_check.toggled.connect(lambda on: self.request_preview() if on else None)
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

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self.request_preview)

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


def _shape(region: tuple[slice, ...]) -> str:
    return "x".join(str(s.stop - s.start) for s in region)
