"""The generative task: the DCGAN, its scoring by a classifier trained here, and what a
generative study leaves in MLflow, read back from a real server."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pytest
from conftest import assert_same_weights, load_config, run_study
from mlflow.tracking import MlflowClient

from tunelab import train, weights
from tunelab.data import load_dataset
from tunelab.data.mnist import MNIST, MNISTSettings
from tunelab.models.dcgan import DCGAN, DCGANHParams
from tunelab.objective import Objective
from tunelab.tasks.generation import PENALTY, Generation, GenerationSettings, image_grid

SMALL = DCGANHParams(width=0.125, latent_dim=16, batch_size=64)
FID = Objective("fid", "min")


@pytest.fixture(scope="module")
def mnist():
    return load_dataset(MNIST, MNISTSettings(n_train=300, n_val=100, n_test=100), seed=0)


@pytest.fixture(scope="module")
def task(mnist, tmp_path_factory):
    settings = GenerationSettings(
        samples=100, samples_during_training=80, kid_subsets=5, extractor_epochs=2
    )
    task = Generation(settings, mnist, 0, tmp_path_factory.mktemp("work"))
    task.prepare()
    return task


def test_the_reference_architecture_maps_latents_to_digits_and_digits_to_a_logit(mnist):
    gan = DCGAN.build(DCGANHParams(), mnist.spec)
    assert gan.generator.output.shape[1:] == (28, 28, 1)
    assert gan.generator.get_layer(index=1).units == 7 * 7 * 256  # Dense(7·7·256, no bias)
    assert not gan.generator.get_layer(index=1).use_bias
    assert [layer.filters for layer in gan.generator.layers if hasattr(layer, "filters")] == [
        128,
        64,
        1,
    ]
    assert [layer.filters for layer in gan.discriminator.layers if hasattr(layer, "filters")] == [
        64,
        128,
    ]
    assert gan.discriminator.output.shape[1:] == (1,)
    half = DCGAN.build(DCGANHParams(width=0.5, batch_normalization=False), mnist.spec)
    assert not any("batch_norm" in layer.name for layer in half.generator.layers)
    assert half.generator.get_layer(index=1).units == 7 * 7 * 128


@pytest.mark.slow
def test_one_gan_epoch_logs_both_losses_and_the_discriminator_accuracies(task):
    cfg = load_config(["model=dcgan", "budget=smoke"])
    seen = []
    fit = train.fit(
        cfg.model,
        SMALL,
        task,
        epochs=2,
        initial_epoch=0,
        seed=3,
        objective=FID,
        on_epoch=lambda epoch, metrics, images: seen.append((metrics, images)) or False,
    )
    metrics, images = seen[-1]
    assert {
        "g_loss",
        "d_loss",
        "d_acc_real",
        "d_acc_fake",
        "epoch_time",
        "fid",
        "kid",
        "inception_score",
    } <= set(metrics)
    assert 0 <= metrics["d_acc_real"] <= 1 and 0 <= metrics["d_acc_fake"] <= 1
    assert images["generated"].shape == (280, 280)  # a 10 x 10 grid of 28 x 28 digits
    snapshot = weights.weight_snapshot(fit.model)  # by position: the generator, then the critic
    named = [layer.name for layer in fit.model.layers if layer.trainable_weights]
    assert list(snapshot) == ["layer_0", "layer_1"] and named == ["generator", "discriminator"]
    after = fit.model.generator.get_weights()
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(
            after, DCGAN.build(SMALL, task.data.spec).generator.get_weights(), strict=True
        )
    )


@pytest.mark.slow
def test_a_warm_start_restores_both_networks(task, tmp_path):
    cfg = load_config(["model=dcgan", "budget=smoke"])
    fit = train.fit(
        cfg.model,
        SMALL,
        task,
        epochs=1,
        initial_epoch=0,
        seed=1,
        objective=FID,
        on_epoch=lambda *a: False,
    )
    weights.save_weights(fit.model, tmp_path / "w.npz")
    warm = DCGAN.build(SMALL, task.data.spec)
    weights.load_weights(warm, tmp_path / "w.npz")
    z = task.latents(8, SMALL.latent_dim)
    for name in ("generator", "discriminator"):
        assert_same_weights(getattr(warm, name), getattr(fit.model, name))
    assert np.array_equal(task.generate(warm, 8), task.generate(fit.model, 8))
    generator, example = task.servable(DCGAN, SMALL, tmp_path / "w.npz")
    served = np.asarray(generator(z))
    assert example.shape == (5, SMALL.latent_dim)
    np.testing.assert_allclose(served, task.generate(fit.model, 8), atol=1e-6)  # [0, 1]


def test_a_collapsed_generator_gets_a_finite_penalty_and_a_tag(task):
    gan = DCGAN.build(SMALL, task.data.spec)
    gan.generator.set_weights([np.full_like(w, np.nan) for w in gan.generator.get_weights()])
    evaluation = task.evaluate(gan, SMALL)
    assert math.isnan(evaluation.metrics["final_fid"])
    assert evaluation.tags["tunelab.collapsed"] == "true"
    history = [{"epoch": 0}, {"epoch": 1}]
    assert task.score(history, evaluation, FID) == (PENALTY["min"], 1)
    assert task.score(history, evaluation, Objective("inception_score", "max"))[0] == 0.0


def test_the_real_data_floor_beats_an_untrained_generator(task):
    extras = task.prepare()  # the extractor comes from the cache now
    untrained = task.evaluate(DCGAN.build(SMALL, task.data.spec), SMALL)
    assert extras.metrics["real_fid"] < untrained.metrics["final_fid"]
    assert extras.metrics["real_metric_samples"] == 100
    (shared,) = extras.shared
    assert (shared.kind, shared.key) == ("feature_extractor", task.scorer.extractor.key)
    assert extras.notices == [
        "fid_inception skipped: no local InceptionV3 weights file "
        "(model.task.inception_weights); FID uses the classifier trained "
        "here"
    ]
    assert "final_fid_inception" not in untrained.metrics  # skipped, never faked
    shares = [untrained.metrics[f"class_share.{d}"] for d in range(10)]
    assert sum(shares) == pytest.approx(1.0) and untrained.metrics["min_class_share"] == min(shares)


def test_image_grid_tiles_row_by_row():
    images = np.zeros((100, 2, 3, 1))
    images[12] = 1.0  # row 1, column 2
    grid = image_grid(images)
    assert grid.shape == (20, 30)
    assert grid[2:4, 6:9].min() == 1.0 and grid.sum() == 6


GAN_SMOKE = ["model=dcgan", "budget=smoke", "model.task.samples=100"]
GAN_STRATEGIES = {
    "hyperband": [],
    "tpe": ["strategy.max_trials=2"],
    "full_factorial": ["model.tune=[batch_normalization,dropout_rate]"],
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(GAN_STRATEGIES))
def test_a_smoke_gan_study_per_strategy_family(strategy, tracking_uri, tmp_path):
    name = f"gan-{strategy}"
    summary = run_study(
        [
            *GAN_SMOKE,
            f"strategy={strategy}",
            *GAN_STRATEGIES[strategy],
            "tracking.register=true",
            f"tracking.model_name={name}",
            f"study_name={name}",
        ],
        tmp_path,
    )
    client = MlflowClient(tracking_uri)
    study = client.get_run(summary.run_id)
    assert study.data.tags["tunelab.objective"] == "fid (min)"
    assert {"real_fid", "real_kid", "real_inception_score", "best_fid"} <= set(study.data.metrics)
    runs = client.search_runs(
        [study.info.experiment_id], f"tags.`mlflow.parentRunId` = '{summary.run_id}'"
    )
    assert len(runs) == len(summary.trials) > 1
    extractor_runs = {r.data.tags["tunelab.feature_extractor.run_id"] for r in runs}
    (extractor_id,) = extractor_runs
    assert client.get_run(extractor_id).data.tags["tunelab.kind"] == "feature_extractor"
    for run in runs:
        assert run.info.status == "FINISHED", run.data.tags.get("tunelab.failure_reason")
        assert run.data.metrics["best_fid"] == run.data.metrics["final_fid"]
        rid = run.info.run_id
        start = int(run.data.params["initial_epoch"])
        trained = int(run.data.metrics["epochs_trained"])
        for metric in ("g_loss", "d_loss", "fid"):
            steps = sorted(m.step for m in client.get_metric_history(rid, metric))
            assert steps == list(range(start, start + trained)), metric
        images = {item.path for item in client.list_artifacts(rid, "images")}
        stepped = {p.split("+step+")[1].split("+")[0] for p in images if p.endswith(".png")}
        assert stepped == {str(s) for s in range(start, start + trained)}
        assert {"plots/class_counts.png", "plots/generated.png", "plots/learning_curves.png"} <= {
            item.path for item in client.list_artifacts(rid, "plots")
        }
    if strategy == "hyperband":
        assert any(int(r.data.params["initial_epoch"]) > 0 for r in runs)  # continued trials
    best = min(summary.trials, key=lambda t: t.score)
    assert summary.best_score == best.score
    generator = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    images = np.asarray(
        generator.predict(np.random.default_rng(0).normal(size=(6, 100)).astype(np.float32))
    )
    assert images.shape == (6, 28, 28, 1) and images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.slow
def test_the_gan_shootout_sweeps_then_compares_the_studies_on_fid(mlflow_server, tmp_path):
    from conftest import tunelab_cli

    out = tunelab_cli(
        [
            "-m",
            "experiment=gan_shootout",
            "strategy=random",
            "seed=1,2",
            "budget=smoke",
            "model.task.samples=100",
            "quiet=true",
            f"workdir={tmp_path}",
            "tracking.experiment=gan-multirun",
        ],
        tmp_path,
        env={"MLFLOW_TRACKING_URI": mlflow_server},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("gan-multirun")
    studies = client.search_runs([experiment.experiment_id], "tags.`tunelab.kind` = 'study'")
    assert sorted(s.data.tags["tunelab.seed"] for s in studies) == ["1", "2"]
    assert all(s.data.tags["tunelab.model"] == "dcgan" for s in studies)
    comparisons = client.search_runs(
        [experiment.experiment_id], "tags.`tunelab.kind` = 'comparison'"
    )
    by_response = {c.data.params["response"]: c for c in comparisons}
    assert set(by_response) == {"best_fid", "final_inception_score"}
    table = mlflow.artifacts.load_text(
        f"runs:/{by_response['final_inception_score'].info.run_id}/optimisers/studies.csv"
    )
    best_is = {}  # each study's best IS over its trials, read from the trials themselves
    for study in studies:
        trials = client.search_runs(
            [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{study.info.run_id}'"
        )
        best_is[study.data.tags["tunelab.study_id"]] = max(
            t.data.metrics["final_inception_score"] for t in trials
        )
    for line in table.strip().splitlines()[1:]:
        study_id = next(k for k in best_is if k in line)
        assert f",{best_is[study_id]}," in line or f",{best_is[study_id]:.6g}," in line
    extractors = client.search_runs(
        [experiment.experiment_id], "tags.`tunelab.kind` = 'feature_extractor'"
    )
    keys = {s.data.tags["tunelab.feature_extractor.key"] for s in studies}
    assert {e.data.tags["tunelab.key"] for e in extractors} == keys  # a split each, logged once
    assert len(extractors) == len(keys) == 2  # seeds 1 and 2 split the digits differently


def test_cross_judgement_counts_what_each_discriminator_calls_real():
    from tunelab.analysis.discriminators import judge

    logits = {
        "sharp": {"a": np.array([-2.0, -1.0, -3.0, 0.5]), "real": np.array([1.0, 2.0, 3.0, -1.0])},
        "fooled": {"a": np.array([1.0, 2.0, 3.0, 4.0]), "real": np.array([1.0, 2.0, 3.0, 4.0])},
    }
    result = judge(logits)
    assert result.called_real.loc["sharp"].to_dict() == {"a": 0.25, "real": 0.75}
    assert result.called_real.loc["fooled"].to_dict() == {"a": 1.0, "real": 1.0}
    assert result.auc.loc["sharp", "a"] == pytest.approx(14.5 / 16)  # real > generated; a tie: ½
    assert result.auc.loc["fooled", "a"] == pytest.approx(0.5)  # ties all round
    sharp = result.confusion.set_index("discriminator").loc["sharp"]
    assert (
        sharp["real_called_real"],
        sharp["real_called_generated"],
        sharp["generated_called_real"],
        sharp["generated_called_generated"],
    ) == (3, 1, 1, 3)


@pytest.mark.slow
def test_compare_discriminators_judges_each_strategys_best_generator(tracking_uri, tmp_path):
    from tunelab.compare.cli import main

    experiment = "gan-judges"
    for strategy in ("random", "tpe"):
        run_study(
            [
                *GAN_SMOKE,
                f"strategy={strategy}",
                "strategy.max_trials=2" if strategy == "tpe" else "strategy.max_trials=2",
                f"tracking.experiment={experiment}",
                f"study_name=judges-{strategy}",
            ],
            tmp_path / strategy,
        )
    assert (
        main(
            [
                "discriminators",
                "--experiment",
                experiment,
                "--images",
                "200",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    (run,) = client.search_runs([exp.experiment_id], "tags.`tunelab.kind` = 'comparison'")
    assert run.data.params["strategies"] == "random,tpe"
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/discriminators/called_real.csv")
    header, *rows = text.strip().splitlines()
    assert header == "discriminator,random,tpe,real" and len(rows) == 2
    assert all(0 <= float(v) <= 1 for row in rows for v in row.split(",")[1:])
    auc = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/discriminators/auc.csv")
    assert auc.splitlines()[0] == "discriminator,random,tpe"
    confusion = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/discriminators/confusion.csv")
    assert len(confusion.strip().splitlines()) == 1 + 4  # a 2x2 table per pair
    assert sum(int(v) for v in confusion.splitlines()[1].split(",")[3:5]) == 200  # real images


def test_an_inception_weights_path_must_name_a_file():
    from tunelab.schema import ConfigError

    with pytest.raises(ConfigError, match=r"model.task.inception_weights: no file at '/nope.h5'"):
        load_config(["model=dcgan", "model.task.inception_weights=/nope.h5"])


def test_inception_inputs_are_what_inception_v3_expects():
    from tunelab.tasks.inception import inception_inputs

    images = np.zeros((2, 28, 28, 1), np.float32)
    images[1] = 1.0
    x = np.asarray(inception_inputs(images))
    assert x.shape == (2, 299, 299, 3)
    assert x[0].max() == -1.0 and x[1].min() == 1.0  # [0, 1] -> [-1, 1], as x/127.5 - 1


@pytest.mark.slow
def test_fid_inception_runs_from_a_local_weights_file(mnist, tmp_path):
    """With untrained InceptionV3 weights saved locally (no download): the features have 2,048
    dimensions, so 10 images give NaN with the reason, for the floor and for a trial."""
    from dataclasses import replace

    from tunelab.backend import keras

    weights = tmp_path / "inception_notop.weights.h5"
    keras().applications.InceptionV3(
        include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3)
    ).save_weights(weights)
    small = replace(
        mnist,
        x_train=mnist.x_train[:10],
        y_train=mnist.y_train[:10],
        x_test=mnist.x_test[:10],
        y_test=mnist.y_test[:10],
    )
    settings = GenerationSettings(
        samples=10,
        samples_during_training=10,
        kid_subsets=2,
        extractor_epochs=1,
        inception_weights=str(weights),
    )
    task = Generation(settings, small, 0, tmp_path)
    extras = task.prepare()
    assert not extras.notices and math.isnan(extras.metrics["real_fid_inception"])
    assert task.scorer.inception_reference.shape == (10, 2048)
    evaluation = task.evaluate(DCGAN.build(SMALL, small.spec), SMALL)
    assert math.isnan(evaluation.metrics["final_fid_inception"])
    assert (
        "fid_inception: FID needs more samples than feature dimensions (N = 10, d = 2048)"
        in evaluation.tags["tunelab.metric_notes"]
    )
