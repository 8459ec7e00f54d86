"""`mnist-pipeline ingest` from the command line: help, source parsing, success output, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from mnist_pipeline.data.sources import SourceSpec, parse_source
from mnist_pipeline.errors import PipelineError


def write_npz(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (50, 8, 8), dtype=np.uint8),
        y_train=rng.permutation(np.arange(50) % 10),  # every class present: ingest publishes only valid data
        x_test=rng.integers(0, 256, (20, 8, 8), dtype=np.uint8),
        y_test=rng.permutation(np.arange(20) % 10),
    )
    return path


def test_ingest_help_lists_the_sources(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ingest", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "auto | pypi | url | idx:DIR | npz:FILE" in out and "--data-dir" in out


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("auto", SourceSpec("auto")),
        ("pypi", SourceSpec("pypi")),
        ("url", SourceSpec("url")),
        ("idx:some/dir", SourceSpec("idx", Path("some/dir"))),
        ("npz:/tmp/m.npz", SourceSpec("npz", Path("/tmp/m.npz"))),
    ],
)
def test_parse_source(text: str, spec: SourceSpec) -> None:
    assert parse_source(text) == spec


@pytest.mark.parametrize("text", ["", "ftp", "idx", "idx:", "npz", "pypi:x", "url:https://x"])
def test_bad_source_is_refused(text: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="--source: expected one of"):
        parse_source(text)
    assert main(["ingest", "--source", text, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"found {text!r}" in err and "Traceback" not in err


def test_ingest_writes_then_reports_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = f"npz:{write_npz(tmp_path / 'd.npz')}"
    data_dir = tmp_path / "data"
    assert main(["ingest", "--source", source, "--image-shape", "8x8", "--data-dir", str(data_dir)]) == 0
    first = capsys.readouterr().out
    manifest = json.loads((data_dir / "parquet" / "manifest.json").read_text())
    assert first.startswith(f"written: {data_dir / 'parquet'} (train=50, test=20; source npz;")
    assert manifest["fingerprint"][:16] in first

    assert main(["ingest", "--source", source, "--image-shape", "8x8", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.startswith("unchanged:")

    write_npz(tmp_path / "d.npz", seed=1)
    assert main(["ingest", "--source", source, "--image-shape", "8x8", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.startswith("written:")


def test_missing_npz_through_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.npz"
    assert main(["ingest", "--source", f"npz:{missing}", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err == f"mnist-pipeline: error: {missing}: expected an .npz file, found no such file\n"
