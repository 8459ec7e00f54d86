"""Issue 25: hostile and broken inputs cost their own line only: never the other answers, memory, a backup or a path.

Each hostile file is made on the fly (tests/hostile_files.py). Where a file's hostility is not self-evident, a
control shows what the unguarded library call does with it, so the refusal is meaningful.
"""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from markdown_it import MarkdownIt
from PIL import Image, ImageOps

from mnist_pipeline.champion.registry import backup_path, force_promote, load_registry, rollback
from mnist_pipeline.champion.retention import collect_garbage
from mnist_pipeline.champion.rule import Candidate
from mnist_pipeline.data.dataset import RawDataset, Split
from mnist_pipeline.data.idx import read_idx
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.sources.local import read_npz_arrays
from mnist_pipeline.data.store import publish_dataset, read_split
from mnist_pipeline.data.versions import SET_ASIDE_PREFIX, clean_leftovers, current_version
from mnist_pipeline.errors import DataFormatError
from mnist_pipeline.markdown import escape_markdown
from mnist_pipeline.predict.inputs import IMAGE_FORMATS, IMAGE_SUFFIXES, load_inputs, read_image
from mnist_pipeline.predict.model_choice import choose_model
from tests.hostile_files import HOSTILE, write_garbage_exif_jpeg, write_overflowing_idx, write_postscript_png
from tests.predict_support import draw_digits

ROOT = Path(__file__).resolve().parent.parent


def write_good_digits(folder: Path, count: int) -> list[Path]:
    images, labels = draw_digits(count, seed=5)
    paths = [folder / f"good-{index:03d}-label{label}.png" for index, label in enumerate(labels)]
    for path, image in zip(paths, images, strict=True):
        Image.fromarray(image).save(path)
    return paths


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_file_is_one_line_and_the_others_are_answered(kind: str, tmp_path: Path) -> None:
    good = write_good_digits(tmp_path, 5)
    bad, expected = HOSTILE[kind](tmp_path)
    tracemalloc.start()
    try:
        loaded = load_inputs([tmp_path], (28, 28))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.names == [str(path) for path in good]
    assert [name for name, _ in loaded.failures] == [str(bad)]
    problem = loaded.failures[0][1]
    assert expected in problem and "\n" not in problem
    # Each bomb declares hundreds of MB or more; refusing it from its header costs a few MB of Python memory.
    assert peak < 16 * 2**20, f"reading {kind} peaked at {peak / 2**20:.0f} MB"


def test_garbage_exif_breaks_pillows_exif_parser_but_only_that_file(tmp_path: Path) -> None:
    path, _ = write_garbage_exif_jpeg(tmp_path)
    with Image.open(path) as image:
        decoded = image.copy()
    with pytest.raises(SyntaxError):  # the control: what predict met (after decoding, outside the read's `try`)
        ImageOps.exif_transpose(decoded)
    with pytest.raises(DataFormatError, match="expected EXIF metadata Pillow can read"):
        read_image(path)


def test_an_overflowing_idx_header_is_refused_by_exact_arithmetic(tmp_path: Path) -> None:
    path, _ = write_overflowing_idx(tmp_path)
    assert int(np.prod((2**31, 2**31, 4), dtype=np.int64)) == 0  # the control: numpy's product wraps to 0 bytes
    with pytest.raises(DataFormatError, match=r"found a declared size of 18,446,744,073,709,551,616 bytes"):
        read_idx(path)


def test_postscript_named_png_never_reaches_the_eps_plugin(tmp_path: Path) -> None:
    path, _ = write_postscript_png(tmp_path)
    with Image.open(path) as image:  # the control: Pillow alone goes by content, and calls it PostScript
        assert image.format == "EPS"
    with pytest.raises(DataFormatError, match="cannot identify image file"):
        read_image(path)


