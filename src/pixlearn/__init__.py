"""pixlearn: learn pixel-wise mappings from paired microscopy images.

Classical pixel classifiers (filter bank + random forest, SVM, gradient boosting) and fully
convolutional networks (U-Net, 2D and 3D) for semantic segmentation, instance segmentation and
restoration, saved as one portable model and applied to images of any size.
"""

from __future__ import annotations

__version__ = "0.1.0"
