"""Issue 25, done when: the real `predict` on 100 good digits plus every hostile file answers the 100, names each
bad one in one line, exits 2, stays under 1 GB and prints no traceback. Plus what needs TensorFlow or a killed
process: a damaged model file is retrained, Keras loads in safe mode within member caps, and a re-ingest killed
between its two renames loses nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset, read_split
from mnist_pipeline.data.versions import SET_ASIDE_PREFIX, clean_leftovers, current_version
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.modeling import serving
from mnist_pipeline.modeling.profiles import TrainConfig
from tests.hostile_files import HOSTILE
from tests.predict_support import draw_digits, train_champion

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("mnist-pipeline"))
MEMORY_LIMIT_KB = 1024 * 1024  # 1 GB, as ru_maxrss counts on Linux
# Runs a command as its only child and reports the child's peak resident memory with its output.
MEASURE = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=300)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
json.dump({"rc": done.returncode, "out": done.stdout, "err": done.stderr, "peak_kb": peak}, open(sys.argv[1], "w"))
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_champion(tmp_path_factory.getbasetemp())


def test_predict_on_every_hostile_file_and_100_good_digits(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    images, labels = draw_digits(100, seed=123)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image).save(folder / f"good-{index:03d}-label{label}.png")
    bad = {str(path): expected for path, expected in (make(folder) for make in HOSTILE.values())}
    too_long = str(folder / ("x" * 300 + ".png"))  # ENAMETOOLONG, not merely missing
    bad[too_long] = "File name too long"

    report = tmp_path / "measured.json"
    command = [CLI, "predict", "--format", "json", "--data-dir", str(data_dir), str(folder), too_long]
    subprocess.run([sys.executable, "-c", MEASURE, str(report), *command], check=True, timeout=360)
    done = json.loads(report.read_text())

    assert done["rc"] == 2, done["err"]
    assert "Traceback" not in done["err"]
    lines = done["err"].strip().splitlines()
    named = {line.removeprefix("mnist-pipeline: ").split(": ", 1)[0]: line for line in lines}
    assert len(lines) == len(bad) and set(named) == set(bad), done["err"]
    for path, expected in bad.items():
        assert expected in named[path], named[path]
    records = json.loads(done["out"])
    assert sorted(Path(record["input"]).name for record in records) == sorted(
        f"good-{index:03d}-label{label}.png" for index, label in enumerate(labels)
    )
    right = [record["label"] == int(Path(record["input"]).stem.rpartition("label")[2]) for record in records]
    assert np.mean(right) >= 0.9
    assert done["peak_kb"] < MEMORY_LIMIT_KB, f"predict peaked at {done['peak_kb'] / 1024:.0f} MB"


def small_dataset(rows: int, seed: int) -> RawDataset:
    images, labels = draw_digits(rows, seed=seed)
    cut = rows * 4 // 5
    return RawDataset(Split(images[:cut], labels[:cut]), Split(images[cut:], labels[cut:]), "npz", "test")


@pytest.mark.parametrize("damaged", [".keras", ".onnx"])
def test_a_model_file_that_does_not_open_is_retrained(damaged: str, tmp_path: Path) -> None:
    from mnist_pipeline.modeling.jobs import TrainingJob, run_training_job
    from mnist_pipeline.modeling.serving import Engine

    layout = DataLayout(tmp_path / "data")
    publish_dataset(small_dataset(200, seed=2), layout)
    config = TrainConfig(profile="test", epochs=1, batch_size=64)
    job = TrainingJob(
        "ann_no_hidden", "0123456789abcdef01234567", "e", None, config, None, 0, None, None, (28, 28), None
    )
    first = run_training_job(layout, job)
    assert not first.reused and run_training_job(layout, job).reused
    model = layout.model_file("ann_no_hidden", "0123456789abcdef01234567")
    broken = model.with_suffix(damaged)
    broken.write_bytes(broken.read_bytes()[:100])  # what a lost write-back leaves: a cut file under the right name

    again = run_training_job(layout, job)
    assert not again.reused
    assert serving.find_model_damage(model) is None
    assert Engine(model.with_suffix(".onnx")).logits(read_split(layout.split_file("test")).images).shape[1] == 10


def test_keras_fallback_loads_in_safe_mode_and_within_member_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import keras

    from mnist_pipeline.modeling.model_files import load_model

    path = tmp_path / "lambda.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)]).save(path)
    keras.saving.load_model(path, safe_mode=False)  # the control: the file loads when code may run
    with pytest.raises(DataFormatError, match="lambda"):
        load_model(path)

    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", bytes(64 * 2**20))  # 64 MB of zeros in ~64 KB
    monkeypatch.setattr(serving, "MAX_MODEL_MEMBER_BYTES", 32 * 2**20)
    with pytest.raises(DataFormatError, match=r"member model\.weights\.h5: expected a member of at most"):
        load_model(bomb)
    assert "model.weights.h5" in (serving.find_model_damage(bomb) or "")


KILL_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
import numpy as np
from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset

arrays = np.load(sys.argv[2])
dataset = RawDataset(Split(arrays["x_train"], arrays["y_train"]), Split(arrays["x_test"], arrays["y_test"]), "npz", "t")
rename = Path.rename

def rename_or_die(self, target):
    if self.name.startswith(".staging-"):  # the second rename: the old folder is already set aside
        os.kill(os.getpid(), signal.SIGKILL)
    return rename(self, target)

Path.rename = rename_or_die
publish_dataset(dataset, DataLayout(Path(sys.argv[1])))
"""


