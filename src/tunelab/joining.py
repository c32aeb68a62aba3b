"""A study's identity in its Optuna storage, which is all a worker on another machine needs.

The process that creates a shared study writes, as a user attribute of its Optuna study, the
resolved config, the study run's id and the versions it runs. `tunelab worker --study NAME
--storage URL --tracking-uri URI` reads them back and joins; nothing else is shared but the
database and the tracking server.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from tunelab.schema import ConfigError
from tunelab.tracking.reachability import masked

IDENTITY = "tunelab"  # the Optuna study's user attribute holding the identity
CHECKED_VERSIONS = ("tunelab", "tensorflow", "keras")  # a worker must run what the creator ran


def storage_url(strategy_settings: Any, study_folder: str) -> str:
    """Where a study's Optuna study lives: `strategy.storage`, or the study folder's file."""
    storage = getattr(strategy_settings, "storage", None)
    return storage or f"sqlite:///{study_folder}/optuna.db"


def versions() -> dict[str, str]:
    """The installed versions a worker must share with the study's creator."""
    found = {}
    for package in CHECKED_VERSIONS:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def publish(url: str, name: str, identity: dict[str, Any]) -> None:
    """Write the study's identity into its Optuna study `name` at `url`."""
    import optuna

    study = optuna.load_study(study_name=name, storage=url)
    study.set_user_attr(IDENTITY, {**identity, "versions": versions()})


def read(url: str, name: str) -> dict[str, Any]:
    """The identity of study `name` at `url`; a ConfigError in one line if there is none, or
    if this machine runs other versions than the study's creator."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        known = ", ".join(optuna.get_all_study_names(url)) or "none"
        raise ConfigError(f"--study: no study {name!r} in {masked(url)} (studies there: "
                          f"{known})") from None  # fmt: skip
    identity = study.user_attrs.get(IDENTITY)
    if not identity:
        raise ConfigError(f"--study: {name!r} in {masked(url)} is not a tunelab study that "
                          "takes workers (it has no identity; start it with workers=N or a "
                          "strategy.storage)")  # fmt: skip
    here = versions()
    for package, theirs in identity["versions"].items():
        if here.get(package) != theirs:
            raise ConfigError(
                f"--study: {name!r} was created with {package} {theirs}, this machine has "
                f"{here.get(package)}; install the same version to join it"
            )
    return identity
