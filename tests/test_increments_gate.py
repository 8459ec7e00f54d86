"""The increment gate's core, on small synthetic batches: sources, blocking checks, accept/refuse, growing versions.

The gate's steps run as the `increment-gate` flow runs them (`judge`), with real Parquet and real Great
Expectations; the flow itself, its artifact and its event are tested in test_increments_flow.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mnist_pipeline.data.dataset import Split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import read_manifest, read_split, split_to_table, write_split
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.increments.gate import DriftMode, check_batch, decide, measure_drift, sample_split
from mnist_pipeline.increments.hashes import hash_images, is_test_part, list_increments, read_index
from mnist_pipeline.increments.inbox import REASONS_FILE, land_batch, list_pending, read_pending, refuse_batch
from mnist_pipeline.increments.sources import read_labelled_batch
from mnist_pipeline.increments.store import accept_batch, read_increment_manifest, read_part
from mnist_pipeline.increments.versions import grow_version, ingest_and_publish_grown
from mnist_pipeline.predict.preprocess import to_mnist_style_batch
from mnist_pipeline.validation.validate import validate_dataset
from tests.hostile_files import write_garbage_exif_jpeg, write_pixel_bomb_png, write_postscript_png
from tests.increment_support import draw_strokes, publish_base, write_image_folder

# Tests that chain whole stages (publish a base, gate batches, grow, validate the grown version): e2e, by tier.
CHAINED_STAGES = pytest.mark.e2e


def judge(layout: DataLayout, source: Path, min_images: int = 10, drift: DriftMode = "report") -> tuple[str, list[str]]:
    """Land `source` and gate it as the flow does: checks, drift when they pass, then accept or refuse."""
    batch_id = land_batch(layout, read_labelled_batch(source), str(source), None)
    batch = read_pending(layout, batch_id)
    checks = check_batch(layout, layout, batch, min_images)
    measured = measure_drift(layout, layout, batch) if all(check.success for check in checks) else None
    reasons = decide(checks, measured.report if measured else None, drift)
    if reasons:
        refuse_batch(layout, batch_id, reasons)
    else:
        accept_batch(layout, batch, checks, measured.report.to_dict() if measured else None)
    return batch_id, reasons


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file that a refusal must leave alone: datasets, models, champions, increments."""
    files = {}
    for top in ("datasets", "models", "increments", "parquet"):
        base = root / top
        paths = [base] if base.is_file() else sorted(base.rglob("*")) if base.exists() else []
        files |= {str(path): (path.read_bytes(), path.stat().st_mtime_ns) for path in paths if path.is_file()}
    link = root / "parquet"
    files["parquet-link"] = (str(link.readlink()).encode() if link.is_symlink() else b"", 0)
    return files


@pytest.fixture
def base(tmp_path: Path) -> DataLayout:
    layout, _ = publish_base(tmp_path / "data")
    return layout


