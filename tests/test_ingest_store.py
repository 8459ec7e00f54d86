"""Publishing to Parquet: manifest, read-back, interoperability, idempotence and the atomic-write guarantee."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline.champion.retention import collect_garbage
from mnist_pipeline.data import store, versions
from mnist_pipeline.data.checksums import fingerprint_dataset, hash_split
from mnist_pipeline.data.dataset import RawDataset, make_split
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.data.store import publish_dataset, read_manifest, read_split
from mnist_pipeline.errors import DataFormatError

HEIGHT, WIDTH = 7, 9


def dataset(seed: int = 0, n_train: int = 50, n_test: int = 20) -> RawDataset:
    rng = np.random.default_rng(seed)

    def split(n: int):
        return make_split(
            rng.integers(0, 256, (n, HEIGHT, WIDTH), dtype=np.uint8), rng.integers(0, 10, n), "images", "labels"
        )

    return RawDataset(train=split(n_train), test=split(n_test), source="npz", origin=f"synthetic-{seed}")


def snapshot(root: Path) -> dict[str, tuple[bytes | str, int, int] | str]:
    """Every entry under `root`: files and symlinks with content (link target), inode and mtime; dirs by name."""
    result: dict[str, tuple[bytes | str, int, int] | str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            result[str(path.relative_to(root))] = "dir"  # its mtime moves when a staging dir comes and goes
            continue
        stat = path.lstat()
        content = str(path.readlink()) if path.is_symlink() else path.read_bytes()
        result[str(path.relative_to(root))] = (content, stat.st_ino, stat.st_mtime_ns)
    return result


def test_manifest_contents(tmp_path: Path) -> None:
    data, layout = dataset(), DataLayout(tmp_path)
    before = datetime.now(UTC).replace(microsecond=0)
    result = publish_dataset(data, layout)
    assert result.written and result.path == layout.parquet

    manifest = json.loads(layout.manifest.read_text())
    assert manifest == result.manifest == read_manifest(layout)
    hashes = {name: hash_split(data.split(name).images, data.split(name).labels) for name in ("train", "test")}
    assert manifest["fingerprint"] == fingerprint_dataset(hashes)
    assert manifest["source"] == "npz" and manifest["origin"] == "synthetic-0"
    for name, rows in (("train", 50), ("test", 20)):
        info = manifest["splits"][name]
        assert info == {
            "file": f"{name}.parquet",
            "rows": rows,
            "height": HEIGHT,
            "width": WIDTH,
            "sha256": hashes[name],
        }
    assert {"python", "numpy", "pyarrow", "mnist_pipeline"} <= manifest["versions"].keys()
    assert manifest["versions"]["numpy"] == np.__version__ and manifest["versions"]["pyarrow"] == pa.__version__
    created = datetime.fromisoformat(manifest["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert before <= created <= datetime.now(UTC)


def test_fingerprint_depends_on_content_and_order() -> None:
    data = dataset()
    images, labels = data.train.images, data.train.labels
    base = hash_split(images, labels)
    assert hash_split(images.copy(), labels.copy()) == base
    assert hash_split(images[::-1], labels[::-1]) != base
    changed = images.copy()
    changed[0, 0, 0] ^= 1
    assert hash_split(changed, labels) != base
    assert hash_split(images.reshape(50, WIDTH, HEIGHT), labels) != base  # same bytes, other shape


def test_read_back_is_identical(tmp_path: Path) -> None:
    data, layout = dataset(), DataLayout(tmp_path)
    publish_dataset(data, layout)
    for name in ("train", "test"):
        got = read_split(layout.split_file(name))
        assert got.images.dtype == np.uint8 and got.images.shape == data.split(name).images.shape
        np.testing.assert_array_equal(got.images, data.split(name).images)
        assert got.labels.dtype == np.int64
        np.testing.assert_array_equal(got.labels, data.split(name).labels)


def test_parquet_schema_and_other_readers(tmp_path: Path) -> None:
    data, layout = dataset(), DataLayout(tmp_path)
    publish_dataset(data, layout)
    path = layout.split_file("train")
    expected = data.train

    schema = pq.read_schema(path)
    assert schema.names == ["row_id", "label", "height", "width", "image"]
    assert schema.field("image").type == pa.binary(HEIGHT * WIDTH)
    assert schema.field("label").type == pa.int64() and schema.field("row_id").type == pa.int64()

    frame = pd.read_parquet(path)
    assert list(frame["row_id"]) == list(range(50))
    assert (frame["height"] == HEIGHT).all() and (frame["width"] == WIDTH).all()
    np.testing.assert_array_equal(frame["label"].to_numpy(), expected.labels)
    assert frame["image"].iloc[7] == expected.images[7].tobytes()

    con = duckdb.connect()
    rows, first, last, label_sum, sizes = con.execute(
        "select count(*), min(row_id), max(row_id), sum(label), list(distinct octet_length(image)) "
        f"from read_parquet('{path}')"
    ).fetchone()
    assert (rows, first, last, label_sum, sizes) == (50, 0, 49, int(expected.labels.sum()), [HEIGHT * WIDTH])
    (blob,) = con.execute(f"select image from read_parquet('{path}') where row_id = 13").fetchone()
    assert bytes(blob) == expected.images[13].tobytes()


def test_parquet_is_a_symlink_to_a_versioned_directory(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    manifest = publish_dataset(dataset(), layout).manifest
    assert layout.parquet.is_symlink()
    assert str(layout.parquet.readlink()) == f"datasets/{manifest['fingerprint'][:16]}"  # relative: the dir can move
    assert [p.name for p in layout.versions.iterdir()] == [manifest["fingerprint"][:16]]


def test_identical_data_rewrites_nothing(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    first = publish_dataset(dataset(), layout)
    before = snapshot(tmp_path)
    second = publish_dataset(dataset(), layout)  # equal content, new array objects
    assert first.written and not second.written
    assert second.manifest == first.manifest
    assert snapshot(tmp_path) == before


def test_different_data_publishes_a_new_version_and_deletes_none(tmp_path: Path) -> None:
    """Ingest never deletes a version: old ones are garbage collection's (`mnist-pipeline gc`)."""
    layout = DataLayout(tmp_path)
    fingerprints = []
    for seed in range(4):
        result = publish_dataset(dataset(seed=seed, n_train=40 + seed), layout)
        assert result.written and result.manifest["fingerprint"] not in fingerprints
        fingerprints.append(result.manifest["fingerprint"])
        os.utime(layout.versions / fingerprints[-1][:16], (1_000_000 + seed, 1_000_000 + seed))
    assert result.manifest["splits"]["train"]["rows"] == 43
    assert sorted(p.name for p in layout.versions.iterdir()) == sorted(f[:16] for f in fingerprints)
    np.testing.assert_array_equal(
        read_split(layout.split_file("train")).images, dataset(seed=3, n_train=43).train.images
    )


