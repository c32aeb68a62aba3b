"""Config validation: bad input fails fast with one line naming the key, before TensorFlow."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from conftest import PROJECT, load_config, tunelab_cli

from tunelab.__main__ import expand_overrides
from tunelab.schema import RENAMED_STRATEGIES, ConfigError


def test_default_study_is_mlp_mnist_hyperband():
    cfg = load_config([])
    assert (cfg.model.name, cfg.dataset.name, cfg.strategy.name) == ("mlp", "mnist", "hyperband")
    assert cfg.study_name == "mlp-mnist-hyperband-seed0"
    assert cfg.objective.name == "val_accuracy" and cfg.objective.direction == "max"
    assert "lr" in cfg.model.space.params


def test_an_objective_takes_its_natural_direction_unless_one_is_given():
    loss = load_config(["objective.name=val_loss"])
    assert (loss.objective.direction, loss.resolved["objective"]) == (
        "min",
        {"name": "val_loss", "direction": "min"},
    )
    assert (
        load_config(["objective.name=val_loss", "objective.direction=max"]).objective.direction
        == "max"
    )


def test_budget_scales_each_group_but_explicit_values_win():
    smoke = load_config(["budget=smoke"])
    assert smoke.model.training.epochs == 2
    assert smoke.dataset.settings.n_train == 300
    assert smoke.strategy.settings.max_epochs == 2
    full = load_config(["budget=full"])
    assert full.dataset.settings.source == "keras"
    assert full.strategy.settings.max_epochs == 50
    assert load_config(["budget=smoke", "strategy.max_epochs=4"]).strategy.settings.max_epochs == 4


def test_an_inert_factor_is_tuned_and_logged_but_never_reaches_the_model():
    cfg = load_config(["experiment=cifar_doe"])
    assert cfg.model.is_inert("guidance_weight") and "guidance_weight" in cfg.model.space.names
    hp = cfg.model.hparams_for({"guidance_weight": 3.0, "lr": 0.01})
    assert hp.lr == 0.01 and not hasattr(hp, "guidance_weight")
    with pytest.raises(ConfigError, match="model.space.dropout: inert, but model mlp takes it"):
        load_config(
            [
                "~model.space.dropout",
                "+model.space.dropout={type: float, low: 0, high: 0.5, inert: true}",
            ]
        )


def test_tune_narrows_the_declared_space():
    cfg = load_config(["model.tune=[lr,units]"])
    assert cfg.model.space.names == ["lr", "units"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy.factor=x"], "strategy.factor: expected an integer, got 'x'"),
        (["model.space.lr.high=1e-5"], "model.space.lr: low (0.0001) must be below high (1e-05)"),
        (["model.space.lr.low=0"], "model.space.lr: log scale needs low > 0"),
        (["+strategy.max_trialz=3"], "strategy.max_trialz: unknown key; valid keys: factor,"),
        (["+model.space.lrr={type: float, low: 1, high: 2}"], "model.space.lrr: unknown hyper"),
        (
            ["model.space.optimizer.values=[adam,nadam]"],
            "model.space.optimizer: 'nadam' is not valid; valid choices: adam, sgd, rmsprop",
        ),
        (["model.tune=[lr,width]"], "model.tune: 'width' is not declared in model.space"),
        (["budget=huge"], "budget: 'huge' is not valid; valid choices: smoke, default, full"),
        (
            ["objective.name=f1"],
            "objective.name: 'f1' is not an objective of model mlp; valid: "
            "val_accuracy, val_macro_f1, val_loss, accuracy, loss",
        ),
        (["model.hparams.dropout=1.5"], "model.hparams.dropout: must be in [0, 1)"),
        (["strategy.max_epochs=${by_budget:2,9,0}"], "must be >= 1 (with budget=full)"),
        (
            ["stages=[{name: a, factors_from: b}]"],
            "stages[0].factors_from: 'b' is not an earlier stage with analyse: true; "
            "valid choices: none",
        ),
        (["stages=[{name: a}, {name: a}]"], "stages[1].name: 'a' is used twice"),
        (["stop_after_identical_failures=-1"], "stop_after_identical_failures: must be 0 or more"),
    ],
)
def test_bad_values_name_the_key_and_the_valid_choices(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(overrides)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "strategy._target_=incomplete_components.AskOnly",
            "strategy._target_: incomplete_components.AskOnly does not implement tell",
        ),
        (
            "model._target_=incomplete_components.NoBuild",
            "model._target_: incomplete_components.NoBuild does not implement build",
        ),
        (
            "model._target_=incomplete_components.BuildsForAnIncompleteTask",
            "model._target_: BuildsForAnIncompleteTask's task TrainsOnly does not implement "
            "evaluate, servable",
        ),
        (
            "dataset._target_=incomplete_components.NoArrays",
            "dataset._target_: incomplete_components.NoArrays does not implement arrays",
        ),
    ],
)
def test_an_extension_that_leaves_an_abstract_method_out_is_refused(override, message):
    with pytest.raises(ConfigError) as error:
        load_config([override])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_validation_imports_neither_tensorflow_nor_mlflow():
    code = (
        "import sys; sys.path.insert(0, 'tests'); from conftest import load_config; "
        "load_config(['strategy=tpe', 'model=cnn', 'dataset=cifar10']); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner', 'mlflow', 'optuna') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_bad_value_exits_2_with_one_line_and_logs_nothing(tmp_path):
    db = tmp_path / "mlflow.db"
    started = time.perf_counter()
    out = tunelab_cli(
        ["strategy.max_epochs=-1"], cwd=tmp_path, env={"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "tunelab: error: strategy: max_epochs and hyperband_iterations must be >= 1"
    )
    assert not db.exists()  # no MLflow store was even opened
    assert time.perf_counter() - started < 10  # no TensorFlow import on the way


STRATEGIES = ", ".join(  # old names (which still work) left out
    sorted(
        p.stem
        for p in (PROJECT / "conf" / "strategy").glob("*.yaml")
        if p.stem not in RENAMED_STRATEGIES
    )
)
TOP_LEVEL_KEYS = (
    "budget, dataset, keep_weights, model, objective, quiet, repetition, resume, seed, stages, "
    "stop_after_identical_failures, strategy, study_name, tags, tracking, workdir, "
    "workers"
)


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["strategy=nonsense"], f"strategy: 'nonsense' is not valid; valid choices: {STRATEGIES}"),
        (
            ["-m", "strategy=hyperband,nonsense"],
            f"strategy: 'nonsense' is not valid; valid choices: {STRATEGIES}",
        ),
        (
            ["experiment=mnist_mlp/nope"],
            "experiment: 'mnist_mlp/nope' is not valid; valid "
            "choices: cifar_cnn/baseline, cifar_cnn/hyperband, cifar_doe, cifar_mlp/hyperband, "
            "cifar_mlp/regularisation, cifar_mlp/softmax, cifar_mlp/widths, gan_shootout, "
            "guided_doe, mnist_mlp/bad_init, "
            "mnist_mlp/batch_size, mnist_mlp/hyperband, mnist_mlp/hyperband_f1, "
            "mnist_mlp/regularisation, mnist_mlp/rho, optimiser_shootout",
        ),
        (["foo=1"], f"foo: unknown key; valid keys: {TOP_LEVEL_KEYS}"),
        (
            ["strategy.max_trial=3"],
            "strategy.max_trial: unknown key; valid keys: factor, hyperband_iterations, "
            "max_epochs, name",
        ),
        (
            ["model.space.lrr.low=0.1"],
            "model.space.lrr: unknown key; valid keys: activation, "
            "batch_size, depth, dropout, l2, lr, optimizer, units",
        ),
        (
            ["model.tune=[lr"],
            "model.tune=[lr: cannot read this override (no viable alternative "
            "at input '[lr'); see https://hydra.cc/docs/advanced/override_grammar/basic/",
        ),
        (["seed=abc"], "seed: expected an integer, got 'abc'"),
        (["resume=maybe"], "resume: expected true or false, got 'maybe'"),
        (["tracking.retry_seconds=soon"], "tracking.retry_seconds: expected a number, got 'soon'"),
    ],
    ids=[
        "group-option",
        "in-a-sweep",
        "nested-preset",
        "key",
        "nested-key",
        "space",
        "syntax",
        "type",
        "bool",
        "nested-type",
    ],
)
def test_cli_config_hydra_cannot_compose_exits_2_with_one_line(overrides, line, tmp_path):
    out = tunelab_cli(overrides, cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (2, f"tunelab: error: {line}")
    assert not (tmp_path / "mlflow.db").exists()


def test_cli_help_imports_neither_tensorflow_nor_mlflow_and_explains_usage(tmp_path):
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tunelab", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "tunelab.config" in imported
    assert not {"tensorflow", "keras", "keras_tuner", "mlflow"} & imported
    assert "python -m tunelab" in out.stdout
    strategies = next(line for line in out.stdout.splitlines() if line.startswith("strategy: "))
    assert set(strategies.removeprefix("strategy: ").split(", ")) == {
        path.stem for path in (PROJECT / "conf" / "strategy").glob("*.yaml")
    }


def test_grid_over_the_default_space_names_its_size_and_a_narrower_one_runs():
    cfg = load_config(["strategy=grid", "dataset=digits", "budget=smoke"])
    with pytest.raises(ConfigError, match=r"the grid has 7,776 points \(depth 3 x units 4 x "):
        cfg.model.space.grid(cfg.strategy.settings.points, cfg.strategy.settings.max_points)
    cfg = load_config(["strategy=grid", "model.tune=[lr,dropout]"])
    lrs = sorted({p["lr"] for p in cfg.model.space.grid()})
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2])


def test_overrides_string_from_mlflow_run_is_split():
    assert expand_overrides(["strategy=tpe", "--overrides", "budget=smoke seed=3", ""]) == [
        "strategy=tpe",
        "budget=smoke",
        "seed=3",
    ]
    assert expand_overrides(["--overrides="]) == []


def test_fingerprint_ignores_only_what_may_change_on_resume():
    a = load_config(["quiet=true", "resume=true"])
    b = load_config(["quiet=false"])
    assert a.config_hash() == b.config_hash()
    c = load_config(["strategy.max_epochs=10"])
    assert c.config_hash() != b.config_hash()


PRESETS = sorted(
    str(p.relative_to(PROJECT / "conf" / "experiment").with_suffix(""))
    for p in (PROJECT / "conf" / "experiment").rglob("*.yaml")
)


def test_there_are_presets_for_each_reference_study():
    assert {p.split("/")[0] for p in PRESETS} == {
        "mnist_mlp",
        "cifar_mlp",
        "cifar_cnn",
        "optimiser_shootout",
        "cifar_doe",
        "gan_shootout",
        "guided_doe",
    }


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_valid_under_every_budget(preset):
    cfg = load_config([f"experiment={preset}"])  # checks the other budgets too
    family = preset.split("/")[0]
    assert family in (cfg.study_name.split("-")[0], cfg.tracking.experiment)


def test_preset_values_scale_with_the_budget():
    smoke = load_config(["experiment=cifar_cnn/hyperband", "budget=smoke"])
    full = load_config(["experiment=cifar_cnn/hyperband", "budget=full"])
    assert (smoke.strategy.settings.max_epochs, full.strategy.settings.max_epochs) == (2, 10)
    assert full.strategy.settings.hyperband_iterations == 2
    assert full.model.training.early_stopping_patience == 3
    assert full.dataset.settings.n_val == 10000 and full.dataset.settings.n_train is None


def test_cifar_doe_chains_four_studies_over_the_seven_factors_of_the_study():
    from tunelab.stages import stage_config

    overrides = ["experiment=cifar_doe", "budget=full"]
    cfg = load_config(overrides)
    assert [(s.name, s.analyse, s.factors_from) for s in cfg.stages] == [
        ("screening", True, None),
        ("factorial", True, None),
        ("rsm", False, "factorial"),
        ("gp_ei", False, "factorial"),
    ]
    stages = {s.name: stage_config(cfg, overrides, s) for s in cfg.stages}
    screening = stages["screening"]
    assert screening.strategy.settings.generators == "a b c ab ac bc abc"
    levels = {n: (p.low, p.high) for n, p in screening.model.space.params.items()}
    assert levels == {
        "lr": (0.001, 0.01),
        "batch_size": (32, 128),
        "blocks": (3, 5),
        "filters": (32, 64),
        "dropout": (0.2, 0.5),
        "resolution": (32, 128),
        "guidance_weight": (0.0, 3.0),
    }
    assert stages["factorial"].strategy.name == "full_factorial" and not stages["rsm"].stages
    assert stages["gp_ei"].strategy.settings.max_trials == 20
    assert stages["gp_ei"].strategy.settings.grid_points == 10
    assert stages["rsm"].study_name == "cifar_doe-seed0-rsm"
    narrowed = stage_config(cfg, overrides, cfg.stages[2], ["lr", "dropout", "blocks"])
    assert narrowed.model.space.names == ["lr", "dropout", "blocks"]


def test_guided_doe_chains_a_baseline_and_the_four_studies_beside_their_claims():
    from tunelab.stages import stage_config

    overrides = ["experiment=guided_doe", "budget=full"]
    cfg = load_config(overrides)
    assert [(s.name, s.factors_from, s.claimed) for s in cfg.stages] == [
        ("baseline", None, 158),
        ("screening", None, 140),
        ("factorial", None, 130),
        ("rsm", "factorial", 120),
        ("gp_ei", "factorial", 98),
    ]
    assert cfg.model.name == "guided_diffusion" and cfg.objective.name == "fid"
    stages = {s.name: stage_config(cfg, overrides, s) for s in cfg.stages}
    baseline = stages["baseline"]
    assert baseline.strategy.name == "grid" and baseline.model.space.names == []
    assert baseline.model.hparams_for({}).guidance_weight == 0.0  # unguided samples
    levels = {n: (p.low, p.high) for n, p in stages["screening"].model.space.params.items()}
    assert levels["guidance_weight"] == (0.1, 1.0) and levels["lr"] == (0.001, 0.01)
    assert len(levels) == 7
    assert cfg.stages[4].tune == ["lr", "batch_size", "dropout"]
    assert stages["gp_ei"].strategy.settings.max_trials == 20


def test_a_bad_stage_override_names_the_stage():
    from tunelab.stages import stage_config

    cfg = load_config(["experiment=cifar_doe"])
    bad = cfg.stages[0].__class__(name="broken", overrides=["strategy.resolution=x"])
    with pytest.raises(ConfigError, match="stages.broken: strategy.resolution: expected an int"):
        stage_config(cfg, ["experiment=cifar_doe"], bad)


def test_a_python_without_tensorflow_is_refused_in_one_line_naming_the_extras(monkeypatch):
    import importlib.util

    from tunelab import backend

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorflow" else real(name, *a),
    )
    with pytest.raises(
        ConfigError,
        match=r"^TensorFlow is not installed: pip install 'tunelab\[cpu\]', or 'tunelab\[gpu\]'",
    ):
        backend.require_tensorflow()
    monkeypatch.undo()
    backend.require_tensorflow()  # this Python has it


@pytest.fixture
def warned_afresh(monkeypatch):
    """Each renamed setting warns once per process: here, once per test."""
    from tunelab import config

    monkeypatch.setattr(config, "_WARNED", set())


@pytest.mark.parametrize(
    ("overrides", "warning", "settings"),
    [
        (["strategy=bayesian"], "strategy=bayesian is now strategy=keras_bayesian", {}),
        (["strategy=gp"], "strategy=gp is now strategy=optuna_gp", {}),
        (
            ["strategy=tpe", "strategy.n_trials=7"],
            "strategy.n_trials is now strategy.max_trials",
            {"max_trials": 7},
        ),
        (
            ["strategy=gp_ei", "strategy.n_initial=3", "strategy.iterations=4"],
            "strategy.iterations is now strategy.max_trials (n_initial + iterations)",
            {"max_trials": 7, "n_initial": 3},
        ),
    ],
)
def test_an_old_name_still_works_with_a_warning_naming_the_new_one(
    overrides, warning, settings, warned_afresh
):
    from tunelab.schema import Renamed

    with pytest.warns(Renamed, match=rf"^{re.escape(warning)}; the old name will go$") as caught:
        cfg = load_config(overrides)
    assert len(caught) == 1  # once, though the config is checked under three budgets
    assert cfg.strategy.name == RENAMED_STRATEGIES.get(cfg.strategy.name, cfg.strategy.name)
    assert {k: getattr(cfg.strategy.settings, k) for k in settings} == settings
    assert "n_trials" not in cfg.resolved["strategy"]  # logged under today's names
    assert "renamed_from" not in cfg.resolved["strategy"]


def test_every_old_strategy_name_is_a_yaml_running_its_new_one():
    folder = PROJECT / "conf" / "strategy"
    for old, new in RENAMED_STRATEGIES.items():
        text = (folder / f"{old}.yaml").read_text()
        assert f"renamed_from: {old}" in text and f"  - {new}\n" in text
        assert (folder / f"{new}.yaml").is_file()


def test_cli_says_an_old_name_in_one_warning_line(tmp_path, warned_afresh):
    out = tunelab_cli(["strategy=gp", "strategy.max_trials=0"], cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "tunelab: warning: strategy=gp is now strategy=optuna_gp; the old name will go",
        "tunelab: error: strategy.max_trials: must be at least 1, got 0",
    ]


def test_fit_takes_any_key_without_a_plus_and_image_size_may_be_one_number(tmp_path, monkeypatch):
    (tmp_path / "own_build.py").write_text("def build(hp):\n    raise NotImplementedError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load_config(
        ["model=hypermodel", "model.build=own_build:build", "model.fit.batch_size=64"]
    )
    assert cfg.model.task.fit == {"batch_size": 64}
    cfg = load_config(["dataset=images", f"dataset.path={tmp_path}", "dataset.image_size=32"])
    assert cfg.dataset.settings.size == (32, 32)


def test_any_optuna_sampler_and_pruner_is_a_target(tmp_path):
    """A sampler and a pruner given as `_target_` mappings are Hydra-instantiated, with the
    seed and the epochs offered where they take them; a target that cannot be imported is
    one line naming the key."""
    from test_strategies import strategy_for

    from tunelab.strategies import Outcome

    overrides = [
        "strategy.sampler._target_=optuna.samplers.RandomSampler",
        "+strategy.pruner={_target_: optuna.pruners.PercentilePruner, percentile: 25.0}",
        "strategy.max_trials=3",
    ]
    _, strategy = strategy_for("tpe", tmp_path, overrides)
    assert type(strategy.study.sampler).__name__ == "RandomSampler"
    assert strategy.study.pruner._percentile == 25.0
    while (proposal := strategy.ask()) is not None:
        strategy.tell(proposal, Outcome("COMPLETE", 0.5, 2))
    assert len(strategy.study.trials) == 3
    with pytest.raises(ConfigError, match=r"^strategy.sampler._target_: .*optuna.samplers.Nope"):
        strategy_for("tpe", tmp_path, ["strategy.sampler._target_=optuna.samplers.Nope"])
    with pytest.raises(ConfigError, match=r"^strategy.sampler: optuna.samplers.TPESampler .*"):
        strategy_for("tpe", tmp_path, ["+strategy.sampler.n_warmup=3"])
