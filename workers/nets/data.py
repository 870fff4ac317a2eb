"""CIFAR-100 in its standard python-pickle format: reader, checker, tiny-dataset writer.

The format (https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-100 python version") is
a directory ``cifar-100-python/`` with three pickles written by Python 2:

- ``train`` / ``test``: dicts with ``b"data"`` (uint8 array N×3072: 1024 red, 1024
  green, 1024 blue values, row-major 32×32), ``b"fine_labels"`` and
  ``b"coarse_labels"`` (lists of int), ``b"filenames"`` and ``b"batch_label"``;
- ``meta``: ``b"fine_label_names"`` and ``b"coarse_label_names"`` (lists of bytes).

They are read with ``pickle.load(f, encoding="bytes")``.  Nothing is ever downloaded:
the directory is named in settings (``SWEEPS_DATA__CIFAR100_DIR``) and may be either
``cifar-100-python`` itself or its parent.  :func:`write_tiny_cifar100` writes a small
synthetic dataset in exactly this format (each class a fixed low-frequency colour
pattern plus noise, so it is learnable) for tests and for trying the workload.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = ("train", "test", "meta")
NUM_CLASSES = 100
IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class Cifar100:
    x_train: np.ndarray  # uint8, N×3×32×32
    y_train: np.ndarray  # int64 fine labels
    x_test: np.ndarray
    y_test: np.ndarray
    label_names: tuple[str, ...]


def resolve_cifar100_dir(path: str | Path) -> Path:
    """The directory holding train/test/meta, or ``FileNotFoundError`` saying why."""
    root = Path(path).expanduser()
    for candidate in (root, root / "cifar-100-python"):
        if all((candidate / name).is_file() for name in FILES):
            return candidate
    if not root.exists():
        raise FileNotFoundError(f"CIFAR-100 directory {root} does not exist")
    raise FileNotFoundError(
        f"{root} is not a CIFAR-100 python directory: expected the files "
        f"{', '.join(FILES)} in it or in {root / 'cifar-100-python'}"
    )


def cifar100_problem(path: str | None) -> str | None:
    """None when ``path`` is a readable CIFAR-100 directory, else the reason it is not."""
    if not path:
        return "no CIFAR-100 directory is configured"
    try:
        resolve_cifar100_dir(path)
    except FileNotFoundError as exc:
        return str(exc)
    return None


def _get(record: dict, key: str):  # noqa: ANN202 - values of an untyped pickle
    return record[key.encode()] if key.encode() in record else record[key]


def _read(path: Path) -> dict:
    with path.open("rb") as stream:
        return pickle.load(stream, encoding="bytes")


def _split(record: dict) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(_get(record, "data"), dtype=np.uint8).reshape(-1, *IMAGE_SHAPE)
    labels = np.asarray(_get(record, "fine_labels"), dtype=np.int64)
    if len(data) != len(labels):
        raise ValueError(f"{len(data)} images but {len(labels)} labels")
    return data, labels


@functools.lru_cache(maxsize=2)
def _load(directory: str, stamp: float) -> Cifar100:
    root = Path(directory)
    x_train, y_train = _split(_read(root / "train"))
    x_test, y_test = _split(_read(root / "test"))
    names = tuple(
        n.decode() if isinstance(n, bytes) else str(n)
        for n in _get(_read(root / "meta"), "fine_label_names")
    )
    return Cifar100(x_train, y_train, x_test, y_test, names)


def load_cifar100(path: str | Path) -> Cifar100:
    """Read (and cache per process, keyed by the train file's mtime) a CIFAR-100 dir."""
    root = resolve_cifar100_dir(path)
    return _load(str(root.resolve()), (root / "train").stat().st_mtime)


def _synthetic_images(
    labels: np.ndarray, patterns: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    images = patterns[labels].astype(np.float64)
    images += rng.normal(0.0, 40.0, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8).reshape(len(labels), -1)


def write_tiny_cifar100(
    root: str | Path,
    *,
    per_class_train: int = 5,
    per_class_test: int = 2,
    num_classes: int = NUM_CLASSES,
    seed: int = 0,
) -> Path:
    """Write a synthetic CIFAR-100 (python format) under ``root/cifar-100-python``."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, size=(num_classes, 3, 8, 8)).astype(np.float64)
    patterns = np.kron(low, np.ones((1, 1, 4, 4)))  # 8×8 colour blocks → 32×32
    target = Path(root) / "cifar-100-python"
    target.mkdir(parents=True, exist_ok=True)
    for name, per_class in (("train", per_class_train), ("test", per_class_test)):
        labels = np.repeat(np.arange(num_classes), per_class)
        labels = labels[rng.permutation(len(labels))]
        record = {
            b"batch_label": f"{name} batch (synthetic)".encode(),
            b"filenames": [f"synthetic_{name}_{i:06d}.png".encode() for i in range(len(labels))],
            b"fine_labels": labels.tolist(),
            b"coarse_labels": (labels // 5).tolist(),
            b"data": _synthetic_images(labels, patterns, rng),
        }
        with (target / name).open("wb") as stream:
            pickle.dump(record, stream, protocol=2)
    meta = {
        b"fine_label_names": [f"class_{i:02d}".encode() for i in range(num_classes)],
        b"coarse_label_names": [f"super_{i:02d}".encode() for i in range(num_classes // 5)],
    }
    with (target / "meta").open("wb") as stream:
        pickle.dump(meta, stream, protocol=2)
    return target
