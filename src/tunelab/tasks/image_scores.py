"""FID, KID and IS of images against a dataset's training split, in the features and logits of
a digit classifier trained here (`tasks.feature_extractor`): what every generative task scores.

`ImageScorer.prepare()` trains or loads the classifier, embeds the reference set (the training
split, or with `held_out=True` the test split), draws KID's reference subsets once, and scores
other real images (the test split, or the validation split) at the same N: the floor no
generator can be expected to beat. A local InceptionV3 weights file adds `fid_inception`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.logged import SharedModel, StudyExtras
from tunelab.metrics.kid import KIDReference
from tunelab.schema import ConfigError


@dataclass
class ScoringSettings:
    samples: int = 1000  # generated images scored after a trial (and real ones in the floor)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    extractor_epochs: int = 15
    # A local InceptionV3 no-top weights file: adds `fid_inception` (2,048-d pool features) to
    # the final scores and the floor. None: skipped with a notice (Keras would download them).
    inception_weights: str | None = None

    def check(self, path: str) -> None:
        if self.inception_weights is not None and not Path(self.inception_weights).is_file():
            raise ConfigError(f"{path}.inception_weights: no file at {self.inception_weights!r}")
        for key in ("samples", "kid_subsets", "kid_subset_size", "is_splits", "extractor_epochs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{path}.{key}: must be at least 1, got {getattr(self, key)}")


@dataclass
class Scores:
    fid: float
    kid: float
    kid_std: float
    inception_score: float
    inception_score_std: float
    n: int
    reasons: list[str]
    logits: np.ndarray  # the classifier's, of the images scored
    features: np.ndarray

    def metrics(self) -> dict[str, float]:
        return {
            "fid": self.fid,
            "kid": self.kid,
            "kid_std": self.kid_std,
            "inception_score": self.inception_score,
            "inception_score_std": self.inception_score_std,
            "metric_samples": self.n,
        }


class ImageScorer:
    def __init__(
        self, settings: ScoringSettings, data: Any, seed: int, workdir: Path, held_out: bool = False
    ) -> None:
        self.settings = settings
        self.references, self.floor = (
            (data.x_test, data.x_val) if held_out else (data.x_train, data.x_test)
        )
        self.data = data
        self.seed = seed
        self.workdir = workdir
        self.extractor: Any = None
        self.reference: np.ndarray | None = None  # features of the reference images
        self.kid_references: dict[bool, Any] = {}
        self.inception: Any = None  # InceptionFeatures, with a local weights file
        self.inception_reference: np.ndarray | None = None

    def prepare(self) -> StudyExtras:
        """Train (or load) the feature extractor, embed the reference set and score held-out
        real images against it (`real_*` metrics); the extractor is a shared model."""
        from tunelab.tasks.feature_extractor import trained_extractor

        s = self.settings
        self.extractor = trained_extractor(
            self.data, self.workdir / "feature_extractors", s.extractor_epochs, self.seed
        )
        reference, _ = self.extractor.features_and_logits(self.references)
        self.reference = reference
        self.kid_references = {  # the final scores' subsets, and the cheaper ones in training
            final: KIDReference(
                reference,
                s.kid_subsets if final else max(1, s.kid_subsets // 10),
                s.kid_subset_size,
                self.seed,
            )
            for final in (True, False)
        }
        real = self.floor[: s.samples]
        metrics = {f"real_{k}": v for k, v in self.scores(real, final=True).metrics().items()}
        notices = []
        if s.inception_weights is None:
            notices.append(
                "fid_inception skipped: no local InceptionV3 weights file "
                "(model.task.inception_weights); FID uses the classifier trained here"
            )
        else:
            from tunelab.tasks.inception import InceptionFeatures

            self.inception = InceptionFeatures(s.inception_weights)
            self.inception_reference = self.inception.features(self.references)
            metrics["real_fid_inception"] = self.fid_inception(real).value
        metrics["feature_extractor_test_accuracy"] = self.extractor.test_accuracy
        shared = SharedModel(
            kind="feature_extractor",
            key=self.extractor.key,
            params=self.extractor.params,
            metrics={"test_accuracy": self.extractor.test_accuracy},
            model=self.extractor.classifier(),
        )
        return StudyExtras(metrics=metrics, shared=[shared], notices=notices)

    def fid_inception(self, images: np.ndarray) -> Any:
        from tunelab.metrics import fid

        assert self.inception_reference is not None, "prepare() found Inception weights"
        return fid(self.inception_reference, self.inception.features(images))

    def scores(self, images: np.ndarray, final: bool) -> Scores:
        """FID, KID and IS of images in [0, 1] against the reference set (`final`: with all
        `kid_subsets`, else a tenth of them, as while training)."""
        from tunelab.metrics import fid, inception_score

        assert self.reference is not None, "prepare() comes first"
        features, logits = self.extractor.features_and_logits(images)
        f = fid(self.reference, features)
        k = self.kid_references[final].score(features)
        i = inception_score(logits, splits=min(self.settings.is_splits, len(images)))
        reasons = [score.reason for score in (f, k, i) if score.reason]
        spread = [math.nan if score.std is None else score.std for score in (k, i)]
        return Scores(
            f.value, k.value, spread[0], i.value, spread[1], len(images), reasons, logits, features
        )

    def final_extras(self, images: np.ndarray, scores: Scores, metrics: dict[str, float]) -> None:
        """Add the feature size, each class's share of `images` (as the classifier sees them:
        mode collapse shows there) and, with Inception weights, `final_fid_inception`."""
        assert self.reference is not None, "prepare() comes first"
        metrics["feature_dim"] = float(self.reference.shape[1])
        counts = self.class_counts(scores)
        shares = counts / counts.sum()
        for name, share in zip(self.data.class_names, shares, strict=True):
            metrics[f"class_share.{name}"] = float(share)
        metrics["min_class_share"] = float(shares.min())
        if self.inception is not None:
            inception = self.fid_inception(images)
            metrics["final_fid_inception"] = inception.value
            if inception.reason:
                scores.reasons.append(f"fid_inception: {inception.reason}")

    def class_counts(self, scores: Scores) -> np.ndarray:
        classes = np.argmax(scores.logits, axis=1)
        return np.bincount(classes, minlength=len(self.data.class_names))
