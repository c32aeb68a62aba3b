"""Every strategy in conf/strategy/ proposes trials of the declared space through ask / tell,
as many as it announces, without training anything."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT, load_config

from tunelab.schema import RENAMED_STRATEGIES, ConfigError
from tunelab.strategies import Outcome, StrategyContext

STRATEGIES = sorted(  # today's names (the old ones are tested in test_config)
    path.stem
    for path in (PROJECT / "conf" / "strategy").glob("*.yaml")
    if path.stem not in RENAMED_STRATEGIES
)
CONTINUOUS = ["model.tune=[lr,dropout]"]
NARROWER = {  # what a strategy needs of the default MLP space (or to keep the test quick)
    "cmaes": CONTINUOUS,
    "rsm": CONTINUOUS,
    "grid": CONTINUOUS,
    "full_factorial": ["model.tune=[lr,dropout,depth]"],
    "fractional_factorial": ["model.tune=[lr,dropout,depth]"],
}


def strategy_for(name: str, workdir: Path, overrides: list[str] = (), **context: Any):
    """The strategy `name` of a smoke study in `workdir`; `context`: more StrategyContext
    fields (e.g. shared=True)."""
    cfg = load_config(
        [
            f"strategy={name}",
            "budget=smoke",
            f"workdir={workdir}",
            *NARROWER.get(name, []),
            *overrides,
        ]
    )
    context = StrategyContext(
        space=cfg.model.space,
        objective=cfg.objective,
        seed=0,
        workdir=workdir,
        resume=False,
        epochs=2,
        **context,
    )
    return cfg, cfg.strategy.cls(cfg.strategy.settings, context)


def within(param, value) -> bool:
    if param.type in ("choice", "bool"):
        return value in param.choices
    inside = param.low <= value <= param.high
    return inside and (param.type == "float" or float(value).is_integer())


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_proposes_trials_of_the_declared_space(name, tmp_path):
    cfg, strategy = strategy_for(name, tmp_path)
    ids = []
    while (proposal := strategy.ask()) is not None and len(ids) < 500:
        assert set(proposal.values) == set(cfg.model.space.names)
        for key, value in proposal.values.items():
            assert within(cfg.model.space.params[key], value), (key, value)
        ids.append(proposal.trial_id)
        score = 0.5 + 0.1 * (len(ids) % 3)
        strategy.tell(proposal, Outcome("COMPLETE", score, proposal.epochs or 2))
    assert len(ids) == len(set(ids)) > 0
    if strategy.expected_trials is not None:
        assert len(ids) == strategy.expected_trials


def test_gp_without_pytorch_stops_with_one_line(tmp_path, monkeypatch):
    from tunelab.strategies import optuna_samplers

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        optuna_samplers.importlib.util,
        "find_spec",
        lambda name: None if name == "torch" else real_find_spec(name),
    )
    with pytest.raises(
        ConfigError, match=r"strategy=optuna_gp: .*needs PyTorch: pip install -e '.\[gp\]'"
    ):
        strategy_for("optuna_gp", tmp_path)


@pytest.mark.parametrize("name", ["cmaes", "rsm"])
def test_a_strategy_of_ranges_refuses_a_choice_with_one_line(name, tmp_path):
    with pytest.raises(ConfigError, match=r"model.space.units: .*(float|continuous)"):
        strategy_for(name, tmp_path, ["model.tune=[lr,units]"])


def test_cmaes_needs_two_ranges(tmp_path):
    with pytest.raises(ConfigError, match="model.tune: CmaEs needs at least 2 ranges"):
        strategy_for("cmaes", tmp_path, ["model.tune=[lr]"])


def test_qmc_spreads_its_points_over_the_range(tmp_path):
    """Scrambled Sobol: after Optuna's first (random) trial, which finds the space, 4 points put
    one value in each quarter of the range."""
    cfg, strategy = strategy_for(
        "qmc", tmp_path, ["model.tune=[dropout]", "strategy.max_trials=5", "strategy.pruner=none"]
    )
    quarters = []
    while (proposal := strategy.ask()) is not None:
        quarters.append(int(proposal.values["dropout"] / 0.5 * 4))
        strategy.tell(proposal, Outcome("COMPLETE", 0.5, 2))
    assert sorted(quarters[1:]) == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["tpe", "cmaes"])
def test_each_worker_draws_its_own_trials(name, tmp_path):
    """Three processes of one study ask for their first trials (random start-up ones): each
    draws its own values, and the coordinator (worker 0) draws what a study of one process
    draws."""
    cfg = load_config([f"strategy={name}", "budget=smoke", *NARROWER.get(name, [])])

    def process(workdir: Path, worker: str, shared: bool = True):
        context = StrategyContext(
            space=cfg.model.space,
            objective=cfg.objective,
            seed=0,
            workdir=workdir,
            resume=worker != "0",
            epochs=2,
            shared=shared,
            joining=worker != "0",
            worker=worker,
        )
        return cfg.strategy.cls(cfg.strategy.settings, context)

    study = tmp_path / "study"
    study.mkdir()
    strategies = [process(study, worker) for worker in ("0", "1", "2")]
    proposals = [strategy.ask() for strategy in strategies]
    firsts = [proposal.values for proposal in proposals]
    for strategy, proposal in zip(strategies, proposals, strict=True):
        strategy.tell(proposal, Outcome("COMPLETE", 0.5, 2))
    assert firsts[0] != firsts[1] != firsts[2] != firsts[0]
    alone = process(tmp_path, "0", shared=False)
    assert alone.ask().values == firsts[0]


def test_tpe_prunes_a_trial_that_trails_the_median():
    from tunelab.objective import Objective
    from tunelab.space import SearchSpace
    from tunelab.strategies.optuna_study import OptunaSettings
    from tunelab.strategies.optuna_study import OptunaStudy as TPE

    context = StrategyContext(
        space=SearchSpace.from_config({"lr": "interval(0.001, 0.1)"}),
        objective=Objective("val_accuracy", "max"),
        seed=0,
        workdir=Path("unused"),
        resume=False,
        epochs=3,
    )
    tpe = TPE(OptunaSettings(max_trials=2, n_startup_trials=1, storage="memory"), context)
    first = tpe.ask()
    assert not any(tpe.report(first, epoch, 0.9) for epoch in range(3))
    tpe.tell(first, Outcome("COMPLETE", 0.9, 3))
    second = tpe.ask()
    assert tpe.report(second, 0, 0.1)  # far below the first trial at the same epoch
    tpe.tell(second, Outcome("PRUNED", 0.1, 1))
    assert tpe.ask() is None
    assert [t.state.name for t in tpe.study.trials] == ["COMPLETE", "PRUNED"]


def test_a_new_study_never_deletes_a_same_name_study_from_a_shared_storage(tmp_path):
    """`resume=false` restarts a study in its own folder's file, but in a storage given by
    `strategy.storage` (which other workers may share) it refuses with one line."""
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    workdir = tmp_path / "work" / "mlp-digits-tpe-seed0"
    overrides = [f"strategy.storage={shared}", "strategy.max_trials=1"]
    _, first = strategy_for("tpe", workdir, overrides)
    proposal = first.ask()
    first.tell(proposal, Outcome("COMPLETE", 0.5, 2))
    with pytest.raises(
        ConfigError,
        match=(
            r"^strategy.storage: an Optuna study named 'mlp-digits-tpe-seed0' already exists in "
            r"sqlite:///.*shared.db; continue it with resume=true, or give this study another "
            r"study_name \(a shared storage's studies are never deleted\)$"
        ),
    ):
        strategy_for("tpe", workdir, overrides)
    import optuna

    assert len(optuna.load_study(study_name=workdir.name, storage=shared).trials) == 1
    workdir.mkdir(parents=True)
    _, private = strategy_for("tpe", workdir)  # its own folder's file: restarted
    private.tell(private.ask(), Outcome("COMPLETE", 0.5, 2))
    _, private = strategy_for("tpe", workdir)
    assert private.study.trials == []


def test_asha_stops_a_trial_at_its_first_rung_below_the_top_third():
    """Asynchronous successive halving (reduction factor 3): at the first rung a trial goes on
    only if it is in the top third of the trials that reached that rung, without waiting for
    others to finish."""
    from tunelab.objective import Objective
    from tunelab.space import SearchSpace
    from tunelab.strategies.optuna_study import OptunaSettings
    from tunelab.strategies.optuna_study import OptunaStudy as TPE

    context = StrategyContext(
        space=SearchSpace.from_config({"lr": "interval(0.001, 0.1)"}),
        objective=Objective("val_accuracy", "max"),
        seed=0,
        workdir=Path("unused"),
        resume=False,
        epochs=9,
    )
    settings = OptunaSettings(max_trials=3, pruner="asha", storage="memory")
    tpe = TPE(settings, context)
    leader, running = tpe.ask(), tpe.ask()  # two trials at once, as two workers would run
    assert not tpe.report(leader, 1, 0.9)
    assert tpe.report(running, 1, 0.2)  # below the leader's rung: stopped, the leader unended
    assert not tpe.report(leader, 2, 0.95)


def test_a_trial_retried_twice_counts_once_towards_a_shared_study_s_total():
    """Worker 1 dies in trial 0 and worker 2 in its retry 1: retry 2 is the one that counts."""
    import optuna

    from tunelab.strategies.optuna_shared import counted

    study = optuna.create_study()
    retry = optuna.storages.RetryFailedTrialCallback()
    first = study.ask()
    study.tell(first, state=optuna.trial.TrialState.FAIL)
    retry(study, study.trials[0])  # trial 1, WAITING
    second = study.ask()
    study.tell(second, state=optuna.trial.TrialState.FAIL)
    retry(study, study.trials[1])  # trial 2: its history names trials 0 and 1
    study.tell(study.ask(), 0.5)
    study.tell(study.ask(), 0.7)  # trial 3, never retried
    assert [t.system_attrs.get("retry_history") for t in study.trials] == [None, [0], [0, 1], None]
    assert counted(study.trials) == 2


def shared_strategy(name: str, workdir: Path):
    """The strategy of a shared study, and the Optuna study it takes its trials from."""
    _, strategy = strategy_for(name, workdir, shared=True)
    return strategy, strategy.study if name == "tpe" else strategy.queue


@pytest.mark.parametrize("name", ["tpe", "full_factorial"])
def test_an_ask_the_database_cut_short_proposes_its_trial_when_sent_again(
    name, tmp_path, monkeypatch
):
    """The database goes away after a shared study's ask took a trial and before the trial's
    heartbeat thread started: the ask, sent again, proposes that trial, so none is left
    RUNNING without a process to run it (the study's processes would wait for it for ever)."""
    import sqlalchemy

    from tunelab.strategies import optuna_shared

    strategy, study = shared_strategy(name, tmp_path)
    started = optuna_shared.SharedTrials.started
    lost = sqlalchemy.exc.OperationalError("heartbeat", {}, Exception("server closed"))
    cuts = [lost]

    def cut_once(sharing, trial):
        if cuts:
            raise cuts.pop()
        started(sharing, trial)

    monkeypatch.setattr(optuna_shared.SharedTrials, "started", cut_once)
    proposal = strategy.ask()
    strategy.tell(proposal, Outcome("COMPLETE", 0.5, 2))
    assert not cuts and proposal.handle.number == 0
    assert "RUNNING" not in [t.state.name for t in study.trials]


@pytest.mark.parametrize("name", ["tpe", "full_factorial"])
def test_a_trial_an_ask_left_running_without_a_heartbeat_is_taken_up(name, tmp_path):
    """The database went away inside Optuna's ask, after it created the trial: the trial is
    RUNNING and never had a heartbeat, which Optuna never calls stale. The next ask, of any
    process of the study, proposes it."""
    import optuna

    strategy, study = shared_strategy(name, tmp_path)
    orphan = optuna.load_study(study_name=study.study_name, storage=strategy.sharing.storage).ask()
    proposal = strategy.ask()
    assert proposal.handle.number == orphan.number
    strategy.tell(proposal, Outcome("COMPLETE", 0.5, 2))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] + ["WAITING"] * (
        len(study.trials) - 1
    )
