"""Classifier-guided diffusion: the noise schedule, the DDIM sampler with and without guidance,
the cached denoiser, and a smoke guided study read back from a real `mlflow server`."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import assert_same_weights, load_config, run_study
from mlflow.tracking import MlflowClient

from tunelab import seeding, train
from tunelab.data import load_dataset
from tunelab.data.digits import Digits, DigitsSettings
from tunelab.diffusion.denoiser import DenoiserSettings, denoiser_key, trained_denoiser
from tunelab.diffusion.schedule import NoiseSchedule
from tunelab.objective import Objective
from tunelab.schema import ConfigError

SMOKE = [
    "model=guided_diffusion",
    "dataset=synthetic",
    "budget=smoke",
    "strategy=random",
    "strategy.max_trials=2",
]


@pytest.fixture(scope="module")
def digits():
    return load_dataset(Digits, DigitsSettings(n_val=200, n_test=300), seed=0)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_forward_noising_has_the_closed_form_mean_and_variance(kind):
    schedule = NoiseSchedule(kind, 1000)
    alpha_bar = schedule.alpha_bar
    assert np.all(np.diff(alpha_bar) < 0) and 0 < alpha_bar[-1] and alpha_bar[0] < 1
    rng = np.random.default_rng(0)
    x0 = np.array([-0.8, 0.0, 0.5, 1.0], np.float64)
    n = 200_000
    for t in (0, 100, 500, 999):
        noise = rng.standard_normal((n, 4))
        x_t = schedule.noised(np.broadcast_to(x0, (n, 4)).copy(), np.full(n, t), noise)
        a = alpha_bar[t]
        se = np.sqrt((1 - a) / n)  # the standard error of each mean
        np.testing.assert_allclose(x_t.mean(axis=0), np.sqrt(a) * x0, atol=5 * se + 1e-12)
        np.testing.assert_allclose(x_t.var(axis=0), np.full(4, 1 - a), rtol=0.02, atol=1e-12)


def test_ddim_visits_evenly_spaced_timesteps_from_the_last():
    steps = NoiseSchedule("cosine", 1000).sampling_timesteps(20)
    assert len(steps) == 20 and steps[0] == 999 and steps[-1] == 0
    assert np.all(np.diff(steps) < 0)
    with pytest.raises(ConfigError, match="sampling steps: must be 1..1000"):
        NoiseSchedule("cosine", 1000).sampling_timesteps(0)


@pytest.fixture(scope="module")
def untrained(digits):
    """An untrained denoiser and classifier: enough to check the sampler's plumbing."""
    from tunelab.diffusion.unet import unet
    from tunelab.models.guided_diffusion import GuidedDiffusion, GuidedDiffusionHParams

    seeding.seed_everything(0)
    denoiser = unet(digits.spec.input_shape, [8, 16], 1000)
    classifier = GuidedDiffusion.build(
        GuidedDiffusionHParams(blocks=1, filters=8, batch_norm=False), digits.spec
    )
    return denoiser, classifier


def test_with_weight_zero_the_guided_sampler_is_the_unguided_one_bit_for_bit(untrained, digits):
    from tunelab.diffusion.sampler import DDIMSampler

    denoiser, classifier = untrained
    schedule, shape = NoiseSchedule(), digits.spec.input_shape
    classes = np.arange(30) % 10
    plain = DDIMSampler(denoiser, schedule, 10).sample(30, shape, seed=5)
    guided = DDIMSampler(denoiser, schedule, 10, classifier)
    assert np.array_equal(guided.sample(30, shape, seed=5, classes=classes, weight=0.0), plain)
    assert not np.allclose(guided.sample(30, shape, seed=5, classes=classes, weight=4.0), plain)