def test_the_format_allow_list_is_exactly_what_the_suffixes_promise() -> None:
    extensions = Image.registered_extensions()
    assert set(IMAGE_FORMATS) == {extensions[suffix] for suffix in IMAGE_SUFFIXES}
    assert "EPS" not in IMAGE_FORMATS and "PDF" not in IMAGE_FORMATS
    documented = (ROOT / "docs" / "predict.md").read_text()
    missing = sorted(suffix for suffix in IMAGE_SUFFIXES if f"`{suffix}`" not in documented)
    assert not missing, f"docs/predict.md does not list {missing}"


def test_npz_and_idx_readers_keep_exact_content_within_the_caps(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.uint16).reshape(3, 28, 28) % 251
    np.savez_compressed(tmp_path / "a.npz", x=images, images=np.asfortranarray(images.astype(np.float32)))
    arrays = read_npz_arrays(tmp_path / "a.npz", ("x", "images"))
    np.testing.assert_array_equal(arrays["x"], images)
    np.testing.assert_array_equal(arrays["images"], images)
    assert arrays["images"].flags.f_contiguous and arrays["x"].dtype == np.uint16
    with pytest.raises(DataFormatError, match="of at most 100 bytes"):
        read_npz_arrays(tmp_path / "a.npz", ("x",), max_bytes=100)


def test_a_batch_of_few_huge_images_is_refused_before_preprocessing(tmp_path: Path) -> None:
    np.savez(tmp_path / "wide.npz", x=np.zeros((1, 2, 2**23 + 1), dtype=np.uint8))  # 16 MB, 16.8 M pixels each
    loaded = load_inputs([tmp_path / "wide.npz"], (28, 28))
    assert loaded.failures == [
        (
            str(tmp_path / "wide.npz"),
            "expected images of at most 16,777,216 pixels each (scale them down first), "
            "found 8388609x2 = 16,777,218 pixels",
        )
    ]


def test_negative_parquet_sides_are_refused_cleanly(tmp_path: Path) -> None:
    path, expected = HOSTILE["negative-parquet"](tmp_path)
    with pytest.raises(DataFormatError, match=expected):
        read_split(path)


def make_candidate(key: str) -> Candidate:
    return Candidate(key, f"data/models/cnn/{key}.keras", f"run-{key}", "f" * 64, 100, 0.9, (0.9,) * 10)