def write_npz(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    np.savez(path, x=images, y=labels)
    return path


def test_an_image_folder_of_any_size_and_colour_is_accepted(base: DataLayout, tmp_path: Path) -> None:
    images, labels = draw_strokes(40, seed=5, side=48)
    folder = write_image_folder(tmp_path / "folder", images, labels)
    rgb = Image.fromarray(255 - images[0]).convert("RGB").resize((64, 80))  # dark ink on white, another size
    rgb.save(folder / "0" / "photo.jpg", quality=95)
    batch_id, reasons = judge(base, folder)
    assert reasons == []
    manifest = read_increment_manifest(base, batch_id)
    assert manifest["id"] == batch_id and sum(manifest["rows"].values()) == 41
    assert sum(manifest["labels"]["train"]) + sum(manifest["labels"]["test"]) == 41
    assert manifest["drift"]["tests"], "the drift report goes into the manifest"
    parts = [read_part(base, batch_id, part) for part in ("train", "test")]
    assert all(part.images.shape[1:] == (28, 28) for part in parts if part.rows)
    assert not list_pending(base) and list_increments(read_index(base)) == [batch_id]


def test_an_npz_is_accepted_and_prepared_as_predict_prepares_it(base: DataLayout, tmp_path: Path) -> None:
    images, labels = draw_strokes(30, seed=6, side=28)
    batch_id, reasons = judge(base, write_npz(tmp_path / "batch.npz", images, labels))
    assert reasons == []
    stored = np.concatenate([read_part(base, batch_id, part).images for part in ("train", "test")])
    expected, _ = to_mnist_style_batch(images)
    assert {image.tobytes() for image in stored} == {image.tobytes() for image in expected}


def test_idx_pair_and_parquet_sources_are_read(tmp_path: Path) -> None:
    images, labels = draw_strokes(12, seed=7, side=28)
    folder = tmp_path / "idx"
    folder.mkdir()
    header = bytes([0, 0, 8, 3]) + b"".join(side.to_bytes(4, "big") for side in images.shape)
    (folder / "digits-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    (folder / "digits-labels-idx1-ubyte").write_bytes(
        bytes([0, 0, 8, 1]) + len(labels).to_bytes(4, "big") + labels.astype(np.uint8).tobytes()
    )
    from_folder = read_labelled_batch(folder)
    from_file = read_labelled_batch(folder / "digits-images-idx3-ubyte.gz")
    write_split(tmp_path / "batch.parquet", Split(images, labels))
    from_parquet = read_labelled_batch(tmp_path / "batch.parquet")
    tall = np.zeros((12, 40, 28), dtype=np.uint8)
    tall[:, 6:34] = images
    write_split(tmp_path / "tall.parquet", Split(tall, labels))
    from_tall = read_labelled_batch(tmp_path / "tall.parquet")
    assert from_tall.raw_height.tolist() == [40] * 12 and from_tall.raw_width.tolist() == [28] * 12
    for batch in (from_folder, from_file, from_parquet):
        assert batch.rows == 12 and batch.problems == []
        assert batch.labels.tolist() == labels.tolist()
        assert np.array_equal(batch.images, from_folder.images)


def test_unknown_sources_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="found no such path"):
        read_labelled_batch(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="found no images"):
        read_labelled_batch(tmp_path / "empty")
    np.savez(tmp_path / "no-labels.npz", x=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataFormatError, match="expected arrays x, y"):
        read_labelled_batch(tmp_path / "no-labels.npz")


def _blank_image(folder: Path) -> None:
    Image.new("L", (30, 30), color=200).save(folder / "3" / "blank.png")


def _corrupt_file(folder: Path) -> None:
    (folder / "4" / "broken.png").write_bytes(b"\x89PNG not really")


def _foreign_folder(folder: Path) -> None:
    (folder / "ten").mkdir()


def _wide_image(folder: Path) -> None:
    picture = Image.new("L", (10_001, 12))
    picture.paste(255, (4000, 2, 4100, 10))
    picture.save(folder / "1" / "wide.png")


def _relabelled_copy(folder: Path) -> None:
    (folder / "6" / "copy.png").write_bytes(sorted((folder / "5").iterdir())[0].read_bytes())


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (_blank_image, "empty images: 1 of 21 images without ink (blank) (e.g. 3/blank.png)"),
        (_corrupt_file, "unreadable inputs: 1 inputs could not be read"),
        (_foreign_folder, "unreadable inputs: 1 inputs could not be read"),
        (_wide_image, "shapes: 1 of 21 images with a side of 10001 (e.g. 1/wide.png)"),
        (_relabelled_copy, "duplicates in the batch: 2 of 21 images the same image under different labels (e.g. 5/"),
    ],
    ids=["empty", "unreadable", "foreign-folder", "shape", "one-image-two-labels"],
)
def test_an_image_folder_failing_one_check_is_refused_and_nothing_changes(
    base: DataLayout, tmp_path: Path, change, check: str
) -> None:
    images, labels = draw_strokes(20, seed=8)
    folder = write_image_folder(tmp_path / "folder", images, labels)
    change(folder)
    before = snapshot(base.root)
    batch_id, reasons = judge(base, folder)
    assert len(reasons) == 1 and reasons[0].startswith(check)
    assert change is not _relabelled_copy or "6/copy.png" in reasons[0]  # both files are named
    assert snapshot(base.root) == before
    refused = base.refused / batch_id
    assert (refused / REASONS_FILE).read_text().splitlines() == reasons
    assert (refused / "batch.parquet").is_file() and not (base.inbox / batch_id).exists()
    assert not base.increments.exists()


