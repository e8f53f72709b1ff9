"""Screenshots of the napari plugin at each step, for the README, from the synthetic nuclei.

Steps: ``scribbles`` (strokes on the image), ``preview`` (the live random-forest preview),
``uncertainty`` (with the suggested regions), ``unet`` (the U-Net trained on the same strokes),
and ``objects`` (the built-in ``nuclei`` model applied with no training, then bright and dim
nuclei clicked and every nucleus classified: the object-class layer and the counts).
Each is a PNG of the whole napari window (canvas and the docked widget) in ``docs/images/``.

Run (needs the gui extra and a display; headless: under Xvfb)::

    xvfb-run -a .venv/bin/python scripts/screenshots.py [--out docs/images] [--epochs 8] [--only objects]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

try:
    import torch  # noqa: F401 - before Qt
except ImportError:
    pass

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 300_000


def _wait(condition, timeout_s: float = 600.0) -> None:
    from qtpy.QtWidgets import QApplication

    start = time.monotonic()
    while not condition():
        QApplication.processEvents()
        time.sleep(0.02)
        if time.monotonic() - start > timeout_s:
            raise TimeoutError("the plugin did not finish in time")
    for _ in range(20):  # let napari draw
        QApplication.processEvents()
        time.sleep(0.01)


def _save(viewer, path: Path) -> Path:
    """Window screenshot as PNG, scaled down until it is under MAX_BYTES."""
    from PIL import Image

    shot = viewer.screenshot(canvas_only=False, flash=False)
    image = Image.fromarray(np.asarray(shot)[..., :3])
    scale = 1.0
    while True:
        size = (int(image.width * scale), int(image.height * scale))
        buffer = io.BytesIO()
        (image if scale == 1.0 else image.resize(size, Image.LANCZOS)).save(buffer, "PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES or scale < 0.3:
            break
        scale *= 0.85
    path.write_bytes(buffer.getvalue())
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({buffer.tell() // 1024} KB, {size[0]}x{size[1]})")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--size", type=int, default=384, help="side of the synthetic image, pixels")
    parser.add_argument("--epochs", type=int, default=8, help="U-Net epochs (of 10 steps)")
    parser.add_argument("--only", choices=("pixels", "objects"), help="only the pixel steps (1-4) or the objects step (5)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only != "objects":
        _pixel_steps(args)
    if args.only != "pixels":
        _objects_step(args)
    return 0


def _pixel_steps(args: argparse.Namespace) -> None:
    """Screenshots 1-4: scribbles, live preview, uncertainty with suggestions, U-Net."""
    import napari

    from pixlearn.app.napari import widget as W
    from pixlearn.classical.preview import PreviewConfig
    from pixlearn.synthetic import SyntheticConfig, make_nuclei, simulate_scribbles

    rng = np.random.default_rng(7)
    image, labels = make_nuclei(SyntheticConfig(shape=(args.size, args.size)), rng)
    scribbles = simulate_scribbles(labels, rng, fraction=0.012, width_px=5, length_px=(15, 45))

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1280, 820)
    viewer.add_image(image, name="synthetic nuclei", metadata={"pixlearn_axes": "YX"})
    _, widget = viewer.window.add_plugin_dock_widget("pixlearn", "Pixel classification")
    widget.preview_cfg = PreviewConfig(suggestion_tile=(64, 64))  # a small image: smaller boxes
    widget.class_list.item(1).setText("nucleus")
    layer = widget.ensure_scribbles()

    # 1. scribbles (the preview not yet shown)
    widget.live_check.setChecked(False)
    layer.data = scribbles
    _wait(lambda: True)
    viewer.reset_view()  # after the dock has taken its room
    _wait(lambda: True)
    _save(viewer, args.out / "napari_1_scribbles.png")

    # 2. live preview
    widget.live_check.setChecked(True)
    _wait(lambda: W.PREVIEW in viewer.layers and not widget.busy)
    _save(viewer, args.out / "napari_2_preview.png")

    # 3. uncertainty and suggestions
    widget.suggest(3)
    _wait(lambda: W.SUGGESTIONS in viewer.layers and not widget.busy)
    viewer.layers[W.PREVIEW].visible = False
    viewer.layers[W.UNCERTAINTY].visible = True
    viewer.layers[W.UNCERTAINTY].blending = "translucent"
    _wait(lambda: True)
    _save(viewer, args.out / "napari_3_uncertainty.png")

    # 4. U-Net on the same strokes
    viewer.layers[W.UNCERTAINTY].visible = False
    viewer.layers[W.SUGGESTIONS].visible = False
    widget.depth_spin.setValue(2)
    widget.channels_spin.setValue(16)
    widget.epochs_spin.setValue(args.epochs)
    widget.steps_spin.setValue(10)
    widget.patch_spin.setValue(96)
    widget.batch_spin.setValue(4)
    widget.train_unet()
    _wait(lambda: not widget.training and W.UNET in viewer.layers, timeout_s=1800)
    layer.visible = False
    viewer.reset_view()
    _wait(lambda: True)
    _save(viewer, args.out / "napari_4_unet.png")

    truth = (labels > 0).astype(np.uint8) + 1
    for name in (W.PREVIEW, W.UNET):
        data = viewer.layers[name].data
        print(f"{name}: pixel accuracy vs truth {np.mean(data == truth):.3f}")
    viewer.close()


def _objects_step(args: argparse.Namespace) -> None:
    """Screenshot 5: built-in nuclei model, then the 4 brightest and 4 dimmest nuclei clicked."""
    import napari
    from scipy import ndimage as ndi

    from pixlearn.app.napari import widget as W
    from pixlearn.app.napari.objects_panel import CLICKS_PREFIX
    from pixlearn.synthetic import SyntheticConfig, make_nuclei

    config = SyntheticConfig(shape=(args.size, args.size), brightness=(0.25, 1.0), coverage=0.25)
    image, _ = make_nuclei(config, np.random.default_rng(11))
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1280, 860)
    viewer.add_image(image, name="synthetic nuclei", metadata={"pixlearn_axes": "YX"})
    _, widget = viewer.window.add_plugin_dock_widget("pixlearn", "Pixel classification")
    widget.apply_builtin("nuclei")
    _wait(lambda: "nuclei result" in viewer.layers and not widget.busy)
    objects = np.asarray(viewer.layers["nuclei result"].data)
    ids = np.unique(objects[objects > 0])
    means = np.asarray(ndi.mean(image, objects, ids))
    order = ids[np.argsort(means)]
    for k, (name, chosen) in enumerate((("dim", order[:4]), ("bright", order[-4:]))):
        widget.object_class_list.setCurrentRow(k)
        widget.object_class_list.item(k).setText(name)
        layer = viewer.layers[CLICKS_PREFIX + name]
        for centre in ndi.center_of_mass(objects > 0, objects, list(chosen)):
            layer.add(np.asarray(centre))
    widget.train_objects()
    _wait(lambda: W.OBJECT_CLASSES in viewer.layers and not widget.busy)
    viewer.layers["nuclei result"].visible = False
    viewer.layers[W.OBJECT_CLASSES].opacity = 0.5
    viewer.reset_view()
    viewer.camera.zoom *= 1.8  # the middle of the image: nuclei large enough to see the clicks
    bar = widget.scroll_area.verticalScrollBar()
    bar.setValue(bar.maximum())  # the object classes at the bottom of the widget
    _wait(lambda: True)
    _save(viewer, args.out / "napari_5_objects.png")
    classes = viewer.layers[W.OBJECT_CLASSES].data
    for k, name in enumerate(("dim", "bright")):
        print(f"{name}: median of the objects' mean intensity {np.median(means[np.isin(ids, np.unique(objects[classes == k + 1]))]):.0f}")
    print(f"objects: {widget.object_counts.text()}")
    viewer.close()


if __name__ == "__main__":
    sys.exit(main())
