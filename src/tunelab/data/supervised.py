"""A user's own data for their own model: features and targets as `keras.Model.fit` takes them.

`SupervisedData` holds the training, validation and test splits (arrays, or dicts of arrays for a
model with several inputs) and what the task needs to know of the targets: classification with
class names, or regression. Labels stay as the user gives them (integers or one-hot); strings
become class indices, their names kept for the plots. `split` makes the validation or test split
where the user gives none: stratified for classes, random for numbers, seeded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, cast

import numpy as np

from tunelab.schema import ConfigError, ModelError

Kind = Literal["classification", "regression"]
Features = Any  # an array, or a dict of arrays keyed by input name


@dataclass
class SupervisedData:
    """Train / validation / test splits of a user's features and targets."""

    x_train: Features  # arrays, or a tf.data.Dataset of (features, target) batches
    y_train: np.ndarray | None  # None where x_train is a dataset
    x_val: Features | None
    y_val: np.ndarray | None
    x_test: Features | None
    y_test: np.ndarray | None
    kind: Kind
    class_names: list[str] = field(default_factory=list)  # classification only
    notices: list[str] = field(default_factory=list)
    target: str = "y"  # what is predicted, as the plots name it
    preprocessing: dict[str, Any] = field(default_factory=dict)  # what the source fitted
    fingerprint: str | None = None  # for streamed data: a hash of its files (else of arrays)
    named_labels: bool = False  # the labels were strings: `class_names` are what they were
    raw_rows: Any = None  # a few evaluation rows as the user gave them (a DataFrame's)

    @cached_property  # a stream's rows are counted by reading it: once
    def sizes(self) -> dict[str, Any]:
        return {
            "data.n_train": rows(self.x_train),
            "data.n_val": rows(self.x_val),
            "data.n_test": rows(self.x_test),
        }

    @property
    def spec(self) -> SupervisedData:
        """What a model builder is told of its data: the data itself."""
        return self

    def evaluation_split(self) -> tuple[str, Features, np.ndarray | None] | None:
        """The split a finished trial is evaluated on: test, else validation, else None."""
        if self.x_test is not None:
            return "test", self.x_test, self.y_test
        if self.x_val is not None:
            return "val", self.x_val, self.y_val
        return None

    def class_index(self, y: np.ndarray) -> np.ndarray:
        """Class indices of labels in the user's form (integers, one-hot or binary floats)."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            return np.argmax(y, axis=1)
        return y.reshape(-1).astype("int64")

    def check_model(self, model: Any) -> None:
        """Refuse, in one line, a classifier whose output layer cannot fit the labels."""
        units = _output_units(model)
        if self.kind != "classification" or units is None:
            return
        if self.y_train is not None and self.y_train.ndim == 2 and self.y_train.shape[1] > 1:
            if units != self.y_train.shape[1]:
                raise ModelError(
                    f"y: one-hot labels of {self.y_train.shape[1]} classes do not "
                    f"fit the model's output layer of {units} units"
                )
        elif len(self.class_names) > max(units, 2) or (units == 1 and len(self.class_names) > 2):
            raise ModelError(
                f"y: labels of {len(self.class_names)} classes (0..{len(self.class_names) - 1}) "
                f"do not fit the model's output layer of {units} units"
            )

    def digest(self) -> str:
        """A hash of every split, so that a resumed study refuses other data."""
        if self.fingerprint:
            return self.fingerprint
        if streamed(self.x_train):  # a user's pipeline: not read twice to be hashed
            return "tf.data"
        sha = hashlib.sha256()
        for part in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            for array in _arrays(part):
                sha.update(np.ascontiguousarray(array).tobytes())
        return sha.hexdigest()[:16]


def prepare(
    x: Features,
    y: Any,
    validation: tuple[Features, Any] | None,
    validation_split: float | None,
    test: tuple[Features, Any] | None,
    kind: str,
    seed: int,
) -> SupervisedData:
    """The user's data as a study uses it: the task inferred where `kind` is "auto" (a float
    target, regression; integers, strings, one-hot, classification), string labels as class
    indices, and the validation split cut off with `seed` where only a fraction is given.
    `x` may be a `tf.data.Dataset` of (features, target) batches, with datasets (or None) for
    `validation` and `test`."""
    if streamed(x):
        return _streams(x, validation, test, kind)
    check_lengths(x, y, validation, test)
    y = np.asarray(y)
    resolved = _kind(y) if kind == "auto" else kind
    if resolved not in ("classification", "regression"):
        raise ConfigError(
            f"task: {kind!r} is not valid; valid choices: auto, classification, regression"
        )
    names: list[str] = []
    named = resolved == "classification" and y.dtype.kind in "USO"  # string labels
    splits = [y, *(np.asarray(s[1]) for s in (validation, test) if s is not None)]
    if resolved == "classification":
        splits, names = _labels(splits)
    y, rest = splits[0], splits[1:]
    x_val = y_val = x_test = y_test = None
    if validation is not None:
        x_val, y_val = validation[0], rest.pop(0)
    if test is not None:
        x_test, y_test = test[0], rest.pop(0)
    if validation is None and validation_split:
        kept, taken = split_rows(y, validation_split, seed, resolved)
        x, y, x_val, y_val = take(x, kept), y[kept], take(x, taken), y[taken]
    if resolved == "regression":
        y, y_val, y_test = (
            None if a is None else np.asarray(a, "float32") for a in (y, y_val, y_test)
        )
    return SupervisedData(
        x, y, x_val, y_val, x_test, y_test, cast(Kind, resolved), names, named_labels=named
    )


def check_lengths(
    x: Features,
    y: Any,
    validation: tuple[Features, Any] | None,
    test: tuple[Features, Any] | None,
) -> None:
    """Refuse, in one line naming the lengths, features and targets of different lengths (or
    a dict's inputs of different lengths): Keras would drop rows of the longer, or fail every
    trial."""
    for key, pair in (("x, y", (x, y)), ("validation_data", validation), ("test_data", test)):
        if pair is None:
            continue
        features, targets = pair[0], pair[1]
        if isinstance(features, dict):
            lengths = {str(k): len(v) for k, v in features.items()}
            if len(set(lengths.values())) > 1:
                listed = ", ".join(f"{k} {n}" for k, n in lengths.items())
                raise ConfigError(
                    f"{key}: the inputs of the dict differ in length ({listed} "
                    "rows); give every input the same rows"
                )
        n_x, n_y = rows(features), len(targets)
        if n_x != n_y:
            raise ConfigError(
                f"{key}: the features have {n_x} rows but the targets {n_y}; give "
                "both the same rows"
            )


def _streams(x: Any, validation: Any, test: Any, kind: str) -> SupervisedData:
    """A user's `tf.data` pipelines as they are: their targets are read once (from the
    validation stream, else the training one) for the task and the class names."""
    if validation is not None and not streamed(validation):
        raise ConfigError(
            "validation_data: with a tf.data.Dataset for x, give a dataset of "
            "(features, target) batches too (validation_split needs arrays)"
        )
    targets = np.concatenate([np.asarray(t) for _, t in (validation or x)])
    resolved = _kind(targets) if kind == "auto" else kind
    count = (
        targets.shape[1] if targets.ndim == 2 and targets.shape[1] > 1 else int(targets.max()) + 1
    )
    names = [str(i) for i in range(count)] if resolved == "classification" else []
    return SupervisedData(x, None, validation, None, test, None, cast(Kind, resolved), names)


def _output_units(model: Any) -> int | None:
    """Units of a single-output model's last layer (None where it has several or is unknown)."""
    try:
        shape = model.output_shape
    except (AttributeError, ValueError):  # a subclassed model not called yet
        return None
    return int(shape[-1]) if isinstance(shape, tuple) and shape[-1] is not None else None