def test_a_reingest_killed_between_its_two_renames_loses_nothing(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    dataset = small_dataset(50, seed=4)
    publish_dataset(dataset, layout)
    version = layout.versions / current_version(layout)
    (version / "train.parquet").write_bytes(b"damaged by hand")  # the next ingest rewrites, swapping the folder
    before = {path.name: path.read_bytes() for path in version.iterdir()}
    source = tmp_path / "source.npz"
    np.savez(
        source,
        x_train=dataset.train.images,
        y_train=dataset.train.labels,
        x_test=dataset.test.images,
        y_test=dataset.test.labels,
    )

    killed = subprocess.run(
        [sys.executable, "-c", KILL_BETWEEN_RENAMES, str(layout.root), str(source)], capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    set_aside = layout.versions / f"{SET_ASIDE_PREFIX}{version.name}"
    assert not version.exists() and set_aside.is_dir()  # the crash window: the version is only the set-aside copy

    clean_leftovers(layout)  # what the next ingest does first, under the ingest lock
    assert {path.name: path.read_bytes() for path in version.iterdir()} == before
    publish_dataset(dataset, layout)  # and then it rewrites the damaged version properly
    np.testing.assert_array_equal(read_split(layout.split_file("train")).images, dataset.train.images)
    assert sorted(path.name for path in layout.versions.iterdir()) == [version.name]
    assert os.path.realpath(layout.root / "parquet") == str(version.resolve())


def test_the_batch_predict_scoring_answers_the_good_inputs_and_lists_each_hostile_one(
    data_dir: Path, tmp_path: Path
) -> None:
    from mnist_pipeline.predict.batch import build_batch_config, score_batch
    from mnist_pipeline.predict.model_choice import choose_model

    folder = tmp_path / "mixed"
    folder.mkdir()
    images, _ = draw_digits(10, seed=321)
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"good-{index}.png")
    bad = [make(folder)[0] for make in HOSTILE.values()]
    config = build_batch_config(input=str(folder), data_dir=str(data_dir), output_dir=str(tmp_path / "out"))
    output = tmp_path / "out" / "predictions.parquet"
    result, markdown = score_batch(choose_model(config.model, DataLayout(config.data_dir)), config, output, "hostile")
    assert len(read_table_rows(output)) == len(result.predictions.items) == 10
    assert sorted(name for name, _ in result.failures) == sorted(str(path) for path in bad)
    failed = markdown.split("## Failed inputs", 1)[1].strip().splitlines()
    assert len(failed) == len(bad) and all(line.startswith("- ") for line in failed)


def read_table_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()
