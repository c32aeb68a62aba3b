"""tunelab: hyperparameter studies of Keras models, designed, run and analysed with MLflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tunelab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