@dataclass
class FileSettings:
    """A user's data in a file: its path, the task, and the shares split off for validation
    and test where the file has no such split."""

    path: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    val_fraction: float = 0.2  # of what is left after the test split
    test_fraction: float = 0.2

    def check(self, path: str) -> None:
        if not self.path:
            raise ConfigError(f"{path}.path: missing; give the file, e.g. {path}.path=data.csv")
        for key in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, key) < 1:
                raise ConfigError(
                    f"{path}.{key}: must be between 0 and 1, got {getattr(self, key)}"
                )


def from_splits(
    settings: FileSettings,
    seed: int,
    x: Features,
    y: Any,
    validation: tuple[Features, Any] | None = None,
    test: tuple[Features, Any] | None = None,
) -> SupervisedData:
    """The study's splits of a file's data: a test and a validation share split off (seeded,
    stratified for classes) where the file has no such split."""
    y = np.asarray(y)
    kind = _kind(y) if settings.task == "auto" else settings.task
    if test is None:
        x, y, x_test, y_test = split(x, y, settings.test_fraction, seed, kind == "classification")
        test = (x_test, y_test)
    fraction = None if validation is not None else settings.val_fraction
    return prepare(x, y, validation, fraction, test, kind, seed + 1)


class GivenData:
    """A data source for data given as Python objects (`tunelab.tune`): its settings hold it."""

    @dataclass
    class Settings:
        data: SupervisedData | None = None

    @classmethod
    def load(cls, settings: Any, seed: int) -> SupervisedData:
        return settings.data


