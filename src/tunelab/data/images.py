"""Your own images, one subfolder per class: `dataset=images dataset.path=photos/`.

Read with `keras.utils.image_dataset_from_directory` at `image_size` and streamed as a `tf.data`
pipeline, never loaded whole: the files are split once, seeded, into training, validation and
test shares (Keras' own split, applied twice). Pixels stay 0..255, as Keras reads them: the
model rescales (a `keras.layers.Rescaling(1 / 255)` first).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.data.supervised import FileSettings, SupervisedData
from tunelab.schema import ConfigError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")  # what Keras reads


@dataclass
class ImageSettings(FileSettings):
    # [height, width]; n: [n, n]
    image_size: int | list[int] = field(default_factory=lambda: [64, 64])
    color_mode: str = "rgb"  # rgb | grayscale | rgba
    batch_size: int = 32

    @property
    def size(self) -> tuple[int, int]:
        """(height, width); one number is a square."""
        n = self.image_size
        return (n, n) if isinstance(n, int) else (n[0], n[-1])

    def check(self, path: str) -> None:
        super().check(path)
        if isinstance(self.image_size, list) and len(self.image_size) != 2 or min(self.size) < 1:
            raise ConfigError(
                f"{path}.image_size: expected n or [height, width], got {self.image_size}"
            )
        if self.color_mode not in ("rgb", "grayscale", "rgba"):
            raise ConfigError(
                f"{path}.color_mode: {self.color_mode!r} is not valid; valid "
                "choices: rgb, grayscale, rgba"
            )


class Images:
    """A folder with one subfolder of images per class (their names are the class names)."""

    Settings = ImageSettings

    @classmethod
    def load(cls, settings: ImageSettings, seed: int) -> SupervisedData:
        folder = Path(str(settings.path))
        classes = class_folders(folder)
        from tunelab.backend import keras

        held_out = settings.val_fraction + settings.test_fraction
        if held_out >= 1:
            raise ConfigError(
                f"dataset.val_fraction + dataset.test_fraction: must be below 1, got {held_out}"
            )
        read = {
            "image_size": settings.size,
            "color_mode": settings.color_mode,
            "batch_size": settings.batch_size,
            "seed": seed,
            "class_names": classes,
            "verbose": False,
        }
        train, rest = keras().utils.image_dataset_from_directory(
            str(folder), validation_split=held_out, subset="both", **read
        )
        test_share = settings.test_fraction / held_out
        val_files, test_files = _split_files(rest.file_paths, test_share, seed)
        val, test = (_from_files(files, classes, read) for files in (val_files, test_files))
        data = SupervisedData(
            train, None, val, None, test, None, "classification", classes, target="class"
        )
        data.preprocessing = {
            "image_size": list(settings.size),
            "scale": "0..255",
            "files": {
                "train": len(train.file_paths),
                "val": len(val_files),
                "test": len(test_files),
            },
        }
        data.fingerprint = _fingerprint(folder)
        return data


def class_folders(folder: Path) -> list[str]:
    """The class names: the subfolders holding images (one line naming the problem if none)."""
    if not folder.is_dir():
        raise ConfigError(f"dataset.path: no folder at {str(folder)!r}")
    classes = sorted(
        d.name
        for d in folder.iterdir()
        if d.is_dir() and any(f.suffix.lower() in SUFFIXES for f in d.iterdir())
    )
    if len(classes) < 2:
        raise ConfigError(
            f"dataset.path: {str(folder)!r} needs one subfolder of images per "
            f"class, at least two; found {len(classes)}"
        )
    return classes


def _split_files(files: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(files))
    cut = int(round(len(files) * (1 - share)))
    return [files[i] for i in order[:cut]], [files[i] for i in order[cut:]]


def _from_files(files: list[str], classes: list[str], read: dict[str, Any]) -> Any:
    """A batched dataset of these image files, labelled by their folder's class index."""
    import tensorflow as tf

    labels = [classes.index(Path(f).parent.name) for f in files]
    channels = {"rgb": 3, "grayscale": 1, "rgba": 4}[read["color_mode"]]
    size = read["image_size"]

    def load(path: Any, label: Any) -> Any:
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        return tf.image.resize(image, size), label

    dataset = tf.data.Dataset.from_tensor_slices((files, labels)).map(load)
    dataset = dataset.batch(read["batch_size"]).prefetch(tf.data.AUTOTUNE)
    dataset.file_paths = files
    return dataset


def _fingerprint(folder: Path) -> str:
    """A hash of the image files' names and sizes."""
    sha = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        if file.is_file():
            sha.update(f"{file.relative_to(folder)}:{file.stat().st_size}".encode())
    return sha.hexdigest()[:16]