def test_ddim_with_a_fixed_seed_is_deterministic_whatever_the_batch(untrained, digits):
    from tunelab.diffusion.sampler import DDIMSampler

    denoiser, classifier = untrained
    sampler = DDIMSampler(denoiser, NoiseSchedule(), 8, classifier)
    shape, classes = digits.spec.input_shape, np.arange(24) % 10
    first = sampler.sample(24, shape, seed=7, classes=classes, weight=1.0)
    assert np.array_equal(sampler.sample(24, shape, seed=7, classes=classes, weight=1.0), first)
    batched = sampler.sample(24, shape, seed=7, classes=classes, weight=1.0, batch=10)
    np.testing.assert_allclose(batched, first, atol=1e-4)  # the same noise; float round-off
    assert not np.allclose(sampler.sample(24, shape, seed=8, classes=classes, weight=1.0), first)
    assert first.min() >= -1.0 - 1e-5 and first.max() <= 1.0 + 1e-5
    trajectory = sampler.trajectory(24, shape, 7, classes, 1.0, {1, 8})
    assert [k for k, _ in trajectory] == [1, 8]
    np.testing.assert_allclose(trajectory[-1][1], first, atol=1e-6)  # the same last state


@pytest.mark.slow
def test_a_trained_denoiser_is_cached_and_reloaded_by_its_key(digits, tmp_path, capsys):
    settings = DenoiserSettings(widths=[8, 16], epochs=1, batch_size=128)
    first = trained_denoiser(digits, settings, tmp_path, seed=0)
    assert "training the denoiser" in capsys.readouterr().err
    again = trained_denoiser(digits, settings, tmp_path, seed=0)
    assert capsys.readouterr().err == ""  # loaded, not trained
    assert again.key == first.key and again.metrics == first.metrics
    assert_same_weights(first.model, again.model)
    draw_weights()
    fresh = trained_denoiser(digits, settings, tmp_path / "fresh", seed=0, quiet=True)
    assert_same_weights(first.model, fresh.model)  # trained again alike, from the seed
    other = DenoiserSettings(widths=[8, 16], epochs=2, batch_size=128)
    assert denoiser_key(digits, other, 0) != first.key != denoiser_key(digits, settings, 1)


@pytest.mark.slow
def test_the_fid_extractor_trains_alike_whatever_ran_before(digits, tmp_path):
    """Its initial weights come from the seed, not from the random state earlier work left
    (two fresh extractors once put one study's unguided FID at 149 and at 294)."""
    from tunelab.tasks.feature_extractor import trained_extractor

    first = trained_extractor(digits, tmp_path / "a", epochs=1, seed=0).model
    draw_weights()
    again = trained_extractor(digits, tmp_path / "b", epochs=1, seed=0).model
    assert_same_weights(first, again)


def draw_weights() -> None:
    """Build a layer, as a study may have before: it draws from the random state."""
    from tunelab.backend import keras

    keras().layers.Dense(4).build((None, 4))


@pytest.mark.slow
def test_guidance_raises_the_share_of_samples_of_the_requested_class(digits, tmp_path):
    """A tiny trained setup (8x8 digits): the domain classifier finds the requested class more
    often in guided samples than in unguided ones."""
    from tunelab.tasks.guided_generation import GuidedGeneration, GuidedGenerationSettings

    cfg = load_config(
        [
            "model=guided_diffusion",
            "dataset=digits",
            "budget=smoke",
            "model.hparams.filters=16",
            "model.hparams.dense_units=64",
        ]
    )
    settings = GuidedGenerationSettings(
        denoiser=DenoiserSettings(widths=[16, 32], epochs=15, batch_size=32, lr=1e-3, ema=0.99),
        sampling_steps=10,
        samples=200,
        kid_subsets=5,
        extractor_epochs=10,
        guidance_curve=[],
    )
    task = GuidedGeneration(settings, digits, 0, tmp_path)
    extras = task.prepare()
    hp = cfg.model.hparams_for({})
    fit = train.fit(
        cfg.model,
        hp,
        task,
        epochs=20,
        initial_epoch=0,
        seed=0,
        objective=Objective("fid", "min"),
        on_epoch=lambda *_: False,
    )
    unguided = extras.metrics["unguided_guided_class_accuracy"]
    guided = task.sample(fit.model, 4.0, 200).metrics()["guided_class_accuracy"]
    pooled = (guided + unguided) / 2
    standard_error = np.sqrt(2 * pooled * (1 - pooled) / 200)  # of the difference of two shares
    assert guided - unguided > 3 * standard_error, (guided, unguided)