def test_a_repeat_with_the_same_label_is_kept_once_and_the_report_says_so(base: DataLayout, tmp_path: Path) -> None:
    """A real batch was once refused whole for two byte-identical files with the same label."""
    images, labels = draw_strokes(20, seed=8)
    folder = write_image_folder(tmp_path / "folder", images, labels)
    original = sorted((folder / "5").iterdir())[0]
    (folder / "5" / "copy.png").write_bytes(original.read_bytes())
    (folder / "5" / "copy2.png").write_bytes(original.read_bytes())
    batch_id, reasons = judge(base, folder)
    assert reasons == []
    manifest = json.loads((base.increments / batch_id / "manifest.json").read_text())
    assert sum(manifest["rows"].values()) == 20
    duplicates = next(line for line in manifest["checks"] if line.startswith("duplicates in the batch"))
    assert duplicates.endswith("; 2 repeats of an image with the same label dropped (5/copy.png, 5/copy2.png)")


@pytest.mark.parametrize(
    ("images_change", "labels_change", "check"),
    [
        (lambda x: x, lambda y: np.where(np.arange(len(y)) < 2, 10, y), "labels: 2 of 20 images with label 10"),
        (
            lambda x: np.where(np.arange(len(x))[:, None, None] == 0, x.astype(np.int16) + 300, x),
            lambda y: y,
            "pixel range: 1 of 20 images with pixel values 555 (e.g. row 0)",
        ),
        (lambda x: x[:5], lambda y: y[:5], "images: only 5 images; expected at least 10 images"),
    ],
    ids=["labels", "pixel-range", "min-images"],
)
def test_an_npz_failing_one_check_is_refused_and_nothing_changes(
    base: DataLayout, tmp_path: Path, images_change, labels_change, check: str
) -> None:
    images, labels = draw_strokes(20, seed=9, side=28)
    path = write_npz(tmp_path / "batch.npz", images_change(images), labels_change(labels))
    before = snapshot(base.root)
    _, reasons = judge(base, path)
    assert len(reasons) == 1 and reasons[0].startswith(check), reasons
    assert snapshot(base.root) == before


def test_mnist_test_images_are_refused_as_leakage(base: DataLayout, tmp_path: Path) -> None:
    test_images = read_split(base.split_file("test"))
    fresh, fresh_labels = draw_strokes(20, seed=10)
    images = np.concatenate([to_mnist_style_batch(fresh)[0], test_images.images[:3]])
    labels = np.concatenate([fresh_labels, test_images.labels[:3]])
    before = snapshot(base.root)
    _, reasons = judge(base, write_npz(tmp_path / "leak.npz", images, labels))
    assert reasons == [
        "test leakage (MNIST test): 3 of 23 images equal to an MNIST test image (e.g. row 20, row 21, row 22); "
        "expected no image of the MNIST test split"
    ]
    assert snapshot(base.root) == before


def test_a_batch_added_again_is_refused_as_duplicate_and_its_test_part_as_leakage(
    base: DataLayout, tmp_path: Path
) -> None:
    images, labels = draw_strokes(30, seed=11)
    folder = write_image_folder(tmp_path / "folder", images, labels)
    first, reasons = judge(base, folder)
    assert reasons == []
    test_rows = read_part(base, first, "test").rows
    before = snapshot(base.root)
    _, reasons = judge(base, folder)
    assert snapshot(base.root) == before
    assert [reason.split(":")[0] for reason in reasons] == [
        "duplicates of accepted images",
        "test leakage (increments' test parts)",
    ]
    assert reasons[0].startswith("duplicates of accepted images: 30 of 30 images")
    assert reasons[1].startswith(f"test leakage (increments' test parts): {test_rows} of 30 images")


