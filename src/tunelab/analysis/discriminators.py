"""Cross-discriminator evaluation (the GAN study's §3.2.5): every strategy's best discriminator
judges every strategy's best generator's images and real ones.

Pure NumPy / scikit-learn on the discriminators' logits (high = "real", the DCGAN's convention):
a logit above 0 calls an image real.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

REAL = "real"


@dataclass
class CrossJudgement:
    called_real: pd.DataFrame  # discriminator x (generators..., real): share of images called real
    auc: pd.DataFrame  # discriminator x generator: AUC of telling real from that generator's
    confusion: pd.DataFrame  # one 2x2 table per (discriminator, generator), as long rows


def judge(logits: dict[str, dict[str, np.ndarray]]) -> CrossJudgement:
    """`logits[discriminator][images]`: each discriminator's logits of each generator's images
    and of the real images (key `real`)."""
    called: dict[str, dict[str, float]] = {}
    aucs: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    for disc, by_images in logits.items():
        real = np.ravel(by_images[REAL])
        called[disc] = {name: float(np.mean(np.ravel(v) > 0)) for name, v in by_images.items()}
        aucs[disc] = {}
        for gen, values in by_images.items():
            if gen == REAL:
                continue
            fake = np.ravel(values)
            labels = np.r_[np.ones(len(real)), np.zeros(len(fake))]
            aucs[disc][gen] = float(roc_auc_score(labels, np.r_[real, fake]))
            rows.append(
                {
                    "discriminator": disc,
                    "generator": gen,
                    "real_called_real": int(np.sum(real > 0)),
                    "real_called_generated": int(np.sum(real <= 0)),
                    "generated_called_real": int(np.sum(fake > 0)),
                    "generated_called_generated": int(np.sum(fake <= 0)),
                }
            )
    called_real = pd.DataFrame(called).T
    columns = [c for c in called_real.columns if c != REAL] + [REAL]
    return CrossJudgement(
        called_real=called_real[columns].rename_axis("discriminator"),
        auc=pd.DataFrame(aucs).T.rename_axis("discriminator"),
        confusion=pd.DataFrame(rows),
    )