def _kind(y: np.ndarray) -> Kind:
    """Regression for a float target, unless it is one-hot rows or only 0 and 1 (a binary
    label); classification for integers and strings."""
    if y.dtype.kind != "f" or (y.ndim == 2 and y.shape[1] > 1):
        return "classification"
    return "classification" if set(np.unique(y)) <= {0.0, 1.0} else "regression"


def _labels(splits: list[np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    """Labels as fit takes them, and the class names: strings become indices of their sorted
    names; integers and one-hot stay, named by their index."""
    if splits[0].dtype.kind in "USO":
        names = sorted({str(v) for s in splits for v in s.reshape(-1)})
        lookup = {name: i for i, name in enumerate(names)}
        return [np.array([lookup[str(v)] for v in s.reshape(-1)], "int64") for s in splits], names
    if splits[0].ndim == 2 and splits[0].shape[1] > 1:
        return splits, [str(i) for i in range(splits[0].shape[1])]
    high = max(int(np.max(s)) for s in splits if len(s))
    if min(int(np.min(s)) for s in splits if len(s)) < 0:
        raise ConfigError("y: class labels must be 0 or more (or strings, or one-hot rows)")
    return splits, [str(i) for i in range(high + 1)]


def split_rows(y: Any, fraction: float, seed: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The row indices kept for training and those split off for validation: a seeded
    `fraction`, stratified where `kind` is (or, "auto", is inferred to be) classification."""
    if not 0 < fraction < 1:
        raise ConfigError(f"validation_split: must be between 0 and 1, got {fraction}")
    y = np.asarray(y)
    resolved = _kind(y) if kind == "auto" else kind
    kept, taken = _indices(y, fraction, seed, resolved == "classification")
    return kept, taken


def _indices(
    y: np.ndarray, fraction: float, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    labels = (np.argmax(y, axis=1) if y.ndim == 2 and y.shape[1] > 1 else y) if stratify else None
    kept, taken = train_test_split(
        np.arange(len(y)), test_size=fraction, random_state=seed, stratify=labels
    )
    return kept, taken


def split(
    x: Features, y: np.ndarray, fraction: float, seed: int, stratify: bool
) -> tuple[Features, np.ndarray, Features, np.ndarray]:
    """(x, y) without a `fraction` of its rows, and those rows: stratified by class where
    `stratify`, seeded."""
    kept, taken = _indices(y, fraction, seed, stratify)
    return take(x, kept), y[kept], take(x, taken), y[taken]


def streamed(x: Any) -> bool:
    """Whether `x` is a `tf.data.Dataset` (of (features, target) batches)."""
    return hasattr(x, "element_spec")


def outputs_and_targets(model: Any, x: Features, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """The model's outputs over `x` and the matching targets: arrays in batches, or a
    dataset's (features, target) batches."""
    from tunelab.backend import keras, predict_in_batches

    if not streamed(x):
        return predict_in_batches(model, x, 1024), np.asarray(y)
    to_numpy = keras().ops.convert_to_numpy
    outputs, targets = [], []
    for features, target in x:
        outputs.append(to_numpy(model(features, training=False)))
        targets.append(to_numpy(target))
    return np.concatenate(outputs), np.concatenate(targets)


def head(x: Features, n: int) -> Features:
    """The first `n` rows of features (of a dataset's first batches: their features)."""
    if streamed(x):
        features = next(iter(x.unbatch().batch(n)))[0]
        return np.asarray(features)
    return take(x, slice(0, n))


def take(x: Features, index: Any) -> Features:
    """Rows `index` of an array, or of every array of a dict."""
    if isinstance(x, dict):
        return {k: np.asarray(v)[index] for k, v in x.items()}
    return np.asarray(x)[index]


def rows(x: Features | None) -> int:
    if x is None:
        return 0
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    if streamed(x):
        if hasattr(x, "file_paths"):  # keras' image folders
            return len(x.file_paths)
        if int(x.cardinality()) < 0:  # infinite (repeated) or unknown: not counted
            return 0
        return sum(len(np.asarray(target)) for _, target in x)
    return len(x)


def _arrays(part: Any) -> list[np.ndarray]:
    if part is None:
        return []
    if isinstance(part, dict):
        return [np.asarray(part[k]) for k in sorted(part)]
    return [np.asarray(part)]