@CHAINED_STAGES
def test_the_split_depends_only_on_content(tmp_path: Path) -> None:
    images, labels = draw_strokes(200, seed=12, side=28)
    order = np.random.default_rng(0).permutation(len(images))
    parts = []
    for name, (x, y) in {"forward": (images, labels), "shuffled": (images[order], labels[order])}.items():
        layout, _ = publish_base(tmp_path / name)
        batch_id, reasons = judge(layout, write_npz(tmp_path / f"{name}.npz", x, y))
        assert reasons == []
        parts.append(
            {part: set(hash_images(read_part(layout, batch_id, part).images).tolist()) for part in ("train", "test")}
        )
    assert parts[0] == parts[1]
    shas = hash_images(to_mnist_style_batch(images)[0])
    assert parts[0]["test"] == set(shas[is_test_part(shas)].tolist())
    assert 0.1 < len(parts[0]["test"]) / len(images) < 0.3


def test_drift_block_refuses_a_shifted_batch(base: DataLayout, tmp_path: Path) -> None:
    images, labels = draw_strokes(40, seed=13)  # strokes against block digits: every shape statistic drifts
    _, reasons = judge(base, write_npz(tmp_path / "shifted.npz", images, labels), drift="block")
    assert reasons and all(reason.startswith("drift (--drift block): ") for reason in reasons)


@CHAINED_STAGES
def test_grown_versions_name_base_parent_increments_and_pass_the_gate(tmp_path: Path) -> None:
    layout, base_fingerprint = publish_base(tmp_path / "data")
    untouched = grow_version(layout, base_fingerprint)
    assert not untouched.written and untouched.manifest["fingerprint"] == base_fingerprint
    base_manifest = read_manifest(layout)
    ids = []
    for seed in (14, 15):
        images, labels = draw_strokes(50, seed=seed)
        batch_id, reasons = judge(layout, write_npz(tmp_path / f"{seed}.npz", images, labels))
        assert reasons == []
        ids.append(batch_id)
    grown = grow_version(layout, base_fingerprint)
    manifest = grown.manifest
    assert grown.written
    assert (manifest["base"], manifest["parent"], manifest["increments"]) == (base_fingerprint, base_fingerprint, ids)
    parts = {part: [read_part(layout, batch_id, part) for batch_id in ids] for part in ("train", "test")}
    assert manifest["splits"]["train"]["rows"] == 600 + sum(part.rows for part in parts["train"])
    assert manifest["splits"]["new"]["rows"] == sum(part.rows for part in parts["test"])
    assert manifest["increment_rows"] == {part: sum(split.rows for split in parts[part]) for part in ("train", "test")}
    assert manifest["splits"]["test"] == base_manifest["splits"]["test"]
    pinned = layout.pin(manifest["fingerprint"])
    new = read_split(pinned.split_file("new"))
    assert np.array_equal(new.images, np.concatenate([part.images for part in parts["test"]]))
    report = validate_dataset(pinned)
    assert report.success, [check.message for check in report.failures()]
    assert {check.split for check in report.checks} >= {"train", "test", "new"}


