"""The napari plugin: paint scribbles, watch a live random-forest preview, train a U-Net, apply.

The only room of pixlearn that imports Qt. Its parts: ``napari.yaml`` (the npe2 manifest: the
dock widget, a reader for pixlearn model files and images, sample data), :mod:`.widget` (the
dock widget, made of the parts :mod:`.image_panel`, :mod:`.preview_panel`, :mod:`.unet_panel`,
:mod:`.files_panel`, :mod:`.objects_panel`), their logic without Qt (:mod:`.model_choice`: built-in
models offered, models refused; :mod:`.object_classes`: object classes from clicks), :mod:`.layers`
(napari layer <-> canonical array bookkeeping), :mod:`.io` (reader, sample data). Everything it
computes is done by the library: the live preview by
:class:`pixlearn.classical.interactive.InteractiveSession`, networks by
:func:`pixlearn.nets.fit.fit_network`, applying models by :func:`pixlearn.predict.apply_model`,
object classes by :func:`pixlearn.classical.object_model.fit_object_classifier` (saved and loaded
as ``object-classifier`` model files by :mod:`pixlearn.models.model_file`).
Importing this package imports neither Qt nor napari; its modules do.
"""
