"""The objects part of the dock widget: click objects of an instance Labels layer to classify them.

The user picks a Labels layer of objects (painted, loaded, or made by a model such as the
built-in ``nuclei``), picks an object class and clicks objects: each class has its own Points
layer (``pixlearn objects: <class>``, in the class's colour, in add mode while its class is
chosen). "train objects" maps the clicks to objects and fits a random forest on their
measurements (:func:`~pixlearn.app.napari.object_classes.train_object_classes`) in the widget's
job queue, then shows every object coloured by its class (the Labels layer
``pixlearn object classes``, class ``k`` as ``k + 1``) and the counts per class. The trained
model (``object_model``) is saved as an ``object-classifier`` model file ("save object model...",
through :meth:`~pixlearn.app.napari.files_panel.FilesPanel.save_model`); such a file, opened with
the file button or dropped on the window, becomes ``object_model`` again
(:meth:`ObjectsPanel.set_object_model`), and "classify objects" applies it to the chosen Labels
layer: the same class layer and counts. The logic is in
:mod:`~pixlearn.app.napari.object_classes`; this part only reads layers and shows results.
:class:`ObjectsPanel` is one of the parts of :class:`pixlearn.app.napari.widget.PixlearnWidget`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from pixlearn.app.napari.image_panel import WidgetPart
from pixlearn.app.napari.layers import canonical_image, class_color, label_colormap
from pixlearn.app.napari.object_classes import (
    classify_label_objects,
    clicked_objects,
    counts_text,
    train_object_classes,
)

OBJECT_CLASSES = "pixlearn object classes"
CLICKS_PREFIX = "pixlearn objects: "
CLASS_KEY = "pixlearn_object_class"  # metadata of a clicks layer: its class index
DEFAULT_OBJECT_CLASSES = ("type 1", "type 2")


class ObjectsPanel(WidgetPart):
    """Object classes by clicking, training, the class layer and counts (a part of the widget)."""

    def _build_objects_panel(self, layout: QVBoxLayout) -> None:
        box = QGroupBox("object classes (pick a class, click objects)")
        ol = QVBoxLayout(box)
        form = QFormLayout()
        self.objects_combo = QComboBox()
        self.objects_combo.setToolTip("a Labels layer of objects (0 background, one value per object)")
        form.addRow("objects", self.objects_combo)
        ol.addLayout(form)
        self.object_class_list = QListWidget()
        self.object_class_list.setMaximumHeight(80)
        self.object_class_list.currentRowChanged.connect(self._on_object_class_selected)
        self.object_class_list.itemChanged.connect(self._on_object_class_renamed)
        ol.addWidget(self.object_class_list)
        row = QHBoxLayout()
        add = QPushButton("add object class")
        add.clicked.connect(lambda: self.add_object_class())
        self.train_objects_button = QPushButton("train objects")
        self.train_objects_button.clicked.connect(lambda: self.train_objects())
        row.addWidget(add)
        row.addWidget(self.train_objects_button)
        ol.addLayout(row)
        row = QHBoxLayout()
        self.classify_objects_button = QPushButton("classify objects")
        self.classify_objects_button.setToolTip("apply the object model (trained or loaded) to the chosen objects")
        self.classify_objects_button.clicked.connect(lambda: self.classify_objects())
        self.save_object_model_button = QPushButton("save object model...")
        self.save_object_model_button.clicked.connect(self._save_object_model_dialog)
        for button in (self.classify_objects_button, self.save_object_model_button):
            button.setEnabled(False)  # until a model is trained or loaded
            row.addWidget(button)
        ol.addLayout(row)
        self.object_counts = QLabel("")
        self.object_counts.setWordWrap(True)
        ol.addWidget(self.object_counts)
        layout.addWidget(box)
        for name in DEFAULT_OBJECT_CLASSES:  # before an objects layer is chosen: no Points layer yet
            self.add_object_class(name)
        self.viewer.layers.events.inserted.connect(self._refresh_objects)
        self.viewer.layers.events.removed.connect(self._refresh_objects)
        self._refresh_objects()

    # ------------------------------------------------------------------ classes and their clicks

    @property
    def object_class_names(self) -> tuple[str, ...]:
        """The object class names, in class-index order."""
        items = (self.object_class_list.item(i) for i in range(self.object_class_list.count()))
        return tuple(item.text() for item in items if item is not None)

    def add_object_class(self, name: str | None = None) -> None:
        """Add an object class and make it the one clicked."""
        k = self.object_class_list.count()
        item = QListWidgetItem(name or f"type {k + 1}")
        pixmap = QPixmap(12, 12)
        pixmap.fill(QColor(class_color(k + 1)))
        item.setIcon(QIcon(pixmap))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.object_class_list.addItem(item)
        self.object_class_list.setCurrentRow(k)

    @property
    def objects_layer(self) -> Any | None:
        """The chosen Labels layer of objects, or ``None``."""
        name = self.objects_combo.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def clicks_layer(self, k: int) -> Any | None:
        """The Points layer of object class `k`, or ``None``."""
        return next((layer for layer in self.viewer.layers if layer.metadata.get(CLASS_KEY) == k), None)

    def ensure_clicks_layer(self, k: int) -> Any:
        """The Points layer of object class `k` (made over the objects layer when missing), active
        and in add mode: each click adds a point."""
        layer = self.clicks_layer(k)
        if layer is None:
            objects = self.objects_layer
            if objects is None:
                raise ValueError("choose a Labels layer of objects first")
            layer = self.viewer.add_points(np.empty((0, objects.ndim)), ndim=objects.ndim, size=9, border_width=0.2,
                                           name=CLICKS_PREFIX + self.object_class_names[k],
                                           face_color=class_color(k + 1), border_color="white",
                                           scale=objects.scale, translate=objects.translate)
            layer.metadata[CLASS_KEY] = k
        self.viewer.layers.selection.active = layer
        layer.mode = "add"
        return layer

    def _on_object_class_selected(self, row: int) -> None:
        if row >= 0 and self.objects_layer is not None:
            self.ensure_clicks_layer(row)

    def _on_object_class_renamed(self, item: QListWidgetItem) -> None:
        layer = self.clicks_layer(self.object_class_list.row(item))
        if layer is not None:
            layer.name = CLICKS_PREFIX + item.text()

    def _refresh_objects(self, *args: Any) -> None:
        """Offer every Labels layer that is not pixlearn's own (scribbles, previews) as objects."""
        current = self.objects_combo.currentText()
        names = [layer.name for layer in self.viewer.layers
                 if layer.__class__.__name__ == "Labels" and not layer.name.startswith("pixlearn ")]
        self.objects_combo.blockSignals(True)
        self.objects_combo.clear()
        self.objects_combo.addItems(names)
        if current in names:
            self.objects_combo.setCurrentText(current)
        elif names:  # none chosen yet (or it was removed): the newest
            self.objects_combo.setCurrentText(names[-1])
        self.objects_combo.blockSignals(False)

    # ------------------------------------------------------------------ training

    def _objects_input(self) -> tuple[Any, np.ndarray, np.ndarray] | None:
        """The objects layer, its labels and the image; ``None`` (and why, in the status) when
        they are missing or do not fit."""
        objects = self.objects_layer
        if objects is None or self.image_layer is None:
            self.status.setText("open an image and choose a Labels layer of objects first")
            return None
        labels = np.asarray(objects.data)
        if labels.shape != tuple(self.spatial):
            self.status.setText(f"'{objects.name}' has shape {labels.shape}, the image {self.spatial}")
            return None
        return objects, labels, np.asarray(canonical_image(self.image_layer, self.axes))

    def train_objects(self) -> None:
        """Fit the object classifier on the clicked objects in the background; every object gets
        its class on the ``pixlearn object classes`` layer and the counts are shown."""
        chosen = self._objects_input()
        if chosen is None:
            return
        objects, labels, image = chosen
        names = self.object_class_names
        points = [np.asarray(layer.data) if (layer := self.clicks_layer(k)) is not None else np.empty((0, labels.ndim))
                  for k in range(len(names))]
        clicked = clicked_objects(labels, points)
        if len(set(clicked.values())) < 2:
            self.status.setText(f"click objects of at least two classes ({len(clicked)} objects clicked so far)")
            return
        clf_cfg = self.object_clf_cfg
        self.status.setText(f"training on {len(clicked)} clicked objects...")
        self._run(lambda: train_object_classes(image, labels, clicked, names, clf_cfg=clf_cfg),
                  lambda training: self._show_object_classes(training, objects))

    # ------------------------------------------------------------------ a model trained before

    def set_object_model(self, model: Any, path: Path | None = None) -> None:
        """Take an object classifier (e.g. loaded from a model file): its class names become the
        object classes, and "classify objects" applies it to the chosen Labels layer."""
        self.object_model = model
        self.set_object_class_names(model.class_names)
        self._enable_object_model_buttons()
        name = path.name if path else "the object classifier"
        self.status.setText(f"object classifier {name} loaded ({', '.join(model.class_names)}): "
                            "choose a Labels layer of objects, then classify objects")

    def set_object_class_names(self, names: tuple[str, ...] | list[str]) -> None:
        """Rename the first object classes to `names` (their clicks layers too), adding any missing."""
        for k, name in enumerate(names):
            item = self.object_class_list.item(k)
            if item is None:
                self.add_object_class(name)
            else:
                item.setText(name)

    def classify_objects(self) -> None:
        """Apply ``object_model`` to the chosen Labels layer in the background: the class layer
        and counts, as after training; emits ``objects_classified``."""
        model = self.object_model
        if model is None:
            self.status.setText("train or load an object model first")
            return
        chosen = self._objects_input()
        if chosen is None:
            return
        objects, labels, image = chosen
        self.status.setText(f"classifying the objects of '{objects.name}'...")
        self._run(lambda: classify_label_objects(model, image, labels),
                  lambda classes: self._show_object_classes(classes, objects))

    def _enable_object_model_buttons(self) -> None:
        for button in (self.classify_objects_button, self.save_object_model_button):
            button.setEnabled(self.object_model is not None)

    def _save_object_model_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save object classifier", "", "pixlearn model (*.zip)")
        if path:
            self.save_model(path, "objects")

    def _show_object_classes(self, training: Any, objects: Any) -> None:
        self.object_model = training.model
        self._enable_object_model_buttons()
        n_classes = len(training.model.class_names)
        if OBJECT_CLASSES in self.viewer.layers:
            self.viewer.layers.remove(OBJECT_CLASSES)
        layer = self.viewer.add_labels(training.class_image, name=OBJECT_CLASSES, opacity=0.6,
                                       colormap=label_colormap(n_classes),
                                       scale=objects.scale, translate=objects.translate)
        layer.metadata["class_names"] = list(training.model.class_names)
        for k in range(n_classes):  # keep the clicks on top
            clicks = self.clicks_layer(k)
            if clicks is not None:
                self.viewer.layers.move(self.viewer.layers.index(clicks), len(self.viewer.layers))
        text = counts_text(training.predictions.counts(), training.n_clicked)
        self.object_counts.setText(text)
        self.status.setText(f"object classes: {text}")
        (self.objects_classified if training.n_clicked is None else self.objects_trained).emit(training)