@CHAINED_STAGES
def test_ingest_publishes_the_grown_version(synthetic_npz: Path, tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    result, report = ingest_and_publish_grown(f"npz:{synthetic_npz}", layout)
    assert report.success and "increments" not in result.manifest
    images, labels = draw_strokes(30, seed=16)
    batch_id, reasons = judge(layout, write_npz(tmp_path / "batch.npz", images, labels))
    assert reasons == []
    result, report = ingest_and_publish_grown(f"npz:{synthetic_npz}", layout)
    assert report.success, [check.message for check in report.failures()]
    assert read_manifest(layout)["increments"] == [batch_id]
    assert pq.ParquetFile(layout.split_file("new")).metadata.num_rows == read_part(layout, batch_id, "test").rows


def test_hostile_files_in_a_source_are_problem_lines_or_one_error_not_a_crash(tmp_path: Path) -> None:
    """Pictures whose parsers fail in any way (garbage EXIF, PostScript named .png, a pixel bomb) are their
    batch's problem lines; an array of huge pictures is refused from its header, before it is prepared."""
    folder = write_image_folder(tmp_path / "folder", *draw_strokes(3, seed=5))
    for write in (write_garbage_exif_jpeg, write_postscript_png, write_pixel_bomb_png):
        write(folder / "2")
    batch = read_labelled_batch(folder)
    assert batch.rows == 3
    assert len(batch.problems) == 3
    assert all(problem.count("\n") == 0 and "/2/" in problem for problem in batch.problems)
    huge = write_npz(tmp_path / "huge.npz", np.zeros((1, 4200, 4200), np.uint8), np.zeros(1, np.int64))
    with pytest.raises(DataFormatError, match="pixels each"):
        read_labelled_batch(huge)


def test_a_batch_that_would_unbalance_the_train_split_is_refused(base: DataLayout, tmp_path: Path) -> None:
    """600 base images of ten even classes plus a batch of 300 threes: the grown train split would hold ~36 %
    threes, which the dataset gate refuses on every later run, so the increment gate refuses the batch now."""
    images, _ = draw_strokes(300, seed=17, side=28)
    before = snapshot(base.root)
    _, reasons = judge(base, write_npz(tmp_path / "threes.npz", images, np.full(300, 3)))
    assert len(reasons) == 1 and reasons[0].startswith("class shares: 1 classes out of bounds (digit 3: 3"), reasons
    assert snapshot(base.root) == before


def test_the_class_shares_count_accepted_increments_the_version_does_not_hold(base: DataLayout, tmp_path: Path) -> None:
    """Two batches of threes, each within bounds alone against the base; together they are not. The second is
    checked against the base version (as a pipeline run checks it), which does not hold the first yet."""
    ids = []
    for seed in (18, 19):  # 120 images, 100 of them threes: ~20 % threes after the first, ~28 % after both
        images, _ = draw_strokes(120, seed=seed, side=28)
        labels = np.where(np.arange(120) < 100, 3, np.arange(120) % 10)
        ids.append(judge(base, write_npz(tmp_path / f"{seed}.npz", images, labels)))
    assert ids[0][1] == []
    assert [reason.split(":")[0] for reason in ids[1][1]] == ["class shares"]


def test_preprocessing_failures_other_than_no_ink_are_problem_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MemoryError while preparing one picture is that input's problem line (the batch then fails the
    unreadable-inputs check), never a blank image."""
    from mnist_pipeline.predict import preprocess

    prepare, calls = preprocess.to_mnist_style, []

    def fail_first(image: np.ndarray, shape: tuple[int, int] = preprocess.MNIST_SHAPE) -> np.ndarray:
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError
        return prepare(image, shape)

    monkeypatch.setattr(preprocess, "to_mnist_style", fail_first)
    images, labels = draw_strokes(5, seed=20)  # 40x40: each one is prepared, none is MNIST-style as it is
    sources = (write_npz(tmp_path / "batch.npz", images, labels), write_image_folder(tmp_path / "f", images, labels))
    for source in sources:
        calls.clear()
        batch = read_labelled_batch(source)
        assert batch.rows == 4 and not batch.empty.any()
        (problem,) = batch.problems
        assert "MemoryError" in problem and problem.count("\n") == 0


def test_the_drift_reference_comes_from_a_few_row_groups_the_same_each_time(tmp_path: Path) -> None:
    rows = 2000
    images = np.zeros((rows, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(rows) % 256, np.arange(rows) // 256  # the row number
    path = tmp_path / "train.parquet"
    pq.write_table(split_to_table(Split(images, np.arange(rows) % 10)), path, row_group_size=100)
    sample = sample_split(str(path), limit=150, max_groups=3)
    again = sample_split(str(path), limit=150, max_groups=3)
    assert np.array_equal(sample.images, again.images) and np.array_equal(sample.labels, again.labels)
    row_numbers = sample.images[:, 0, 0].astype(int) + 256 * sample.images[:, 0, 1].astype(int)
    assert len(row_numbers) == 150 and len(set(row_numbers.tolist())) == 150
    assert len(set((row_numbers // 100).tolist())) <= 3
    assert (sample.labels == row_numbers % 10).all()