def test_a_deleted_registry_with_its_backup_is_refused_and_the_backup_restores_the_previous_state(
    tmp_path: Path,
) -> None:
    layout = DataLayout(tmp_path / "data")
    registry = layout.registry
    force_promote(registry, "cnn", make_candidate("first"), "one", "2026-12-01T00:00:00+00:00")
    after_first = registry.read_bytes()
    force_promote(registry, "cnn", make_candidate("second"), "two", "2026-12-02T00:00:00+00:00")
    assert backup_path(registry).read_bytes() == after_first  # the previous good state, not a copy of the new one
    for key in ("first", "second"):
        model = layout.model_file("cnn", key)
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(b"model")
    backup = backup_path(registry).read_bytes()

    registry.unlink()
    for attempt in (
        lambda: load_registry(registry),
        lambda: force_promote(registry, "cnn", make_candidate("third"), "three", "2026-12-03T00:00:00+00:00"),
        lambda: rollback(registry, "cnn", "back", "2026-12-03T00:00:00+00:00"),
        lambda: collect_garbage(layout, grace_days=0),
    ):
        with pytest.raises(DataFormatError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message and f"cp {backup_path(registry)} {registry}" in message
    assert backup_path(registry).read_bytes() == backup and not registry.exists()
    assert layout.model_file("cnn", "first").exists() and layout.model_file("cnn", "second").exists()

    shutil.copyfile(backup_path(registry), registry)  # the restore the message names
    restored = load_registry(registry)
    assert restored.champions["cnn"].candidate.key == "first" and len(restored.history) == 1


def test_the_first_write_leaves_an_empty_backup_so_a_deleted_registry_is_still_noticed(tmp_path: Path) -> None:
    registry = tmp_path / "champions.json"
    force_promote(registry, "cnn", make_candidate("first"), "one", "2026-12-01T00:00:00+00:00")
    assert json.loads(backup_path(registry).read_text())["history"] == []
    registry.unlink()
    with pytest.raises(DataFormatError, match="found it missing while its backup"):
        load_registry(registry)
    backup_path(registry).unlink()  # deleting both is how to start afresh
    assert load_registry(registry).history == []


def test_a_damaged_registry_names_the_restore_command(tmp_path: Path) -> None:
    registry = tmp_path / "champions.json"
    force_promote(registry, "cnn", make_candidate("first"), "one", "2026-12-01T00:00:00+00:00")
    registry.write_text('{"format": "mnist-pip')
    with pytest.raises(DataFormatError, match=f"cp {backup_path(registry)} {registry}"):
        load_registry(registry)


def small_dataset(seed: int) -> RawDataset:
    images, labels = draw_digits(20, seed=seed)
    return RawDataset(Split(images[:15], labels[:15]), Split(images[15:], labels[15:]), source="npz", origin="test")


def test_a_swap_interrupted_between_its_renames_gives_the_old_folder_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = DataLayout(tmp_path / "data")
    dataset = small_dataset(1)
    publish_dataset(dataset, layout)
    version = layout.versions / current_version(layout)
    (version / "test.parquet").write_bytes(b"edited")  # forces the rewrite that swaps the folder
    before = {path.name: path.read_bytes() for path in version.iterdir()}
    real_rename = Path.rename

    def fail_on_the_second_rename(self: Path, target: Path) -> Path:
        if self.name.startswith(".staging-"):
            raise OSError("simulated crash between the renames")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", fail_on_the_second_rename)
    with pytest.raises(OSError, match="simulated crash"):
        publish_dataset(dataset, layout)
    monkeypatch.undo()
    assert {path.name: path.read_bytes() for path in version.iterdir()} == before
    assert not list(layout.versions.glob(f"{SET_ASIDE_PREFIX}*"))


def test_cleanup_restores_a_set_aside_version_instead_of_deleting_it(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    publish_dataset(small_dataset(1), layout)
    version = layout.versions / current_version(layout)
    before = {path.name: path.read_bytes() for path in version.iterdir()}
    version.rename(layout.versions / f"{SET_ASIDE_PREFIX}{version.name}")  # what a kill between the renames leaves
    assert collect_garbage(layout, grace_days=0) == []  # not garbage either: it is the version's only copy
    clean_leftovers(layout)
    assert {path.name: path.read_bytes() for path in version.iterdir()} == before
    assert not list(layout.versions.glob(f"{SET_ASIDE_PREFIX}*"))


@pytest.mark.parametrize("key", ["../../tmp/x", "a/b", "..", ".hidden", "-rf", "k" * 101, "", "key.keras"])
def test_model_keys_outside_the_key_format_never_become_paths(key: str, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="model key"):
        DataLayout(tmp_path).model_file("cnn", key)
    metrics = tmp_path / "reports" / "runs" / "run-x" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"models": {"cnn": {"key": key}}}))
    with pytest.raises(DataFormatError, match="model key"):
        choose_model("cnn", DataLayout(tmp_path / "data"), "run-x", tmp_path / "reports")


def test_real_keys_and_model_names_are_accepted(tmp_path: Path) -> None:
    path = DataLayout(tmp_path).model_file("ann_hidden_100", "0123456789abcdef01234567")
    assert path == tmp_path / "models" / "ann_hidden_100" / "0123456789abcdef01234567.keras"


@pytest.mark.parametrize(
    "text",
    ["it's 7.png", "a|b <b>bold</b> *x* _y_ `z` [l](u) ![i](j) # h", "&amp; &#x27; \\ 1. - + ~~s~~", "<script>"],
)
def test_escaped_text_renders_as_itself_in_commonmark(text: str) -> None:
    html = MarkdownIt("commonmark").enable("table").render(f"| input |\n|---|\n| {escape_markdown(text)} |")
    cell = html.split("<td>")[1].split("</td>")[0]
    assert cell == text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
