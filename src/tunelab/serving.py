"""The best model of a study on a user's own data, as served: an MLflow pyfunc that takes what
the user gave `tunelab.tune` and answers in the user's terms.

`ServedModel` wraps the trained Keras network (`network.keras`, Keras' own format, beside it in
the logged model) with what the data source fitted: a DataFrame's standardisation and one-hot
codes are applied to the raw columns, and a classifier's output becomes labels (the class names
where the labels were strings, class indices otherwise); a regression gives numbers.

    >>> # mlflow.pyfunc.load_model(result.best_model_uri).predict(raw_frame) -> labels
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

NETWORK = "network"  # the artifact holding the Keras network


class ServedModel(PythonModel):
    """A Keras network behind a user's preprocessing and labels.

    Args:
        kind: "classification" or "regression".
        preprocessing: what `Encoder.describe` gave for a DataFrame's columns ({} for arrays).
        class_names: the label of each class index where the user's labels were strings,
            else None (class indices are answered).
        network: the trained network, while it is being logged (loaded from the artifact
            after that).
    """

    # `predict` takes a DataFrame, arrays or a dict of arrays, which no type hint MLflow
    # validates by can say: no validation by type hint (and no warning that there is none)
    _skip_type_hint_validation = True

    def __init__(
        self,
        kind: str,
        preprocessing: dict[str, Any],
        class_names: list[str] | None,
        network: Any = None,
    ) -> None:
        self.kind = kind
        self.preprocessing = preprocessing
        self.class_names = class_names
        self.network = network

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the network, which travels as its own artifact."""
        return {**self.__dict__, "network": None}

    def saved_artifacts(self, folder: Path) -> dict[str, str]:
        """The network saved in `folder` in Keras' own format, as the artifacts to log."""
        path = folder / f"{NETWORK}.keras"
        self.network.save(path)
        return {NETWORK: str(path)}

    def load_context(self, context: Any) -> None:
        from tunelab.backend import keras

        self.network = keras().saving.load_model(context.artifacts[NETWORK], compile=False)

    def predict(self, context, model_input, params=None):  # untyped: see above
        """Labels (or numbers) for `model_input`: rows as the user gave them to `tune`."""
        from tunelab.backend import predict_in_batches

        return self.answers(predict_in_batches(self.network, self.inputs(model_input), 1024))

    def inputs(self, model_input: Any) -> Any:
        """What the network takes: a raw DataFrame encoded as in training; arrays as given."""
        if self.preprocessing and hasattr(model_input, "columns"):
            from tunelab.data.table import Encoder

            return Encoder.described(self.preprocessing).transform(model_input)
        if hasattr(model_input, "to_numpy"):  # a frame of one tensor's columns
            return model_input.to_numpy()
        return model_input

    def answers(self, output: np.ndarray) -> np.ndarray:
        """The network's output in the user's terms: labels, or numbers for a regression."""
        if self.kind == "regression":
            return output.reshape(-1) if output.ndim > 1 and output.shape[-1] == 1 else output
        index = class_indices(output)
        if self.class_names is None:
            return index
        return np.asarray(self.class_names, dtype=object)[index]


def class_indices(output: np.ndarray) -> np.ndarray:
    """A classifier's predicted class per row: class 1 above 0.5 for one sigmoid unit, else
    the largest output."""
    if output.ndim == 1 or output.shape[-1] == 1:
        return (output.reshape(-1) > 0.5).astype("int64")
    return np.argmax(output, axis=-1)
