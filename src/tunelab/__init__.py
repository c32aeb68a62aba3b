"""tunelab: hyperparameter studies of Keras models, designed, run and analysed with MLflow.

`tunelab.tune(build, x, y, ...)` tunes your own KerasTuner-style `build(hp)` from Python;
`python -m tunelab` runs a study composed from YAML.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tunelab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


from tunelab.api import TuneResult, tune  # noqa: E402  (light: no TensorFlow, no MLflow)

__all__ = ["TuneResult", "__version__", "tune"]
