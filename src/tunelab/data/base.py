"""What every dataset shares: settings, the stratified split, scaling and the model-facing spec."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tunelab.schema import ConfigError


@dataclass
class Augmentation:
    """Random image transforms applied by CNN models during training only."""

    rotation: float = 0.0  # degrees
    shift: float = 0.0  # fraction of height/width
    shear: float = 0.0  # fraction
    zoom: float = 0.0  # fraction
    flip: bool = False  # horizontal

    def transform(self) -> Any | None:
        """Random transforms applied to training batches only, outside the model: the logged
        and served model stays free of them (Keras 3.15 cannot even reload its own
        RandomShear). None where nothing is transformed."""
        from tunelab.backend import keras

        layers = keras().layers
        steps = []
        if self.flip:
            steps.append(layers.RandomFlip("horizontal"))
        if self.rotation:
            steps.append(layers.RandomRotation(self.rotation / 360.0))
        if self.shift:
            steps.append(layers.RandomTranslation(self.shift, self.shift))
        if self.shear:
            steps.append(layers.RandomShear(x_factor=self.shear, y_factor=self.shear))
        if self.zoom:
            steps.append(layers.RandomZoom(self.zoom))
        return keras().Sequential(steps, name="augmentation") if steps else None


@dataclass
class DataSettings:
    """Knobs common to every dataset; subclasses narrow `source`."""

    source: str = "embedded"
    path: str | None = None  # a local copy for sources that would otherwise download
    n_train: int | None = None  # None = all that is left after validation and test
    n_val: int = 500
    n_test: int | None = 1000  # None = the whole test split
    resize: int | None = None  # square side in pixels, applied inside the model
    augmentation: Augmentation = field(default_factory=Augmentation)

    def check(self, path: str) -> None:
        for key in ("n_train", "n_val", "n_test", "resize"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{path}.{key}: must be positive, got {value}")


@dataclass
class Arrays:
    """Raw images (N, H, W, C) and integer labels; `x_test` is None when there is no test split."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


@dataclass
class DataSpec:
    """What a model builder needs to know about its inputs."""

    input_shape: tuple[int, ...]
    n_classes: int
    resize: int | None
    augmentation: Augmentation
    n_train: int | None = None  # training images (batch norm's momentum follows the steps)


@dataclass
class Dataset:
    """Train/validation/test splits scaled to [0, 1], float32 (N, H, W, C), int labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    spec: DataSpec
    notices: list[str] = field(default_factory=list)  # where the data held less than asked

    @property
    def sizes(self) -> dict[str, Any]:
        """The sizes the study actually used, and the training split's images per class."""
        counts = np.bincount(self.y_train, minlength=len(self.class_names))
        return {
            "data.n_train": len(self.y_train),
            "data.n_val": len(self.y_val),
            "data.n_test": len(self.y_test),
            "data.train_per_class": ",".join(str(int(c)) for c in counts),
        }


class DatasetSource(ABC):
    """Base of the image datasets: declare `Settings`, `class_names`, `max_value`, `arrays`.

    tunelab splits what `arrays` returns (stratified, seeded), scales it to [0, 1] and hands
    the models a `DataSpec`. To use one of your own, name it in a dataset YAML (`name:
    even_digits`, `_target_: mypackage.EvenDigits`, then the `DataSettings` keys) in a folder
    given with `--config-dir`, and run `python -m tunelab dataset=even_digits`.

    Examples:
        scikit-learn's even digits, five classes:

        >>> from sklearn.datasets import load_digits
        >>> from tunelab.data.base import Arrays, DatasetSource, DataSettings
        >>> class EvenDigits(DatasetSource):
        ...     class_names = ["0", "2", "4", "6", "8"]
        ...     max_value = 16.0  # the pixels' range: 0..16
        ...     @classmethod
        ...     def arrays(cls, settings: DataSettings) -> Arrays:
        ...         digits = load_digits()
        ...         even = digits.target % 2 == 0
        ...         return Arrays(x=digits.images[even, ..., None], y=digits.target[even] // 2)
        >>> data = EvenDigits.load(DataSettings(n_val=100, n_test=100), seed=0)
        >>> data.x_train.shape, float(data.x_train.max()), data.spec.n_classes
        ((691, 8, 8, 1), 1.0, 5)
    """

    Settings: ClassVar[type[DataSettings]] = DataSettings
    class_names: ClassVar[list[str]]
    max_value: ClassVar[float] = 255.0

    @classmethod
    @abstractmethod
    def arrays(cls, settings: Any) -> Arrays:
        """The whole dataset as raw arrays: images (N, H, W, C) in 0..`max_value` and integer
        labels indexing `class_names`; with its own test split if it has one.

        Args:
            settings: the dataset's settings, an instance of `Settings`.

        Returns:
            `Arrays`; tunelab takes the test split from `x` when `x_test` is None.
        """

    @classmethod
    def load(cls, settings: Any, seed: int) -> Any:
        """The study's splits: the `arrays`, split stratified with `seed`, scaled to [0, 1]."""
        return split_and_scale(cls, settings, seed)


