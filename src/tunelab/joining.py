"""A study's identity in its Optuna storage, which is all a worker on another machine needs.

The process that creates a shared study writes, as a user attribute of its Optuna study, the
resolved config, the study run's id and the versions it runs. `tunelab worker --study NAME
--storage URL --tracking-uri URI` reads them back and joins; nothing else is shared but the
database and the tracking server.
"""

from __future__ import annotations

import hashlib
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tunelab.local_workers import label
from tunelab.schema import ConfigError, StudyFailed
from tunelab.strategies.base import storage_of
from tunelab.strategies.optuna_shared import outlasting_restarts, storage_lock, study_storage
from tunelab.tracking.cleanup import this_process
from tunelab.tracking.reachability import masked

IDENTITY = "tunelab"  # the Optuna study's user attribute holding the identity
CLOSER = "tunelab.closer"  # the worker that claimed the study's closing
CLOSING_PROCESS = "tunelab.closing_process"  # and its process (host:pid)
CLOSED = "tunelab.closed"  # what the closer tells the others (the registered model)
CHECKED_VERSIONS = ("tunelab", "tensorflow", "keras")  # a worker must run what the creator ran


@runtime_checkable
class ReadFromPath(Protocol):
    """Settings of a dataset read from a path (`dataset.path`)."""

    path: str | None


def storage_url(strategy_settings: Any, study_folder: Path) -> str:
    """Where a study's Optuna study lives: `strategy.storage`, or the study folder's file."""
    return study_storage(storage_of(strategy_settings), study_folder)


def data_path(dataset_settings: Any) -> str | None:
    """The path a dataset is read from (`dataset.path`), None for data not read from one."""
    path = dataset_settings.path if isinstance(dataset_settings, ReadFromPath) else None
    return str(path) if path else None


def portable_uri(uri: str) -> str:
    """`uri` as a process in another working directory reaches it: a relative SQLite file or
    local folder made absolute (a server's URL stays as it is)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    if "://" not in uri and not uri.startswith("sqlite:"):
        return str(Path(uri).resolve())
    return uri


def versions() -> dict[str, str]:
    """The installed versions a worker must share with the study's creator."""
    found = {}
    for package in CHECKED_VERSIONS:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def data_fingerprint(path: str | None) -> dict[str, Any] | None:
    """A dataset read from `path`: its size and a hash of its first MiB (of a folder: of its
    files' names and sizes); None for data not read from a path."""
    if not path:
        return None
    where = Path(path)
    if where.is_file():
        with where.open("rb") as f:
            return {
                "size": where.stat().st_size,
                "sha256": hashlib.sha256(f.read(2**20)).hexdigest(),
            }
    if where.is_dir():
        files = sorted(f for f in where.rglob("*") if f.is_file())
        listing = "\n".join(f"{f.relative_to(where)}:{f.stat().st_size}" for f in files)
        return {
            "size": sum(f.stat().st_size for f in files),
            "sha256": hashlib.sha256(listing.encode()).hexdigest(),
        }
    return {"missing": True}


def check_data(identity: dict[str, Any], path: str | None) -> None:
    """Refuse, in one line, data at `path` that is not the data the study was created with."""
    theirs, ours = identity.get("data"), data_fingerprint(path)
    if theirs == ours:
        return
    if ours is None or ours.get("missing"):
        raise ConfigError(
            f"dataset.path: nothing at {path!r} on this machine; a worker reads "
            "the study's data from the same path"
        )
    raise ConfigError(
        f"dataset.path: {path!r} differs from the study's data ({ours['size']} bytes here, "
        f"{theirs['size'] if theirs else '?'} when it was created, or other content); a "
        "worker must read the same data"
    )


def publish(url: str, name: str, identity: dict[str, Any]) -> None:
    """Write the study's identity into its Optuna study `name` at `url`."""
    import optuna

    study = optuna.load_study(study_name=name, storage=url)
    study.set_user_attr(IDENTITY, {**identity, "versions": versions()})
    study.set_user_attr(CLOSER, None)  # a resumed study's closer may have died closing it


def read(url: str, name: str) -> dict[str, Any]:
    """The identity of study `name` at `url`; a ConfigError in one line if there is none, or
    if this machine runs other versions than the study's creator."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        known = ", ".join(optuna.get_all_study_names(url)) or "none"
        raise ConfigError(
            f"--study: no study {name!r} in {masked(url)} (studies there: {known})"
        ) from None
    identity = study.user_attrs.get(IDENTITY)
    if not identity:
        raise ConfigError(
            f"--study: {name!r} in {masked(url)} is not a tunelab study that "
            "takes workers (it has no identity; start it with workers=N or a "
            "strategy.storage)"
        )
    here = versions()
    for package, theirs in identity["versions"].items():
        if here.get(package) != theirs:
            raise ConfigError(
                f"--study: {name!r} was created with {package} {theirs}, this machine has "
                f"{here.get(package)}; install the same version to join it"
            )
    return identity


@outlasting_restarts
def _study(url: str, name: str) -> Any:
    import optuna

    return optuna.load_study(study_name=name, storage=url)


@outlasting_restarts
def claim_close(url: str, folder: Path, force: bool = False) -> bool:
    """Whether this process is the first to claim closing the study of study folder `folder`
    (the others then leave it); taken under the lock the study's workers take turns on.
    `force`: claim it even if another process did (and died closing it)."""
    with storage_lock(url, folder)():
        study = _study(url, folder.name)
        if study.user_attrs.get(CLOSER) and not force:  # this process's own claim, sent again
            return study.user_attrs.get(CLOSING_PROCESS) == this_process()  # (a lost unlock)
        study.set_user_attr(CLOSING_PROCESS, this_process())
        study.set_user_attr(CLOSER, label())
        return True


@outlasting_restarts
def closed(url: str, name: str, registered: dict[str, Any] | None) -> None:
    """Tell the study's other processes it is closed, with what was registered."""
    _study(url, name).set_user_attr(CLOSED, {"registered": registered})


def wait_until_closed(url: str, name: str, seconds: float = 900) -> dict[str, Any]:
    """What the closer told (`closed`), once it has; StudyFailed after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        attrs = _study(url, name).user_attrs
        if CLOSED in attrs:
            return dict(attrs[CLOSED])
        time.sleep(1)
    closer = _study(url, name).user_attrs.get(CLOSER)
    raise StudyFailed(
        f"worker {closer} claimed closing study {name!r} but has not closed it "
        f"in {seconds:.0f} s; close it with tunelab study close"
    )
