"""Data in and out, NumPy only: image files, folders and pairs, axes, normalisation, targets.

The room owns reading image files (:mod:`~.images`, through the input checks and limits of
:mod:`~.checks`, with the suffixes and names of :mod:`~.formats`) and writing them atomically
(:mod:`~.writers`, :mod:`~.atomic`), finding image/annotation pairs in folders (:mod:`~.folders`,
:mod:`~.pairs`), axes strings and the canonical ``(..., C)`` layout with its one lazy view,
:class:`CanonicalView`, which can also transform each block it reads (:mod:`~.axes`), the one
block grid and the core shapes a memory budget allows (:mod:`~.blocks`), memory budgets
(:mod:`~.memory`), voxel spacing of files (:mod:`~.spacing`), intensity normalisation (:mod:`~.normalize`), annotation kinds
turned into class targets and object sizes (:mod:`~.labels`), and images with one class each: folders
per class, labels and prediction tables (:mod:`~.classes`).

Imports: :mod:`pixlearn.config`, :mod:`pixlearn.errors`, NumPy and the image-file libraries
(tifffile, zarr, Pillow, inside the calls that need them). Never torch, nor any other room of
pixlearn. The names below are imported on first use.
"""

from __future__ import annotations

from pixlearn.lazy import lazy_exports

_HOMES = {
    "atomic_path": "atomic",
    "CanonicalView": "axes",
    "canonical_axes": "axes",
    "canonical_view": "axes",
    "from_canonical": "axes",
    "full_slices": "axes",
    "grey_view": "axes",
    "infer_axes": "axes",
    "normalize_axes": "axes",
    "spatial_ndim": "axes",
    "to_canonical": "axes",
    "transformed_view": "axes",
    "Block": "blocks",
    "block_grid": "blocks",
    "block_numbers": "blocks",
    "core_shape_for_budget": "blocks",
    "pad_block": "blocks",
    "check_finite": "checks",
    "LabelledImages": "classes",
    "find_images": "classes",
    "read_class_folders": "classes",
    "read_class_predictions": "classes",
    "read_class_table": "classes",
    "read_labelled_images": "classes",
    "write_class_predictions": "classes",
    "find_pairs": "folders",
    "list_images": "folders",
    "read_split": "folders",
    "IMAGE_SUFFIXES": "formats",
    "file_stem": "formats",
    "is_image_file": "formats",
    "open_image": "images",
    "read_canonical": "images",
    "read_image": "images",
    "read_labels": "images",
    "IGNORE": "labels",
    "LABEL_KINDS": "labels",
    "check_label_kind": "labels",
    "count_classes": "labels",
    "median_object_diameter": "labels",
    "object_diameters": "labels",
    "to_class_targets": "labels",
    "default_memory_budget": "memory",
    "parse_memory": "memory",
    "NormalizeConfig": "normalize",
    "check_ngff": "ngff",
    "physical_sizes": "ome",
    "write_ome_tiff": "ome",
    "apply_normalization": "normalize",
    "compute_normalization": "normalize",
    "normalized_view": "normalize",
    "Pair": "pairs",
    "file_spacing": "spacing",
    "parse_spacing": "spacing",
    "relative_spacing": "spacing",
    "load_pairs": "pairs",
    "to_grey": "pairs",
    "create_zarr": "writers",
    "write_csv": "writers",
    "write_geojson": "writers",
    "write_image": "writers",
}

__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
