"""The files part of the dock widget: apply built-in models and model files, save and load scribbles.

Models are loaded by :func:`pixlearn.zoo.load_model` (a built-in model by name, e.g. ``"nuclei"``,
or a model file) and applied by :func:`pixlearn.predict.apply_model` in the widget's job queue; a
model the plugin cannot apply (an image classifier) is refused with one line
(:func:`~pixlearn.app.napari.model_choice.refusal`); an object classifier goes to the objects part
(:meth:`~pixlearn.app.napari.objects_panel.ObjectsPanel.set_object_model`). Models (pixel models
and the object classifier) are saved by :func:`pixlearn.models.model_file.save_model`: written under a
temporary name, then renamed, replacing nothing but a pixlearn model; scribbles are written with
their settings beside them. :class:`FilesPanel` is one of the parts of :class:`pixlearn.app.napari.widget.PixlearnWidget`.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
)

from pixlearn.app.napari.image_panel import WidgetPart
from pixlearn.app.napari.layers import (
    canonical_image,
    label_colormap,
)
from pixlearn.app.napari.model_choice import builtin_choices, refusal
from pixlearn.classical.features import FeatureConfig
from pixlearn.classical.preview import PreviewConfig
from pixlearn.errors import PixlearnError


class FilesPanel(WidgetPart):
    """Models and scribbles in and out, with thin file dialogs (a part of the widget)."""

    def _build_files_panel(self, layout: QVBoxLayout) -> None:
        files = QGroupBox("models and files")
        fl = QVBoxLayout(files)
        row = QHBoxLayout()
        self.builtin_combo = QComboBox()
        self.builtin_combo.setToolTip("built-in models (pixlearn models): apply with no training")
        for i, choice in enumerate(builtin_choices()):
            self.builtin_combo.addItem(choice.label, choice.name)
            self.builtin_combo.setItemData(i, choice.summary, Qt.ItemDataRole.ToolTipRole)
        self.apply_builtin_button = QPushButton("apply built-in")
        self.apply_builtin_button.setEnabled(self.builtin_combo.count() > 0)
        self.apply_builtin_button.clicked.connect(lambda: self.apply_builtin())
        row.addWidget(self.builtin_combo, 1)
        row.addWidget(self.apply_builtin_button)
        fl.addLayout(row)
        for buttons in ((("apply model file...", self._apply_dialog), ("apply to folder...", self._apply_folder_dialog)),
                        (("save scribbles...", self._save_scribbles_dialog),
                         ("load scribbles...", self._load_scribbles_dialog))):
            row = QHBoxLayout()
            for text, slot in buttons:
                button = QPushButton(text)
                button.clicked.connect(slot)
                row.addWidget(button)
            fl.addLayout(row)
        layout.addWidget(files)

    # ------------------------------------------------------------------ models and files

    def set_model(self, model: Any, path: Path | None = None) -> None:
        """Take a loaded model (e.g. from the reader) and apply it to the current image.

        An object classifier goes to the objects part, to classify the objects of a Labels layer.
        A model the plugin cannot apply (an image classifier) is refused: one line in the status
        and ``model_refused(message)``, nothing applied.
        """
        if getattr(model, "kind", None) == "object-classifier":
            self.set_object_model(model, path)
            return
        name = path.name if path else "the model"
        problem = refusal(model, name)
        if problem is not None:
            self.status.setText(problem)
            self.model_refused.emit(problem)
            return
        self.loaded_model = model
        self.status.setText(f"model {name} loaded ({model.kind}, {model.task})")
        if self.image_layer is not None:
            self.apply_model(model, name=f"{path.stem if path else 'model'} result")

    def apply_builtin(self, name: str | None = None) -> None:
        """Load a built-in model (default: the chooser's) and apply it to the current image."""
        name = self.builtin_combo.currentData() if name is None else name
        if name:
            self.apply_model_source(name)

    def apply_model_source(self, source: str | Path) -> None:
        """Load a model file or a built-in model by name in the background, then :meth:`set_model`."""
        if self.image_layer is None:
            self.status.setText("open an image to apply a model to")
            return
        self.status.setText(f"loading {Path(source).name}...")

        def job() -> Any:
            from pixlearn.zoo import load_model

            return load_model(source)

        self._run(job, lambda model: self.set_model(model, Path(source)))

    def apply_model(self, model: Any, *, name: str = "pixlearn result") -> None:
        """Apply a model to the current image in the background (tiled, as the command line does)."""
        image = canonical_image(self.image_layer, self.axes)

        def job() -> Any:
            from pixlearn.predict import apply_model
            from pixlearn.predict.planewise import planewise_for

            return model, apply_model(planewise_for(model, image.shape), image)  # 2D models plane by plane

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

    def apply_to_folder(self, model_path: str | Path, images: str | Path, output: str | Path) -> None:
        """Apply a model file to every image of a folder in the background, through the same
        engine and safety rules as ``pixlearn predict`` (tiled, atomic, resumable, a manifest);
        emits ``folder_applied(manifest path)``."""
        model_path, images, output = Path(model_path), Path(images), Path(output)
        problem = self._folder_refusal(model_path)
        if problem is not None:  # told here, in the GUI thread: nothing starts, nothing is written
            self.status.setText(problem)
            self.failed.emit(problem)
            return

        def job() -> Any:
            from pixlearn.data.folders import list_images
            from pixlearn.models.model_file import load_model
            from pixlearn.predict import predict_many

            inputs = list_images([images], exclude=[output])
            return predict_many(load_model(model_path), inputs, output, model_name=str(model_path))

        def done(manifest: Any) -> None:
            self.status.setText(f"applied {model_path.name} to {images}: results in {output}")
            self.folder_applied.emit(manifest)

        self._run(job, done)

    @staticmethod
    def _folder_refusal(model_path: Path) -> str | None:
        """Why the model file cannot be applied to a folder of images (its header only), or ``None``."""
        from pixlearn.models.model_file import read_header

        try:
            header = read_header(model_path)
        except PixlearnError:
            return None  # the job loads it and says what is wrong, as for any file
        kind = header.get("kind")
        if kind not in ("object-classifier", "image-classifier"):
            return None  # pixel models: the job checks the rest once loaded
        return refusal(SimpleNamespace(kind=kind, task=None), model_path.name)

    def apply_model_file(self, path: str | Path) -> None:
        """Load a pixlearn model file and apply it to the current image (in the background)."""
        self.apply_model_source(Path(path))

    def save_model(self, path: str | Path, which: str = "rf") -> None:
        """Save a model in the background; emits ``model_saved(path)``.

        Parameters
        ----------
        path : str or Path
            A ``.zip`` file or a folder. A file or folder that is not a pixlearn model is never
            replaced: one line in the status and ``failed(message)``, nothing written
            (:func:`~pixlearn.models.model_file.check_model_target`, checked again when writing).
        which : {"rf", "unet", "objects"}
            The random forest (fitted on the strokes with the regular settings), the U-Net, or
            the object classifier (``object_model``).

        Raises
        ------
        ValueError
            No U-Net or object classifier trained (or loaded) yet.
        """
        path = Path(path)
        trained = {"unet": ("U-Net", self.unet_model), "objects": ("object classifier", self.object_model)}
        what, model = trained.get(which, ("random forest", None))
        if which in trained and model is None:
            raise ValueError(f"no {what} trained yet")
        if not self._may_save_model(path):
            return
        if model is not None:

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

    def _may_save_model(self, path: Path) -> bool:
        """Whether a model may be written at `path`; if not, why in the status and ``failed``."""
        from pixlearn.errors import ModelFileError
        from pixlearn.models.model_file import check_model_target

        try:
            check_model_target(path, overwrite=True)
        except ModelFileError as exc:
            self.status.setText(f"not saved: {exc}")
            self.failed.emit(str(exc))
            return False
        return True

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

    def _apply_folder_dialog(self) -> None:
        model = self._file(False, "Model to apply", "pixlearn model (*.zip);;all files (*)")
        images = QFileDialog.getExistingDirectory(self, "Folder of images") if model else ""
        output = QFileDialog.getExistingDirectory(self, "Output folder (new or pixlearn's own)") if images else ""
        if model and images and output:
            self.apply_to_folder(model, images, output)

    def _save_scribbles_dialog(self) -> None:
        if path := self._file(True, "Save scribbles", "TIFF (*.tif)"):
            self.save_scribbles(path)

    def _load_scribbles_dialog(self) -> None:
        if path := self._file(False, "Load scribbles", "images (*.tif *.tiff *.png *.npy)"):
            self.load_scribbles(path)

