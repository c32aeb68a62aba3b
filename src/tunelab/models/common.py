"""Shared by every builder: training hyperparameters, optimiser, compile, inputs, regulariser
and initialiser."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from tunelab.backend import keras
from tunelab.data.base import DataSpec
from tunelab.schema import ConfigError
from tunelab.schema import build as build_settings
from tunelab.space import SearchSpace
from tunelab.tasks.base import Task


@dataclass
class TrainHParams:
    """Hyperparameters every model has: how it is optimised."""

    batch_size: int = 128  # 0 = full batch
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.0  # sgd only
    rho: float = 0.9  # rmsprop only
    lr_step_every: int = 0  # multiply lr by lr_step_gamma every N epochs; 0 = constant lr
    lr_step_gamma: float = 0.5

    def check(self, path: str) -> None:
        if self.batch_size < 0:
            raise ConfigError(
                f"{path}.batch_size: must be >= 0 (0 = full batch), got {self.batch_size}"
            )
        if self.lr <= 0:
            raise ConfigError(f"{path}.lr: must be positive, got {self.lr}")


class ModelBuilder(ABC):
    """A model family: its `HParams` dataclass, `build(hp, spec)` returning a compiled model,
    and the task that trains, evaluates and serves it (`tunelab.tasks`).

    The built-in families take their hyperparameters as a dataclass: the model YAML's
    `hparams` fix every field, its `space` names those tuned, and each trial's values are laid
    over the fixed ones. A family whose model declares its own space as it builds (KerasTuner's
    `build(hp)`, `tunelab.models.hypermodel`) sets `defines_space` and overrides the class
    methods below. To use one of your own, name it in a model YAML (`name: linear`,
    `_target_: mypackage.Linear`, `training`, `hparams`, `space`, as in `conf/model/mlp.yaml`)
    in a folder given with `--config-dir`, and run `python -m tunelab model=linear`.

    Examples:
        Softmax regression, its L2 penalty a hyperparameter:

        >>> from dataclasses import dataclass
        >>> from tunelab.backend import keras
        >>> from tunelab.data.base import Augmentation, DataSpec
        >>> from tunelab.models.common import ModelBuilder, TrainHParams, compile_classifier
        >>> from tunelab.models.common import inputs, regularizer
        >>> from tunelab.tasks.classification import Classification
        >>> @dataclass
        ... class LinearHParams(TrainHParams):  # batch_size, optimizer, lr, ... and:
        ...     l2: float = 0.0
        >>> class Linear(ModelBuilder):
        ...     HParams = LinearHParams
        ...     task = Classification  # trained on labels, scored by accuracy and macro-F1
        ...     @staticmethod
        ...     def build(hp: LinearHParams, spec: DataSpec):
        ...         layers = keras().layers
        ...         inp, x = inputs(spec)
        ...         dense = layers.Dense(spec.n_classes, activation="softmax",
        ...                              kernel_regularizer=regularizer(0.0, hp.l2))
        ...         return compile_classifier(keras().Model(inp, dense(layers.Flatten()(x))), hp)
        >>> spec = DataSpec(input_shape=(8, 8, 1), n_classes=10, resize=None,
        ...                 augmentation=Augmentation())
        >>> model = Linear.build(Linear.hparams_for(LinearHParams(), {"l2": 1e-4}), spec)
        >>> model.count_params(), type(model.optimizer).__name__
        (650, 'Adam')
    """

    HParams: ClassVar[type] = TrainHParams
    task: ClassVar[type[Task]]
    defines_space: ClassVar[bool] = False  # the strategies then draw values as the model asks

    @staticmethod
    @abstractmethod
    def build(hp: Any, spec: DataSpec) -> Any:
        """A compiled Keras model for one trial.

        Args:
            hp: the trial's hyperparameters, an instance of `HParams` (fixed and tuned).
            spec: the data's input shape, number of classes, resize and augmentation.

        Returns:
            A compiled `keras.Model` that reports the task's objectives.
        """

    @classmethod
    def searched_space(cls, declared: SearchSpace) -> SearchSpace:
        """The space the strategies search: the declared one."""
        return declared

    @classmethod
    def hparams_for(cls, fixed: Any, values: dict[str, Any], drawn: Any = None) -> Any:
        """A trial's hyperparameters: the tuned `values` laid over the `fixed` dataclass
        (`drawn`, a strategy's own hyperparameter object, is for families that define their
        space)."""
        return build_settings(cls.HParams, {**vars(fixed), **values}, "trial hyperparameters")

    @classmethod
    def tuned_values(cls, hp: Any, proposed: dict[str, Any]) -> dict[str, Any]:
        """The values a trial was trained with: those proposed."""
        return proposed

    @classmethod
    def logged_params(cls, hp: Any) -> dict[str, Any]:
        """Every hyperparameter of the trial, fixed and tuned, as MLflow params."""
        return vars(hp)

    @classmethod
    def fit(cls, hp: Any, model: Any, **kwargs: Any) -> Any:
        """Train `model` (`kwargs` are `keras.Model.fit`'s, callbacks included)."""
        return model.fit(**kwargs)


def optimizer(hp: TrainHParams) -> Any:
    opt = keras().optimizers
    if hp.optimizer == "sgd":
        return opt.SGD(learning_rate=hp.lr, momentum=hp.momentum)
    if hp.optimizer == "rmsprop":
        return opt.RMSprop(learning_rate=hp.lr, rho=hp.rho)
    return opt.Adam(learning_rate=hp.lr)


def compile_classifier(model: Any, hp: TrainHParams) -> Any:
    """Cross-entropy on integer labels; accuracy and macro-F1 (`val_macro_f1` when validating)."""
    from tunelab.models.macro_f1 import MacroF1

    metrics = ["accuracy", MacroF1(model.output.shape[-1])]
    model.compile(optimizer=optimizer(hp), loss="sparse_categorical_crossentropy", metrics=metrics)
    return model


def inputs(spec: DataSpec, resolution: int | None = None) -> tuple[Any, Any]:
    """The input tensor and the preprocessed tensor, resized to `resolution` pixels square if
    given (a model's hyperparameter), else to the dataset's `resize` if it asks for one."""
    x = inp = keras().Input(shape=spec.input_shape)
    side = resolution or spec.resize
    if side:
        x = keras().layers.Resizing(side, side, name="resolution")(x)
    return inp, x


def regularizer(l1: float, l2: float) -> Any:
    """L1/L2 penalty; 0 means none (never Keras' implicit default strength of 0.01)."""
    if l1 == 0 and l2 == 0:
        return None
    return keras().regularizers.L1L2(l1=l1, l2=l2)


def initializer(name: str) -> Any:
    if name == "random_normal_mean10":  # the deliberately bad start of the MNIST study
        return keras().initializers.RandomNormal(mean=10.0, stddev=1.0)
    return name
