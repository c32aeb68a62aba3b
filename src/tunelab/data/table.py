"""Your own table, CSV or Parquet: `dataset=table dataset.path=data.csv dataset.target=price`.

The rows are split first (seeded; stratified where the target is a class), then the features
are fitted on the training split alone: numeric columns standardised, text columns one-hot
encoded from the training split's values with one more "other" column, where a value the
training split never had lands (never an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tunelab.data.supervised import FileSettings, SupervisedData, from_splits
from tunelab.schema import ConfigError

OTHER = "other"


@dataclass
class TableSettings(FileSettings):
    target: str | None = None  # the column to predict
    features: list[str] | None = None  # default: every other column

    def check(self, path: str) -> None:
        super().check(path)
        if not self.target:
            raise ConfigError(
                f"{path}.target: missing; name the column to predict, e.g. {path}.target=price"
            )


class Table:
    """A CSV (`.csv`, `.csv.gz`, ...) or Parquet (`.parquet`, `.pq`) file, read with pandas."""

    Settings = TableSettings

    @classmethod
    def load(cls, settings: TableSettings, seed: int) -> SupervisedData:
        frame = read(str(settings.path))
        columns = [str(c) for c in frame.columns]
        if settings.target not in columns:
            raise ConfigError(
                f"dataset.target: no column {settings.target!r}; the columns are "
                f"{', '.join(columns)}"
            )
        features = settings.features or [c for c in columns if c != settings.target]
        missing = [c for c in features if c not in columns]
        if missing:
            raise ConfigError(
                f"dataset.features: no column {missing[0]!r}; the columns are {', '.join(columns)}"
            )
        rows = frame[features].reset_index(drop=True)
        target = frame[settings.target].to_numpy()
        data = from_splits(settings, seed, np.arange(len(rows)), target)
        encoder = Encoder.fit(rows.iloc[data.x_train])
        data.raw_rows = rows.iloc[np.asarray(data.x_test)[:5]]  # what a served model takes
        data.x_train, data.x_val, data.x_test = (
            None if index is None else encoder.transform(rows.iloc[index])
            for index in (data.x_train, data.x_val, data.x_test)
        )
        data.target, data.preprocessing = str(settings.target), encoder.describe()
        return data


def read(path: str) -> Any:
    import pandas as pd

    try:
        if path.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ConfigError(f"dataset.path: no file at {path!r}") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"dataset.path: cannot read {path!r} as a table ({error})") from None


@dataclass
class Encoder:
    """Standardisation of numeric columns and one-hot codes of text columns, fitted on the
    training rows."""

    numeric: dict[str, tuple[float, float]]  # column -> (mean, standard deviation)
    categories: dict[str, list[str]]  # column -> the training split's values

    @classmethod
    def described(cls, description: dict[str, Any]) -> Encoder:
        """The encoder `describe` described (as logged beside a served model)."""
        numeric = {c: (v["mean"], v["std"]) for c, v in description["standardised"].items()}
        categories = {c: values[:-1] for c, values in description["one_hot"].items()}  # no OTHER
        return cls(numeric, categories)

    @classmethod
    def fit(cls, rows: Any) -> Encoder:
        numeric, categories = {}, {}
        for column in rows.columns:
            values = rows[column]
            if values.dtype.kind in "biuf":
                std = float(values.std(ddof=0))
                numeric[str(column)] = (float(values.mean()), std if std > 0 else 1.0)
            else:
                categories[str(column)] = sorted({str(v) for v in values})
        return cls(numeric, categories)

    def transform(self, rows: Any) -> np.ndarray:
        parts = [
            ((rows[c].to_numpy("float64") - mean) / std)[:, None]
            for c, (mean, std) in self.numeric.items()
        ]
        for column, known in self.categories.items():
            values = rows[column].astype(str).to_numpy()
            codes = np.zeros((len(values), len(known) + 1))
            lookup = {value: i for i, value in enumerate(known)}
            codes[np.arange(len(values)), [lookup.get(v, len(known)) for v in values]] = 1.0
            parts.append(codes)
        return np.concatenate(parts, axis=1).astype("float32")

    def describe(self) -> dict[str, Any]:
        """What a served model's inputs must be, in column order."""
        return {
            "standardised": {c: {"mean": m, "std": s} for c, (m, s) in self.numeric.items()},
            "one_hot": {c: [*values, OTHER] for c, values in self.categories.items()},
        }
