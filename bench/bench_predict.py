"""Benchmark `mnist-pipeline predict`: accuracy on real test digits saved in three styles, latency, throughput.

Needs a champion (`mnist-pipeline run --models cnn`) and the ingested test split under --data-dir. Writes
--count test digits as image files in three styles into a folder, adds a corrupt .png, and runs the real CLI:
    plain      28x28 grayscale PNG, as MNIST stores them
    inverted   dark ink on white, upscaled to 112x112, JPEG
    tinted     light ink on a tinted RGB background, off-centre on an 80x60 canvas, PNG
Then: cold single-image latency (a fresh `mnist-pipeline predict` process, median of --repeats) and throughput
on 10 000 images after the model's ONNX engine is loaded (from PNG files, and from the Parquet split).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_pipeline import defaults
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_split
from mnist_pipeline.modeling.registry import DEFAULT_PREDICT_MODEL
from mnist_pipeline.modeling.serving import open_engine
from mnist_pipeline.predict.answer import predict_images
from mnist_pipeline.predict.inputs import load_inputs
from mnist_pipeline.predict.model_choice import choose_model

CLI = str(Path(sys.executable).with_name("mnist-pipeline"))
STYLES = ("plain", "inverted", "tinted")


def write_styled(digit: np.ndarray, style: str, path: Path, rng: np.random.Generator) -> None:
    """Save one 28x28 MNIST digit in `style` (see the module docstring)."""
    if style == "plain":
        Image.fromarray(digit).save(path)
        return
    if style == "inverted":
        big = Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC)
        Image.fromarray(255 - np.asarray(big)).save(path, quality=85)
        return
    canvas = np.empty((60, 80, 3), dtype=np.float64)
    canvas[:] = rng.integers(40, 140, size=3)
    ink = np.array([250, 240, 200], dtype=np.float64)
    top, left = int(rng.integers(0, 60 - 28)), int(rng.integers(0, 80 - 28))
    alpha = digit[..., np.newaxis] / 255
    region = canvas[top : top + 28, left : left + 28]
    canvas[top : top + 28, left : left + 28] = region * (1 - alpha) + ink * alpha
    Image.fromarray(np.rint(canvas).astype(np.uint8)).save(path)


def write_folder(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    for style in STYLES:
        (folder / style).mkdir(parents=True)
        suffix = ".jpg" if style == "inverted" else ".png"
        for index, (digit, label) in enumerate(zip(images, labels, strict=True)):
            write_styled(digit, style, folder / style / f"{index:05d}-label{label}{suffix}", rng)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")


def check_accuracy(folder: Path, data_dir: Path) -> dict[str, object]:
    """Run the CLI on the folder; per-style accuracy, stderr lines, exit code."""
    done = subprocess.run(
        [CLI, "predict", "--format", "json", "--data-dir", str(data_dir), str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    records = json.loads(done.stdout)
    right = dict.fromkeys(STYLES, 0)
    seen = dict.fromkeys(STYLES, 0)
    for record in records:
        path = Path(record["input"])
        style, label = path.parent.name, int(path.stem.rpartition("label")[2])
        seen[style] += 1
        right[style] += record["label"] == label
    return {
        "accuracy": {style: right[style] / seen[style] for style in STYLES},
        "answered": seen,
        "stderr": done.stderr.strip().splitlines(),
        "exit_code": done.returncode,
        "model_key": records[0]["model_key"],
    }


def cold_latency(image: Path, data_dir: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([CLI, "predict", "--data-dir", str(data_dir), str(image)], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def throughput(data_dir: Path, images: np.ndarray, work: Path, repeats: int) -> dict[str, float]:
    """Images/s after the model is loaded: from 10 000 PNG files (read + prepare + predict) and from Parquet."""
    choice = choose_model(DEFAULT_PREDICT_MODEL, DataLayout(data_dir))
    engine = open_engine(DataLayout(data_dir), choice.model, choice.key)
    files = work / "throughput"
    files.mkdir()
    for index, digit in enumerate(images):
        Image.fromarray(digit).save(files / f"{index:05d}.png")
    parquet = DataLayout(data_dir).split_file("test")
    rates: dict[str, list[float]] = {"png_files": [], "parquet_split": []}
    for _ in range(repeats):
        for name, source in (("png_files", files), ("parquet_split", parquet)):
            started = time.perf_counter()
            loaded = load_inputs([source], engine.input_shape)
            predictions = predict_images(engine, loaded.images, loaded.names)
            rates[name].append(len(predictions) / (time.perf_counter() - started))
    for _ in range(repeats):
        started = time.perf_counter()
        engine.logits(images)
        rates.setdefault("engine_only", []).append(len(images) / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=defaults.DATA_DIR)
    parser.add_argument("--count", type=int, default=300, help="test digits per style (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    test = read_split(DataLayout(args.data_dir).split_file("test"))
    picks = np.random.default_rng(13).choice(test.rows, size=args.count, replace=False)
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        work = Path(tmp)
        write_folder(work / "digits", test.images[picks], test.labels[picks])
        result = check_accuracy(work / "digits", args.data_dir)
        latency = cold_latency(next((work / "digits" / "plain").iterdir()), args.data_dir, args.repeats)
        rates = throughput(args.data_dir, test.images, work, args.repeats)
    print(json.dumps({**result, "cold_latency_s": latency, "images_per_s": rates}, indent=2))
    print(
        f"accuracy per style ({args.count} each): "
        + ", ".join(f"{k} {100 * v:.1f} %" for k, v in result["accuracy"].items())
    )
    print(f"stderr lines: {len(result['stderr'])}; exit code {result['exit_code']}")
    print(f"cold single image: median {statistics.median(latency):.2f} s, max {max(latency):.2f} s (goal < 2 s)")
    print("throughput after load: " + ", ".join(f"{k} {v:.0f} images/s" for k, v in rates.items()) + " (goal >= 2000)")


if __name__ == "__main__":
    main()
