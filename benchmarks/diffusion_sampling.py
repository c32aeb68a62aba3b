"""What classifier guidance costs and buys, measured side by side on one denoiser.

1. Seconds to train the budget's denoiser (read from its cache entry when it was trained before).
2. Images per second, unguided and guided (w = 1), on the same denoiser and starting noise,
   with a noise-aware classifier of the model's default hyperparameters trained as a trial
   trains it. Guidance adds a classifier forward and backward pass per DDIM step: target <= 2x.
3. A trial's phases with that classifier: training, accuracies, sampling, scoring, the grid;
   the share spent sampling and scoring.
4. FID, guided-class accuracy and within-class spread at every weight of the guidance curve.

    python benchmarks/diffusion_sampling.py                       # budget=default, MNIST-5k
    python benchmarks/diffusion_sampling.py budget=smoke dataset=synthetic
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tunelab.config import compose as load_config


def timed(work):
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def main() -> None:
    from tunelab import train
    from tunelab.data import load_dataset
    from tunelab.tasks.guided_generation import within_class_spread

    cfg = load_config(["model=guided_diffusion", "quiet=true", *sys.argv[1:]])
    data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
    task = cfg.model.cls.task(cfg.model.task, data, cfg.seed, Path(cfg.workdir).resolve())
    s = cfg.model.task
    print(
        f"budget={cfg.budget} dataset={cfg.dataset.name} ({len(data.y_train)} training images)"
        f", denoiser widths {s.denoiser.widths}, {s.denoiser.epochs} epochs, "
        f"{s.sampling_steps} DDIM steps, {s.samples} samples per trial"
    )
    extras, prepared = timed(task.prepare)
    m = extras.metrics
    print(
        f"\n1. denoiser: trained in {m['denoiser_train_seconds']:.0f} s (validation MSE "
        f"{m['denoiser_val_loss']:.4f}); study preparation took {prepared:.0f} s"
    )

    hp = cfg.model.hparams_for({})
    fit, fit_seconds = timed(
        lambda: train.fit(
            cfg.model,
            hp,
            task,
            epochs=cfg.model.training.epochs,
            initial_epoch=0,
            seed=cfg.seed,
            objective=cfg.objective,
            on_epoch=lambda *_: False,
        )
    )
    model = fit.model
    n = s.samples
    unguided = task.sample(model, 0.0, n)
    guided = task.sample(model, 1.0, n)
    ratio = guided.seconds_per_image / unguided.seconds_per_image
    print(
        f"\n2. images per second over {n}: unguided {1 / unguided.seconds_per_image:.1f}, "
        f"guided {1 / guided.seconds_per_image:.1f}: guided costs {ratio:.2f}x the unguided "
        f"time (target <= 2x)"
    )

    accuracies, accuracy_seconds = timed(lambda: task._accuracies(model))
    scoring_seconds = timed(lambda: task.scorer.scores(guided.images, final=True))[1]
    grid_seconds = timed(lambda: task._grid_steps(model, 1.0))[1]
    sampling_seconds = guided.seconds_per_image * n
    phases = {
        "classifier training": fit_seconds,
        "accuracies": accuracy_seconds,
        "sampling": sampling_seconds,
        "scoring": scoring_seconds,
        "grid": grid_seconds,
    }
    total = sum(phases.values())
    print(
        f"\n3. a trial's phases ({total:.0f} s): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())
        + f"; sampling and scoring: {(sampling_seconds + scoring_seconds) / total:.0%}"
    )
    print(
        f"   classifier accuracy: clean {accuracies['clean_val_accuracy']:.3f}, "
        + ", ".join(f"t={k.split('_t')[1]} {v:.3f}" for k, v in accuracies.items() if "_t" in k)
    )

    print(
        f"\n4. guidance curve ({s.curve_samples} samples each; unguided FID "
        f"{m['unguided_fid']:.2f}, real-data floor {m['real_fid']:.2f})"
    )
    print("   w      FID     guided-class acc   within-class spread")
    for w in s.guidance_curve:
        samples = task.sample(model, w, s.curve_samples)
        metrics = samples.metrics()
        print(
            f"   {w:<5g}  {metrics['fid']:7.2f}  {metrics['guided_class_accuracy']:10.3f}"
            f"        {within_class_spread(samples):8.3f}"
        )


if __name__ == "__main__":
    main()
