"""The image and classes part of the dock widget, and the layer helpers every part shares.

Chooses the image layer and its axes, keeps the list of classes (class ``k`` is painted as
``k + 1``), and makes the scribbles layer and the output layers (preview, uncertainty, U-Net)
that fit the current image. :class:`ImagePanel` is one of the parts that
:class:`pixlearn.app.napari.widget.PixlearnWidget` is made of; it holds no state of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pixlearn.app.napari.layers import (
    check_axes,
    class_color,
    default_axes,
    label_colormap,
    spatial_shape,
)

SCRIBBLES = "pixlearn scribbles"
PREVIEW = "pixlearn preview"
UNCERTAINTY = "pixlearn uncertainty"
SUGGESTIONS = "pixlearn suggestions"
UNET = "pixlearn U-Net"
DEFAULT_CLASSES = ("background", "foreground")

if TYPE_CHECKING:
    from pixlearn.classical.interactive import InteractiveSession

    class WidgetPart(QWidget):
        """What a part is to a type checker: the whole widget, whose other parts set more attributes."""

        # state that the widget's __init__ sets and several parts use
        session: InteractiveSession | None
        _session_key: tuple[Any, ...] | None
        _unet_worker: Any | None
        _records: list[dict[str, float]]

        def __getattr__(self, name: str) -> Any: ...

else:
    WidgetPart = object  # at run time a part is a plain mixin; the widget class brings QWidget


class ImagePanel(WidgetPart):
    """Image choice, classes, the scribbles layer and the output layers (a part of the widget)."""

    def _build_image_panel(self, layout: QVBoxLayout) -> None:
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

    # ------------------------------------------------------------------ layers and classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, in painted-value order (class ``k`` is painted as ``k + 1``)."""
        items = (self.class_list.item(i) for i in range(self.class_list.count()))
        return tuple(item.text() for item in items if item is not None)

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
    def image_layer(self) -> Any:  # the napari Image layer, or None when there is none
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
