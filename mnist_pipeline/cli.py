"""The `mnist-pipeline` command line: one subcommand per stage, plus `run` for the whole flow."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.sources import SOURCE_HELP, parse_source

DEFAULT_DATA_DIR = Path("data")


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where raw downloads, Parquet and models live (default: %(default)s)",
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    from mnist_pipeline.ingest import ingest

    result = ingest(parse_source(args.source), args.data_dir)
    manifest = result.manifest
    splits = ", ".join(f"{name}={info['rows']}" for name, info in manifest["splits"].items())
    state = "written" if result.written else "unchanged"
    print(f"{state}: {result.path} ({splits}; source {manifest['source']}; fingerprint {manifest['fingerprint'][:16]})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-pipeline", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="fetch MNIST and publish it as Parquet under DATA_DIR/parquet")
    ingest.add_argument("--source", default="auto", help=f"{SOURCE_HELP} (default: %(default)s)")
    _add_data_dir(ingest)
    ingest.set_defaults(handler=cmd_ingest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors become one message and exit code 2, never a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.handler(args)
    except PipelineError as exc:
        print(f"mnist-pipeline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnist-pipeline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