def load_dataset(source: type[DatasetSource], settings: Any, seed: int) -> Any:
    """The splits a study of `source` trains, validates and tests on."""
    return source.load(settings, seed)


def split_and_scale(source: type[DatasetSource], settings: DataSettings, seed: int) -> Dataset:
    """Load `source`, split it stratified with `seed`, and scale pixels to [0, 1]."""
    raw = source.arrays(settings)
    if raw.x_test is None:
        pool_x, pool_y, x_test, y_test = _take(raw.x, raw.y, settings.n_test or 1000, seed, "test")
    else:
        pool_x, pool_y = raw.x, raw.y
        assert raw.y_test is not None, "a dataset with test images has test labels"
        x_test, y_test = raw.x_test, raw.y_test
        if settings.n_test is not None and settings.n_test < len(y_test):
            _, _, x_test, y_test = _take(x_test, y_test, settings.n_test, seed, "test")
    x_train, y_train, x_val, y_val = _take(pool_x, pool_y, settings.n_val, seed + 1, "val")
    if settings.n_train is not None and settings.n_train < len(y_train):
        _, _, x_train, y_train = _take(x_train, y_train, settings.n_train, seed + 2, "train")
    notices = [
        f"dataset.{key}: {asked} asked, the data holds {held}; the study uses {held}"
        for key, asked, held in (
            ("n_train", settings.n_train, len(y_train)),
            ("n_test", settings.n_test, len(y_test)),
        )
        if asked is not None and asked > held
    ]
    scale = np.float32(1.0 / source.max_value)
    x_train, x_val, x_test = (np.asarray(a, np.float32) * scale for a in (x_train, x_val, x_test))
    spec = DataSpec(
        tuple(x_train.shape[1:]),
        len(source.class_names),
        settings.resize,
        settings.augmentation,
        len(y_train),
    )
    return Dataset(
        x_train, y_train, x_val, y_val, x_test, y_test, list(source.class_names), spec, notices
    )


def _take(x: np.ndarray, y: np.ndarray, n: int, seed: int, what: str):
    """Split off `n` samples stratified by class; returns (rest_x, rest_y, taken_x, taken_y)."""
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        raise ConfigError(f"dataset.n_{what}: {n} leaves no data; only {len(y)} samples remain")
    rest_x, taken_x, rest_y, taken_y = train_test_split(
        x, y, test_size=n, stratify=y, random_state=seed, shuffle=True
    )
    return rest_x, rest_y, taken_x, taken_y


def load_keras_npz(path: str) -> Arrays:
    """An `.npz` in `keras.datasets` layout: x_train, y_train, x_test, y_test."""
    try:
        with np.load(path) as f:
            return Arrays(
                _nhwc(f["x_train"]),
                f["y_train"].reshape(-1),
                _nhwc(f["x_test"]),
                f["y_test"].reshape(-1),
            )
    except FileNotFoundError:
        raise ConfigError(f"dataset.path: no file at {path!r}") from None
    except KeyError as error:
        raise ConfigError(
            f"dataset.path: {path!r} lacks {error}; expected keys x_train, y_train, x_test, y_test"
        ) from None


def _nhwc(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


def download_error(name: str, error: Exception, hint: str) -> ConfigError:
    return ConfigError(
        f"dataset.source=keras: could not download {name} ({type(error).__name__}: {error}). "
        f"This machine may be offline: {hint}"
    )
