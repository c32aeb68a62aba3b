"""Models, one trial's training loop, evaluation and the diagnostics logged per trial."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from conftest import assert_same_weights, load_config

from tunelab import plots, train, weights
from tunelab.data import load_dataset
from tunelab.data.digits import Digits, DigitsSettings
from tunelab.models.cnn import CNN, CNNHParams
from tunelab.models.mlp import MLP, MLPHParams
from tunelab.objective import Objective
from tunelab.tasks.base import NoSettings
from tunelab.tasks.classification import Classification, predict_classes


@pytest.fixture(scope="module")
def digits():
    return load_dataset(Digits, DigitsSettings(n_train=400, n_val=100, n_test=100), seed=0)


@pytest.fixture(scope="module")
def task(digits, tmp_path_factory):
    return Classification(NoSettings(), digits, 0, tmp_path_factory.mktemp("work"))


ACCURACY = Objective("val_accuracy", "max")


def test_mlp_widths_and_no_silent_default_penalty(digits):
    model = MLP.build(MLPHParams(depth=3, units=32, units_2=16), digits.spec)
    dense = [layer for layer in model.layers if layer.name.startswith("dense_")]
    assert [layer.units for layer in dense] == [32, 16, 32]
    assert all(layer.kernel_regularizer is None for layer in dense)  # l1 = l2 = 0: none at all
    model = MLP.build(MLPHParams(depth=1, l2=1e-3), digits.spec)
    assert float(model.get_layer("dense_1").kernel_regularizer.l2) == pytest.approx(1e-3)


def test_bad_initialiser_starts_far_from_zero(digits):
    model = MLP.build(MLPHParams(depth=1, initializer="random_normal_mean10"), digits.spec)
    kernel = model.get_layer("dense_1").kernel.numpy()
    assert kernel.mean() == pytest.approx(10.0, abs=0.2)


def test_cnn_resizes_inside_the_model_and_augments_outside_it(digits, tmp_path):
    from dataclasses import replace

    from tunelab.backend import keras
    from tunelab.data.base import Augmentation

    spec = replace(digits.spec, resize=16)
    model = CNN.build(CNNHParams(blocks=2, filters=4, augment=True, dense_units=8), spec)
    names = [type(layer).__name__ for layer in model.layers]
    assert "Resizing" in names and not any(n.startswith("Random") for n in names)
    assert model.get_layer("conv_1").output.shape[1:3] == (16, 16)
    factor = CNN.build(CNNHParams(blocks=1, filters=4, dense_units=8, resolution=24), spec)
    assert [type(layer).__name__ for layer in factor.layers].count("Resizing") == 1
    assert factor.get_layer("conv_1").output.shape[1:3] == (24, 24)  # the model's resolution wins
    assert model.output.shape[-1] == 10
    model.save(tmp_path / "m.keras")  # what MLflow logs must load again
    assert keras().models.load_model(tmp_path / "m.keras").output.shape[-1] == 10
    cifar_like = Augmentation(rotation=15, shift=0.1, shear=0.2, zoom=0.2, flip=True).transform()
    assert [type(layer).__name__ for layer in cifar_like.layers] == [
        "RandomFlip",
        "RandomRotation",
        "RandomTranslation",
        "RandomShear",
        "RandomZoom",
    ]
    assert digits.spec.augmentation.transform() is None  # nothing to transform


@pytest.mark.parametrize(
    ("n_train", "batch_size", "set_to", "momentum"),
    [
        (3660, 64, None, 0.9),  # 58 steps per epoch: 1 - 6/58 is below the floor 0.9
        (40000, 64, None, 0.99),  # 625 steps: Keras' default
        (12000, 64, None, 1 - 6 / 188),  # in between: a sixth of an epoch
        (3660, 64, 0.99, 0.99),  # as set
        (3660, 0, None, 0.9),  # full batch: one step per epoch
    ],
)
def test_batch_norm_averages_over_a_sixth_of_an_epoch(
    digits, n_train, batch_size, set_to, momentum
):
    from dataclasses import replace

    spec = replace(digits.spec, n_train=n_train)
    hp = CNNHParams(
        blocks=1, filters=4, dense_units=8, batch_size=batch_size, batch_norm_momentum=set_to
    )
    assert hp.momentum_for(spec) == pytest.approx(momentum)
    norms = [layer for layer in CNN.build(hp, spec).layers if "batch_norm" in layer.name]
    assert norms and all(layer.momentum == pytest.approx(momentum) for layer in norms)
    assert digits.spec.n_train == 400  # the loader says how many images the model trains on


@pytest.mark.parametrize(("batch_norm", "dropouts"), [(True, 1), (False, 4)])
def test_with_batch_norm_dropout_comes_only_before_the_output(digits, batch_norm, dropouts):
    hp = CNNHParams(blocks=3, filters=4, dense_units=8, dropout=0.25, batch_norm=batch_norm)
    names = [type(layer).__name__ for layer in CNN.build(hp, digits.spec).layers]
    assert names.count("Dropout") == dropouts and names[-2] == "Dropout"


def test_cnn_reaches_five_blocks(digits):
    hp = CNNHParams(blocks=5, filters=2, resolution=16, dense_units=8, dropout=0.0)
    model = CNN.build(hp, digits.spec)
    assert model.get_layer("resolution").output.shape[1:3] == (16, 16)
    assert model.get_layer("conv_5").filters == 32


def test_macro_f1_metric_matches_scikit_learn():
    from sklearn.metrics import f1_score

    from tunelab.models.macro_f1 import MacroF1

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 200)  # classes 6..9 never occur: left out, as scikit-learn does
    scores = rng.random((200, 10))
    scores[np.arange(150), labels[:150]] += 1.0  # mostly right
    metric = MacroF1(10)
    for start in range(0, 200, 64):  # streamed over batches
        metric.update_state(labels[start : start + 64], scores[start : start + 64])
    expected = f1_score(labels, scores.argmax(axis=1), average="macro")
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_fit_records_every_epoch_with_macro_f1_lr_and_time(digits, task):
    cfg = load_config(["dataset=digits", "model.hparams.lr_step_every=1"])
    hp = cfg.model.hparams_for({"depth": 1, "units": 32})
    seen = []
    objective = Objective("val_macro_f1", "max")
    fit = train.fit(
        cfg.model,
        hp,
        task,
        epochs=3,
        initial_epoch=0,
        seed=1,
        objective=objective,
        on_epoch=lambda e, m, images: seen.append(e) or False,
    )
    assert seen == [0, 1, 2] and fit.stop_reason == "completed"
    assert set(fit.history[0]) == {
        "epoch",
        "loss",
        "accuracy",
        "macro_f1",
        "val_loss",
        "val_accuracy",
        "val_macro_f1",
        "lr",
        "epoch_time",
    }
    assert [h["lr"] for h in fit.history] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    history = [{**h, "val_macro_f1": v} for h, v in zip(fit.history, (0.5, 0.7, 0.6), strict=True)]
    assert task.score(history, None, objective) == (0.7, 1)  # the best epoch
    assert task.score(history, None, Objective("val_loss", "min"))[0] == min(
        h["val_loss"] for h in history
    )
    from sklearn.metrics import f1_score  # the last epoch's value: the final model on val

    predicted = predict_classes(fit.model, digits.x_val)
    expected = f1_score(digits.y_val, predicted, average="macro")
    assert fit.history[-1]["val_macro_f1"] == pytest.approx(expected, abs=1e-6)


def test_a_true_hook_answer_prunes_the_trial(task):
    cfg = load_config(["dataset=digits"])
    fit = train.fit(
        cfg.model,
        cfg.model.hparams,
        task,
        epochs=5,
        initial_epoch=0,
        seed=1,
        objective=ACCURACY,
        on_epoch=lambda epoch, metrics, images: epoch == 1,
    )
    assert fit.stop_reason == "pruned" and len(fit.history) == 2


@pytest.mark.slow
def test_trained_models_are_freed_with_their_traced_graphs(task):
    """TensorFlow's gradient registry would keep every trial's train-step graph alive."""
    import gc

    cfg = load_config(["dataset=digits"])

    def graphs_alive_after_a_trial(seed: int) -> int:
        train.fit(
            cfg.model,
            cfg.model.hparams,
            task,
            epochs=1,
            initial_epoch=0,
            seed=seed,
            objective=ACCURACY,
            on_epoch=lambda epoch, metrics, images: False,
        )
        gc.collect()
        return sum(type(o).__name__ == "FuncGraph" for o in gc.get_objects())

    first = graphs_alive_after_a_trial(1)
    assert [graphs_alive_after_a_trial(seed) for seed in (2, 3)] == [first, first]


@pytest.mark.slow
def test_evaluation_and_its_figures(digits, task):
    cfg = load_config(["dataset=digits"])
    fit = train.fit(
        cfg.model,
        cfg.model.hparams,
        task,
        epochs=2,
        initial_epoch=0,
        seed=1,
        objective=ACCURACY,
        on_epoch=lambda e, m, images: False,
    )
    result = task.evaluate(fit.model, cfg.model.hparams)
    assert set(result.metrics) == {"test_accuracy", "test_macro_f1", "test_top_class_share"} | {
        f"test_f1.{d}" for d in range(10)
    }
    counts, names = result.artifacts.figures["plots/confusion_matrix.png"][1].values()
    assert counts.shape == (10, 10) and counts.sum() == 100 and names == digits.class_names
    assert result.metrics["test_accuracy"] == pytest.approx(np.trace(counts) / 100)
    assert result.metrics["test_top_class_share"] == pytest.approx(counts.sum(0).max() / 100)
    assert result.headline == {k: result.metrics[k] for k in ("test_accuracy", "test_macro_f1")}
    csv = result.artifacts.texts["tables/confusion_matrix.csv"].splitlines()
    assert csv[0].startswith("true\\predicted,0,1") and len(csv) == 11
    assert sum(int(v) for line in csv[1:] for v in line.split(",")[1:]) == 100
    report = result.artifacts.dicts["reports/classification_report.json"]
    assert set(report) >= {"0", "9", "macro avg"}
    after = weights.weight_snapshot(fit.model)
    assert list(after) == ["layer_0", "layer_1", "layer_2"]  # dense_1, dense_2, output
    assert after["layer_2"].size == fit.model.get_layer("output").count_params()
    assert not np.array_equal(after["layer_0"], fit.weights_before["layer_0"])
    curves = plots.learning_curves(fit.history, task.curves)
    assert [ax.get_title() for ax in curves.axes] == ["loss", "accuracy"]
    assert [line.get_label() for line in curves.axes[0].get_lines()] == ["loss", "val_loss"]
    matrix = plots.confusion_matrix(counts, digits.class_names)
    assert len(matrix.axes[0].texts) == 100  # a row-normalised share in every cell
    violins = plots.weight_distributions(fit.weights_before, after)
    assert [t.get_text() for t in violins.axes[0].get_xticklabels()] == list(after)


def test_weight_stats_are_what_they_say():
    values = np.array([3.0, 0.0005, -2.0, 1.0, 0.0], dtype=np.float32)  # unsorted
    stats = weights.weight_stats(values)
    assert stats["mean"] == pytest.approx(values.mean())
    assert stats["min"] == -2.0 and stats["max"] == 3.0
    expected = np.percentile(values, [1, 50, 99])
    assert [stats["p1"], stats["p50"], stats["p99"]] == expected.tolist()
    assert stats["p50"] == pytest.approx(0.0005)
    assert stats["frac_near_zero"] == pytest.approx(2 / 5)


@pytest.mark.slow
def test_saved_weights_rebuild_the_trained_model_uncompiled(task, digits, tmp_path):
    cfg = load_config(["dataset=digits"])
    hp = cfg.model.hparams_for({"units": 32, "depth": 2})
    fit = train.fit(
        cfg.model,
        hp,
        task,
        epochs=1,
        initial_epoch=0,
        seed=0,
        objective=ACCURACY,
        on_epoch=lambda e, m, images: False,
    )
    weights.save_weights(fit.model, tmp_path / "w.npz")
    rebuilt, example = task.servable(cfg.model.cls, hp, tmp_path / "w.npz")
    assert not rebuilt.compiled  # serving needs no optimizer, loss or tunelab metric
    assert np.array_equal(example, digits.x_test[:5])
    assert np.array_equal(
        rebuilt.predict(digits.x_test, verbose=0), fit.model.predict(digits.x_test, verbose=0)
    )
    warm = cfg.model.cls.build(hp, digits.spec)
    weights.load_weights(warm, tmp_path / "w.npz")
    assert_same_weights(warm, fit.model)


def test_the_collector_gets_long_lived_objects_back_even_when_a_study_fails():
    from tunelab.study import collector_off_long_lived_objects

    with pytest.raises(RuntimeError), collector_off_long_lived_objects():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("the study failed")
    assert gc.get_freeze_count() == 0
