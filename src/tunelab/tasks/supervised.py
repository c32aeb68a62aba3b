"""A user's own model on their own data: classification or regression, as compiled by the user.

The model arrives compiled (KerasTuner's contract), so its loss and metrics are the user's; any
metric it reports is a valid objective. `fit` is fed the user's splits and fixed `fit`
arguments; a finished trial is evaluated on the test split (else validation): accuracy, macro-F1,
per-class F1 and a confusion matrix for classes; MAE, RMSE and R² with a predicted-vs-actual
scatter and a residual histogram for a number. The served model is the user's network itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tunelab.logged import EpochExtras, Evaluation, StudyExtras, TrialArtifacts
from tunelab.schema import ModelError
from tunelab.tasks.base import Direction, Task

MINIMISED = (
    "loss",
    "error",
    "mae",
    "mse",
    "rmse",
    "mape",
    "msle",
    "crossentropy",
    "hinge",
    "fid",
    "kid",
)


@dataclass
class SupervisedSettings:
    """What the user fixed: `model.fit` arguments, and the objective (its learning curve is
    drawn beside the loss's)."""

    fit: dict[str, Any] = field(default_factory=dict)
    objective: str = "val_loss"


def direction_of(name: str) -> Direction:
    """min for losses and errors (`val_loss`, `mae`, `val_rmse`, ...), max for the rest."""
    bare = name.removeprefix("val_").lower()
    return "min" if any(word in bare for word in MINIMISED) else "max"


class Supervised(Task):
    """A compiled user model trained with `fit` on the user's data (`SupervisedData`)."""

    Settings = SupervisedSettings
    objectives: ClassVar[dict[str, Direction]] = {"val_loss": "min"}  # the default; any is valid

    def __init__(self, settings: Any, data: Any, seed: int, workdir: Path) -> None:
        from tunelab.data.supervised import SupervisedData

        if not isinstance(data, SupervisedData):  # a built-in dataset's labelled images
            data = SupervisedData(
                data.x_train,
                data.y_train,
                data.x_val,
                data.y_val,
                data.x_test,
                data.y_test,
                "classification",
                list(data.class_names),
                target="class",
            )
        super().__init__(settings, data, seed, workdir)

    @classmethod
    def direction(cls, objective: str) -> Direction:
        return direction_of(objective)

    def prepare(self) -> StudyExtras:
        """The study run keeps what the data source fitted (how a served model's inputs are
        standardised and encoded)."""
        if not self.data.preprocessing:
            return StudyExtras()
        text = json.dumps(self.data.preprocessing, indent=1)
        return StudyExtras(texts={"data/preprocessing.json": text})

    @classmethod
    def accepts(cls, objective: str) -> bool:
        return True  # which metrics the model reports is known once it is built

    def check_objective(self, model_cls: Any, hp: Any, objective: Any) -> None:
        """The metrics the compiled model reports, read by evaluating it (untrained) on a few
        training rows, with their `val_` twins where there is validation data: an objective
        among none of them is refused before anything is logged. A HyperModel with its own
        `fit` may report more; its objective is checked after its first epoch (`score`)."""
        from tunelab.hyperparameters import overrides_fit

        if overrides_fit(model_cls.hypermodel()):
            return
        model = model_cls.build(hp, self.data.spec)
        if objective.name in self.declared_metrics(model):  # no evaluation needed (0.5 s)
            return
        reported = self.reported_metrics(model)
        if reported is not None and objective.name not in reported:
            raise ModelError(self._not_reported(objective.name, reported))

    def declared_metrics(self, model: Any) -> set[str]:
        """What `fit` surely logs for `model`, read from its compile config without running
        it: the loss and the metrics named there, with their `val_` twins where there is
        validation data (an objective not among them is checked by `reported_metrics`)."""
        try:
            config = model.get_compile_config() or {}
        except Exception:  # a model Keras cannot describe: evaluated instead
            config = {}
        names = {"loss"}
        for metric in config.get("metrics") or []:
            if isinstance(metric, str):
                names.add(metric)
            elif isinstance(metric, dict) and isinstance(metric.get("config"), dict):
                names.add(str(metric["config"].get("name")))
        if self.data.x_val is not None:
            names |= {f"val_{name}" for name in names}
        return names

    def reported_metrics(self, model: Any) -> set[str] | None:
        """What `fit` will log for `model`: its compiled metrics, their `val_` twins with
        validation data, and the regression errors `end_of_epoch` adds. None where the model
        cannot be evaluated yet (the first trial then says why)."""
        from tunelab.data.supervised import head, streamed

        data = self.data
        try:
            if streamed(data.x_train):
                names = model.evaluate(data.x_train.take(1), verbose=0, return_dict=True)
            else:
                y = data.y_train[:8] if data.y_train is not None else None
                names = model.evaluate(head(data.x_train, 8), y, verbose=0, return_dict=True)
        except Exception:  # the user's model and data: a trial will report it with its reason
            return None
        reported = set(names)
        if data.x_val is not None:
            reported |= {f"val_{name}" for name in names}
            if data.kind == "regression":
                reported |= {"val_mae", "val_rmse", "val_r2"}
        return reported

    @staticmethod
    def _not_reported(name: str, reported: set[str]) -> str:
        hint = (
            ""
            if any(k.startswith("val_") for k in reported)
            else "; metrics named val_* need validation_data or validation_split"
        )
        return (
            f"objective: the model does not report {name!r}; it reports "
            f"{', '.join(sorted(reported))}{hint}"
        )

    @property
    def curves(self) -> dict[str, list[str]]:  # type: ignore[override]
        metric = self.settings.objective.removeprefix("val_")
        panels = {"loss": ["loss", "val_loss"]}
        if metric != "loss":
            panels[metric] = [metric, f"val_{metric}"]
        return panels

    def score(
        self, history: list[dict[str, float]], evaluation: Evaluation, objective: Any
    ) -> tuple[float | None, int | None]:
        """The best epoch's objective; an objective the model never reported stops the study,
        naming the metrics it does report."""
        if history and not any(objective.name in h for h in history):
            reported = {k for h in history for k in h} - {"epoch", "epoch_time"}
            raise ModelError(self._not_reported(objective.name, reported))
        return super().score(history, evaluation, objective)

    def fit_inputs(self, hp: Any, seed: int) -> dict[str, Any]:
        from tunelab.data.supervised import streamed

        data = self.data
        fixed = {k: v for k, v in self.settings.fit.items() if k != "callbacks"}
        if streamed(data.x_train):  # datasets of (features, target) batches, shuffled (or
            validation = {} if data.x_val is None else {"validation_data": data.x_val}
            return {"x": data.x_train, "shuffle": False, **validation, **fixed}  # not) by you
        validation = {} if data.x_val is None else {"validation_data": (data.x_val, data.y_val)}
        return {"x": data.x_train, "y": data.y_train, **validation, **fixed}

    def callbacks(self, hp: Any) -> list[Any]:
        return list(self.settings.fit.get("callbacks") or [])

    def end_of_epoch(self, model: Any, epoch: int, last: bool) -> EpochExtras:
        """For a regression with validation data: val_mae, val_rmse and val_r2 (objectives the
        compiled model need not report)."""
        data = self.data
        if data.kind != "regression" or data.x_val is None:
            return EpochExtras()
        from tunelab.backend import predict_in_batches

        predicted = predict_in_batches(model, data.x_val, 1024).reshape(-1)
        errors = predicted - np.asarray(data.y_val).reshape(-1)
        spread = float(np.sum((data.y_val - np.mean(data.y_val)) ** 2))
        return EpochExtras(
            metrics={
                "val_mae": float(np.mean(np.abs(errors))),
                "val_rmse": float(np.sqrt(np.mean(errors**2))),
                "val_r2": 1.0 - float(np.sum(errors**2)) / spread if spread > 0 else float("nan"),
            }
        )

    def evaluate(self, model: Any, hp: Any) -> Evaluation:
        from tunelab.data.supervised import outputs_and_targets

        found = self.data.evaluation_split()
        if found is None:
            return Evaluation(metrics={})
        split, x, y = found
        output, y = outputs_and_targets(model, x, y)
        if self.data.kind == "regression":
            return regression_evaluation(y.reshape(-1), output.reshape(-1), split, self.data.target)
        from tunelab.serving import class_indices
        from tunelab.tasks.classification import evaluate_classes

        predicted = class_indices(output)
        return evaluate_classes(self.data.class_index(y), predicted, self.data.class_names, split)

    def servable(self, model_cls: Any, hp: Any, weights: Path) -> tuple[Any, Any]:
        """The user's network rebuilt from saved weights, served behind the data's
        preprocessing and labels (`ServedModel`); five evaluation rows as the user gave them
        as its example."""
        from tunelab.data.supervised import head
        from tunelab.serving import ServedModel
        from tunelab.weights import load_weights

        data = self.data
        model = model_cls.build(hp, data.spec)
        load_weights(model, weights)
        found = data.evaluation_split()
        example = (
            data.raw_rows
            if data.raw_rows is not None
            else head(found[1] if found else data.x_train, 5)
        )
        names = data.class_names if data.named_labels else None
        return ServedModel(data.kind, data.preprocessing, names, uncompiled(model)), example


def uncompiled(model: Any) -> Any:
    """A copy of the network with its weights and without its training state, which serving
    does not need (loading the compiled model warns that its optimizer's variables are
    skipped); a model that cannot be cloned (some subclassed ones) as it is."""
    from tunelab.backend import keras

    try:
        clone = keras().models.clone_model(model)
        clone.set_weights(model.get_weights())
    except Exception:  # a subclassed model without get_config: served as it is
        return model
    return clone


def regression_evaluation(
    actual: np.ndarray, predicted: np.ndarray, split: str, target: str
) -> Evaluation:
    """MAE, RMSE and R² of `predicted` against `actual` on `split`, in the target's units, with
    a predicted-vs-actual scatter and a residual histogram."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from tunelab import plots

    metrics = {
        f"{split}_mae": float(mean_absolute_error(actual, predicted)),
        f"{split}_rmse": float(np.sqrt(mean_squared_error(actual, predicted))),
        f"{split}_r2": float(r2_score(actual, predicted)),
    }
    data = {"actual": actual, "predicted": predicted, "target": target}
    return Evaluation(
        metrics=metrics,
        artifacts=TrialArtifacts(
            figures={
                "plots/predicted_vs_actual.png": (plots.predicted_vs_actual, data),
                "plots/residuals.png": (plots.residuals, data),
            }
        ),
        headline=metrics,
    )
