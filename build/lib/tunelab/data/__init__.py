"""Datasets: one module per `conf/dataset/*.yaml`; `load_dataset` splits and scales them."""

from tunelab.data.base import Arrays, Dataset, DataSettings, DataSpec, load_dataset

__all__ = ["Arrays", "DataSettings", "DataSpec", "Dataset", "load_dataset"]
