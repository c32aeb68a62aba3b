"""The classifier whose features and logits score generated images (FID, KID, IS).

No package ships Inception weights or a trained MNIST classifier offline, so a small CNN is
trained here, once per training set and seed, and cached on disk under a hash of what it was
trained on. Its penultimate layer (`FEATURE_DIM` units) gives the features, its last the logits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.files import write_atomically

FEATURE_DIM = 64
ARCHITECTURE = "conv32-conv32-pool-conv64-conv64-pool-dense128-dense64-v1"


@dataclass
class FeatureExtractor:
    """A trained classifier: `features` and `logits` of images in [0, 1], (N, H, W, C)."""

    model: Any  # inputs -> (features, logits)
    key: str
    test_accuracy: float
    params: dict[str, Any]

    def features_and_logits(self, images: np.ndarray, batch: int = 500) -> tuple[Any, Any]:
        from tunelab.backend import keras

        to_numpy = keras().ops.convert_to_numpy
        outputs = [
            self.model(images[i : i + batch], training=False) for i in range(0, len(images), batch)
        ]
        features = np.concatenate([to_numpy(f) for f, _ in outputs]).astype(np.float64)
        logits = np.concatenate([to_numpy(z) for _, z in outputs]).astype(np.float64)
        return features, logits

    def classifier(self) -> Any:
        """The classifier alone (images -> logits), for logging."""
        from tunelab.backend import keras

        return keras().Model(self.model.input, self.model.output[1], name="feature_extractor")


def extractor_key(data: Any, epochs: int, seed: int) -> str:
    """A hash of what the extractor is trained on: the training images and labels, the
    architecture, its epochs and the seed."""
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_val, data.y_val):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(f"{ARCHITECTURE}|{epochs}|{seed}".encode())
    return digest.hexdigest()[:16]


def _build(spec: Any) -> Any:
    from tunelab.backend import keras

    layers = keras().layers
    inp = keras().Input(shape=spec.input_shape)
    x = inp
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x) if x.shape[1] >= 2 else x
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(layers.Dense(128, activation="relu")(x))
    features = layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    logits = layers.Dense(spec.n_classes, name="logits")(features)
    return keras().Model(inp, [features, logits], name="feature_extractor")


def trained_extractor(data: Any, cache: Path, epochs: int, seed: int) -> FeatureExtractor:
    """The extractor for `data`'s training split: from the cache if it was trained before,
    else trained now (Adam, cross-entropy on the logits, `epochs` epochs) and cached."""
    from tunelab.backend import keras
    from tunelab.seeding import seed_everything
    from tunelab.weights import load_weights, save_weights

    key = extractor_key(data, epochs, seed)
    folder = cache / key
    weights, meta_file = folder / "weights.npz", folder / "meta.json"
    seed_everything(seed)  # before building: the initial weights are drawn from the seed
    model = _build(data.spec)
    params = {
        "architecture": ARCHITECTURE,
        "feature_dim": FEATURE_DIM,
        "epochs": epochs,
        "seed": seed,
        "n_train": len(data.y_train),
        "n_val": len(data.y_val),
    }
    if weights.exists() and meta_file.exists():
        load_weights(model, weights)
        meta = json.loads(meta_file.read_text())
        return FeatureExtractor(model, key, meta["test_accuracy"], params)
    classifier = keras().Model(model.input, model.output[1])
    classifier.compile(
        optimizer=keras().optimizers.Adam(1e-3),
        metrics=["accuracy"],
        loss=keras().losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    classifier.fit(
        data.x_train,
        data.y_train,
        batch_size=64,
        epochs=epochs,
        shuffle=True,
        validation_data=(data.x_val, data.y_val),
        verbose=0,
    )
    _, logits = FeatureExtractor(model, key, 0.0, params).features_and_logits(data.x_test)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == data.y_test))
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, weights)
    write_atomically(meta_file, json.dumps({"test_accuracy": accuracy, **params}))
    return FeatureExtractor(model, key, accuracy, params)
