"""The whole configuration of one experiment: :class:`ExperimentConfig`, read from YAML or JSON.

One typed section per stage, each the frozen dataclass of the room it configures. The sections
are torch-free (:mod:`pixlearn.nets.config` holds the network ones), so reading and checking a
configuration file imports neither torch nor scikit-learn's estimators. This module sits above
the rooms whose sections it gathers (like :mod:`pixlearn.app`); :mod:`pixlearn.config` below
them only holds the :class:`~pixlearn.config.Config` base.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import yaml

from pixlearn.classical.config import ClassifierConfig
from pixlearn.classical.features import FeatureConfig
from pixlearn.config import Config
from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import PixlearnError
from pixlearn.nets.classify_config import ClassifyConfig
from pixlearn.nets.config import TrainConfig, UNetConfig
from pixlearn.predict.tiling import TileConfig

SCHEMA_VERSION = 1
"""Version of the :class:`ExperimentConfig` layout; files with a newer one are refused."""


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(Config):
    """Every setting of an experiment, one section per stage.

    Parameters
    ----------
    schema_version : int
        Layout version of this configuration (:data:`SCHEMA_VERSION`).
    normalization : NormalizeConfig
        How raw intensities are scaled (both model kinds).
    features : FeatureConfig
        Filter bank of the classical models.
    classifier : ClassifierConfig
        Classical classifier and its training.
    unet : UNetConfig or None
        Network architecture; ``None``: chosen from the data
        (:func:`pixlearn.nets.autoconfig.auto_config`).
    train : TrainConfig
        Network training, with its augmentation (``train.augmentation``); ``None`` fields are
        chosen from the data.
    tile : TileConfig
        Tiling defaults for prediction.
    classify : ClassifyConfig
        Image classification by a CNN (``--method cnn --task classify``): network and training.

    Examples
    --------
    >>> cfg = ExperimentConfig.from_dict({"train": {"epochs": 5}})
    >>> cfg.train.epochs, cfg.unet is None
    (5, True)
    >>> ExperimentConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    schema_version: int = SCHEMA_VERSION
    normalization: NormalizeConfig = NormalizeConfig()
    features: FeatureConfig = FeatureConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    unet: UNetConfig | None = None
    train: TrainConfig = TrainConfig()
    tile: TileConfig = TileConfig()
    classify: ClassifyConfig = ClassifyConfig()

    def __post_init__(self) -> None:
        if isinstance(self.schema_version, bool) or not isinstance(self.schema_version, int):
            raise ValueError(f"ExperimentConfig.schema_version must be an int, got {self.schema_version!r}")
        if not 1 <= self.schema_version <= SCHEMA_VERSION:
            raise ValueError(f"ExperimentConfig.schema_version {self.schema_version} is not supported "
                             f"(this pixlearn reads 1..{SCHEMA_VERSION})")
        sections: dict[str, type | tuple[type, ...]] = {"normalization": NormalizeConfig, "features": FeatureConfig, "classifier": ClassifierConfig,
                    "unet": (UNetConfig, type(None)), "train": TrainConfig, "tile": TileConfig,
                    "classify": ClassifyConfig}
        for name, kind in sections.items():
            if not isinstance(getattr(self, name), kind):
                wanted = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise ValueError(f"ExperimentConfig.{name} must be a {wanted}, got {type(getattr(self, name)).__name__}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ExperimentConfig:
        """Read a ``.json`` file, or YAML (any other suffix, ``.yaml``/``.yml`` usually).

        Parameters
        ----------
        path : path-like

        Returns
        -------
        config : ExperimentConfig
            Sections and keys missing from the file take their defaults.

        Raises
        ------
        PixlearnError
            The file cannot be read or parsed, is not a mapping, or holds an unknown key or a
            value of the wrong type (the message names the file and the key).
        """
        path = Path(path)
        try:
            text = path.read_text()
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise PixlearnError(f"cannot read config ({exc})", path) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise PixlearnError(f"config must be a mapping of sections, got {type(data).__name__}", path)
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise PixlearnError(str(exc), path) from None

    @classmethod
    def from_model(cls, path: str | os.PathLike[str]) -> ExperimentConfig | None:
        """The resolved configuration saved in a model's ``model.json``; ``None`` for older files.

        Raises
        ------
        pixlearn.errors.ModelFileError
            Not a readable model file.
        PixlearnError
            A saved configuration this version cannot read.
        """
        from pixlearn.models.model_file import read_header

        data: Any = read_header(path).get("experiment")
        if data is None:
            return None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise PixlearnError(f"saved experiment configuration: {exc}", path) from None


__all__ = ["SCHEMA_VERSION", "ExperimentConfig"]