def test_the_model_family_checks_its_settings_before_tensorflow():
    cfg = load_config(["model=guided_diffusion"])
    assert cfg.objective == Objective("fid", "min")
    assert cfg.model.hparams_for({}).timesteps == cfg.model.task.denoiser.steps == 1000
    assert (
        load_config(
            ["model=guided_diffusion", "objective.name=guided_class_accuracy"]
        ).objective.direction
        == "max"
    )
    with pytest.raises(
        ConfigError,
        match="objective.name: 'val_loss' is not an objective of "
        "model guided_diffusion; valid: fid, guided_class_accuracy",
    ):
        load_config(["model=guided_diffusion", "objective.name=val_loss"])
    with pytest.raises(ConfigError, match=r"model.task.sampling_steps: must be 1..1000, got 0"):
        load_config(["model=guided_diffusion", "model.task.sampling_steps=0"])
    with pytest.raises(
        ConfigError,
        match="model.task.denoiser.schedule: 'cubic' is not valid; valid choices: linear, cosine",
    ):
        load_config(["model=guided_diffusion", "model.task.denoiser.schedule=cubic"])
    with pytest.raises(ConfigError, match="guidance_weight: must be >= 0, got -1.0"):
        load_config(["model=guided_diffusion", "model.hparams.guidance_weight=-1"])


@pytest.mark.slow
def test_a_smoke_guided_study_logs_fid_guided_accuracy_grids_and_the_denoiser(
    tracking_uri, tmp_path
):
    summary = run_study([*SMOKE, "study_name=guided-smoke"], tmp_path)
    client = MlflowClient(tracking_uri)
    study = client.get_run(summary.run_id)
    assert study.data.tags["tunelab.objective"] == "fid (min)"
    assert {
        "unguided_fid",
        "unguided_guided_class_accuracy",
        "real_fid",
        "best_fid",
        "denoiser_val_loss",
    } <= set(study.data.metrics)
    denoiser = client.get_run(study.data.tags["tunelab.denoiser.run_id"])
    assert denoiser.data.tags["tunelab.kind"] == "denoiser"
    assert denoiser.data.params["widths"] == "[8, 16]"
    runs = client.search_runs(
        [study.info.experiment_id], f"tags.`mlflow.parentRunId` = '{summary.run_id}'"
    )
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FINISHED", run.data.tags.get("tunelab.failure_reason")
        assert run.data.tags["tunelab.denoiser.run_id"] == denoiser.info.run_id
        metrics = run.data.metrics
        assert metrics["best_fid"] == metrics["fid"] > 0
        assert 0 <= metrics["guided_class_accuracy"] <= 1
        assert metrics["sampling_seconds_per_image"] > 0
        assert {"clean_val_accuracy", "val_accuracy_t500", "kid", "inception_score"} <= set(metrics)
        images = {item.path for item in client.list_artifacts(run.info.run_id, "images")}
        steps = {p.split("+step+")[1].split("+")[0] for p in images if "guided_samples" in p}
        assert steps == {"1", "3", "6", "8", "10"}  # 5 snapshots of 10 DDIM steps
        assert float(run.data.params["guidance_weight"]) >= 0
    classifier = mlflow.pyfunc.load_model(study.data.tags["tunelab.model_uri.model"])
    logits = classifier.predict(
        {"x_t": np.zeros((3, 32, 32, 3), np.float32), "t": np.full((3, 1), 500, np.int32)}
    )
    assert np.asarray(logits).shape == (3, 10)
    curve = client.download_artifacts(summary.run_id, "tables/guidance_curve.csv", str(tmp_path))
    lines = Path(curve).read_text().splitlines()
    assert lines[0].startswith("guidance_weight,fid,") and len(lines) == 1 + 3  # w 0, 4, 16
    assert "plots/guidance_curve.png" in {
        a.path for a in client.list_artifacts(summary.run_id, "plots")
    }