def test_a_version_pinned_by_a_run_stays_readable_after_a_new_ingest(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    first = publish_dataset(dataset(seed=0), layout).manifest["fingerprint"]
    publish_dataset(dataset(seed=1), layout)
    pinned = layout.pin(first)
    np.testing.assert_array_equal(read_split(pinned.split_file("train")).images, dataset(seed=0).train.images)
    assert read_manifest(pinned)["fingerprint"] == first


def test_a_split_edited_after_ingest_is_rewritten_by_the_next_ingest(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    publish_dataset(dataset(), layout)
    table = pq.read_table(layout.split_file("test"))
    labels = table.column("label").to_numpy().copy()
    labels[0] = (labels[0] + 1) % 10
    pq.write_table(table.set_column(1, "label", pa.array(labels)), layout.split_file("test"))
    assert publish_dataset(dataset(), layout).written
    np.testing.assert_array_equal(read_split(layout.split_file("test")).labels, dataset().test.labels)


def test_missing_split_file_is_rewritten_even_with_same_fingerprint(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    publish_dataset(dataset(), layout)
    layout.split_file("test").unlink()
    assert publish_dataset(dataset(), layout).written
    np.testing.assert_array_equal(read_split(layout.split_file("test")).images, dataset().test.images)


@pytest.mark.parametrize("fail_at", ["test split", "manifest"])
def test_failed_publish_leaves_previous_dataset_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    layout = DataLayout(tmp_path)
    good = publish_dataset(dataset(seed=0), layout).manifest
    before = snapshot(tmp_path)
    real_write_split = store.write_split

    def write_split_then_fail(path: Path, split) -> None:
        real_write_split(path, split)
        if path.name == "test.parquet":
            path.write_bytes(path.read_bytes()[:100])  # a half-written file, then the disk fills up
            raise OSError(28, "No space left on device")

    def fail_manifest(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    if fail_at == "test split":
        monkeypatch.setattr(store, "write_split", write_split_then_fail)
    else:
        monkeypatch.setattr(store, "write_json_atomic", fail_manifest)
    with pytest.raises(OSError, match="No space left"):
        publish_dataset(dataset(seed=1), layout)

    assert snapshot(tmp_path) == before  # bytes, inodes, mtimes and the symlink: all as they were
    expected = {tmp_path / ".locks", layout.versions / good["fingerprint"][:16] / ".created-by-mnist-pipeline"}
    assert {path for path in tmp_path.rglob(".*") if ".locks" not in path.parent.parts} == expected  # no leftovers
    assert read_manifest(layout) == good
    np.testing.assert_array_equal(read_split(layout.split_file("test")).images, dataset(seed=0).test.images)


def test_refuses_to_replace_a_real_parquet_directory(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.parquet.mkdir()
    (layout.parquet / "mine.txt").write_text("user data")
    with pytest.raises(DataFormatError, match="expected a symlink managed by mnist-pipeline, found a real directory"):
        publish_dataset(dataset(), layout)
    assert (layout.parquet / "mine.txt").read_text() == "user data"


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    with pytest.raises(DataFormatError, match="run `mnist-pipeline ingest` first"):
        read_manifest(layout)
    with pytest.raises(DataFormatError, match=f"^{tmp_path / 'x.parquet'}: expected a Parquet split file"):
        read_split(tmp_path / "x.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataFormatError, match=f"^{tmp_path / 'bad.parquet'}: expected Parquet with columns"):
        read_split(tmp_path / "bad.parquet")


def test_split_file_without_an_expected_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"row_id": [0, 1], "label": [3, 4]}), path)
    with pytest.raises(
        DataFormatError, match=f"^{path}: expected Parquet with columns .*, found no height, width, image$"
    ):
        read_split(path)


def age(folder: Path, mtime: float) -> None:
    """Make a version folder look last used at `mtime`: its own time and its files'."""
    for path in (*folder.iterdir(), folder):
        os.utime(path, (mtime, mtime))


def test_a_version_ingested_again_counts_as_used_for_garbage_collection(tmp_path: Path) -> None:
    """An old version written again (same content) is about to be used: gc keeps it, as it keeps the current one."""
    layout = DataLayout(tmp_path)
    fingerprints = []
    for seed in range(4):
        fingerprints.append(publish_dataset(dataset(seed=seed), layout).manifest["fingerprint"])
        age(layout.versions / fingerprints[-1][:16], 1_000_000 + seed)
    with versions.ingest_lock(layout):
        assert not store.write_version(dataset(seed=0), layout).written
    collect_garbage(layout, grace_days=1)
    kept = {path.name for path in layout.versions.iterdir()}
    assert kept == {fingerprints[0][:16], fingerprints[3][:16]}


def test_a_version_that_garbage_collection_removed_is_written_anew(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    gone = publish_dataset(dataset(seed=0), layout).manifest["fingerprint"]
    publish_dataset(dataset(seed=1), layout)
    age(layout.versions / gone[:16], 1_000_000)
    assert collect_garbage(layout, grace_days=1) == [layout.versions / gone[:16]]
    with versions.ingest_lock(layout):
        assert store.write_version(dataset(seed=0), layout).written
    assert read_manifest(layout.pin(gone))["fingerprint"] == gone
