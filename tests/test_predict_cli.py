"""`mnist-pipeline predict` as a person runs it: real files, a real trained champion, the real CLI process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.store import write_split
from mnist_pipeline.files.atomic import write_json_atomic
from tests.predict_support import STYLE_SUFFIX, draw_digits, train_champion, write_styled

CLI = str(Path(sys.executable).with_name("mnist-pipeline"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_champion(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Held-out drawn digits in every style, a corrupt PNG, a blank image, a text file, nested folders."""
    folder = tmp_path_factory.mktemp("mixed")
    images, labels = draw_digits(20, seed=99)
    for style, suffix in STYLE_SUFFIX.items():
        (folder / style).mkdir()
        for index, (digit, label) in enumerate(zip(images, labels, strict=True)):
            write_styled(digit, style, folder / style / f"{index:02d}-label{label}{suffix}")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    Image.new("RGB", (40, 30), (255, 255, 255)).save(folder / "empty.png")
    (folder / "notes.txt").write_text("not an image, and not a suffix predict looks at")
    return folder, labels


def predict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "predict", *args], capture_output=True, text=True, timeout=120, check=False)


def test_json_on_a_mixed_folder_answers_every_good_image_and_names_each_bad_one(
    data_dir: Path, mixed_folder: tuple[Path, np.ndarray]
) -> None:
    folder, _ = mixed_folder
    done = predict("--format", "json", "--data-dir", str(data_dir), str(folder))
    assert done.returncode == 2
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2, done.stderr
    assert errors[0].startswith(f"mnist-pipeline: {folder / 'corrupt.png'}: expected an image Pillow can read")
    assert errors[1].startswith(f"mnist-pipeline: {folder / 'empty.png'}: expected a digit standing out")
    assert "Traceback" not in done.stderr
    records = json.loads(done.stdout)
    assert len(records) == 20 * len(STYLE_SUFFIX)
    right: dict[str, list[bool]] = {style: [] for style in STYLE_SUFFIX}
    for record in records:
        path = Path(record["input"])
        right[path.parent.name].append(record["top3"][0]["label"] == int(path.stem.rpartition("label")[2]))
        assert set(record) == {"input", "label", "probability", "top3", "unsure", "model", "model_key", "model_path"}
        assert record["model_key"] == "drawn-digits"
        assert record["label"] == (None if record["unsure"] else record["top3"][0]["label"])
        assert record["top3"][0]["probability"] == record["probability"]
        assert 0.0 <= record["top3"][2]["probability"] <= record["top3"][1]["probability"] <= record["probability"]
    accuracy = {style: float(np.mean(hits)) for style, hits in right.items()}
    assert min(accuracy.values()) >= 0.9, accuracy


def test_batches_npz_idx_and_parquet_are_answered_per_row(data_dir: Path, tmp_path: Path) -> None:
    images, labels = draw_digits(10, seed=3)
    np.savez(tmp_path / "digits.npz", x=images.reshape(10, 784))
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header + images.tobytes())
    write_split(tmp_path / "test.parquet", Split(images=images, labels=labels))
    done = predict("--format", "csv", "--data-dir", str(data_dir), *(str(p) for p in sorted(tmp_path.iterdir())))
    assert done.returncode == 0, done.stderr
    rows = done.stdout.strip().splitlines()
    assert rows[0] == "input,label,probability,top3,unsure,model,model_key,model_path"
    assert len(rows) == 1 + 30
    for source in ("digits.npz", "t10k-images-idx3-ubyte", "test.parquet"):
        answered = [row.split(",") for row in rows[1:] if Path(row.split(",")[0].rpartition("[")[0]).name == source]
        assert [row[0].rpartition("[")[2] for row in answered] == [f"{i}]" for i in range(10)]
        best = [int(row[3].split(":")[0]) for row in answered]
        said = ["" if row[4] == "True" else str(guess) for row, guess in zip(answered, best, strict=True)]
        assert [row[1] for row in answered] == said
        assert np.mean([guess == label for guess, label in zip(best, labels, strict=True)]) >= 0.9


def test_table_names_the_model_and_missing_paths_fail_alone(
    data_dir: Path, mixed_folder: tuple[Path, np.ndarray]
) -> None:
    folder, labels = mixed_folder
    one = folder / "plain" / f"00-label{labels[0]}.png"
    done = predict("--data-dir", str(data_dir), str(one), str(folder / "missing.png"))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"mnist-pipeline: {folder / 'missing.png'}: expected an image file or folder, found no such path"
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("model: cnn champion from run run-drawn (key drawn-digits, file ")
    assert lines[2].split()[:2] == [str(one), str(labels[0])]


def test_a_strict_target_leaves_images_unanswered_and_answer_all_answers_them(
    data_dir: Path, mixed_folder: tuple[Path, np.ndarray]
) -> None:
    folder = mixed_folder[0] / "plain"
    strict = predict("--target-error", "0.000001", "--data-dir", str(data_dir), str(folder))
    last = strict.stdout.splitlines()[-1]
    unsure = sum(" not sure " in line for line in strict.stdout.splitlines()[2:-1])
    assert unsure >= 5 and last.startswith(f"answered {20 - unsure} of 20, {unsure} not sure (probability under ")
    assert last.endswith(", the threshold for a 0.0001 % target error)")
    records = json.loads(predict("--answer-all", "--format", "json", "--data-dir", str(data_dir), str(folder)).stdout)
    assert len(records) == 20 and all(r["label"] == r["top3"][0]["label"] and not r["unsure"] for r in records)
    refused = predict("--target-error", "2", str(folder))
    assert refused.returncode == 2 and "--target-error: expected an error rate between 0 and 1" in refused.stderr


def test_without_a_champion_it_says_how_to_get_one(tmp_path: Path, mixed_folder: tuple[Path, np.ndarray]) -> None:
    done = predict("--model", "ann_no_hidden", "--data-dir", str(tmp_path / "data"), str(mixed_folder[0]))
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "expected a champion for model 'ann_no_hidden', found none" in done.stderr
    assert "mnist-pipeline run" in done.stderr


def test_run_option_answers_with_that_runs_model(
    data_dir: Path, tmp_path: Path, mixed_folder: tuple[Path, np.ndarray]
) -> None:
    model_path = data_dir / "models" / "cnn" / "drawn-digits.keras"  # a run's model is found by name and key
    metrics = {"models": {"cnn": {"key": "drawn-digits", "model_path": "/moved/elsewhere/drawn-digits.keras"}}}
    write_json_atomic(tmp_path / "reports" / "runs" / "run-x" / "metrics.json", metrics)
    one = next((mixed_folder[0] / "plain").iterdir())
    reports = str(tmp_path / "reports")
    done = predict(
        "--run", "run-x", "--reports-dir", reports, "--data-dir", str(data_dir), "--format", "json", str(one)
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)[0]
    assert (answer["model_key"], answer["model_path"]) == ("drawn-digits", str(model_path))
    missing = predict("--run", "run-y", "--reports-dir", str(tmp_path / "reports"), str(one))
    assert missing.returncode == 2
    assert "run-y/metrics.json: expected the metrics.json of run run-y, found no such file" in missing.stderr


def test_cli_import_stays_free_of_tensorflow() -> None:
    code = "import sys, cli.main; print(any(m.startswith(('tensorflow', 'keras')) for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
