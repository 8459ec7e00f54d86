"""The `mnist-pipeline` command line: one subcommand per stage, plus `run` for the whole flow."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mnist_pipeline import defaults
from mnist_pipeline.config import TASK_RUNNERS, RunConfig, build_config
from mnist_pipeline.data.image_shape import format_image_shape, parse_image_shape
from mnist_pipeline.data.sources import SOURCE_HELP, parse_source
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.hardware import PRECISIONS
from mnist_pipeline.modeling.profiles import profile_names
from mnist_pipeline.modeling.registry import DEFAULT_PREDICT_MODEL, model_names
from mnist_pipeline.os_errors import describe_os_error


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=defaults.DATA_DIR,
        help="where raw downloads, Parquet and models live (default: %(default)s)",
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest, then publish only through the validation gate: DATA_DIR/parquet only ever points at valid data."""
    from mnist_pipeline.data.ingest import ingest_and_publish
    from mnist_pipeline.validation import raise_if_failed

    result, report = ingest_and_publish(parse_source(args.source), args.data_dir, parse_image_shape(args.image_shape))
    manifest = result.manifest
    splits = ", ".join(f"{name}={info['rows']}" for name, info in manifest["splits"].items())
    if not report.success:
        print(
            f"rejected: {result.path.name} (source {manifest['source']}) failed validation; "
            f"{args.data_dir / 'parquet'} is unchanged"
        )
    raise_if_failed(report)
    state = "written" if result.written else "unchanged"
    path = args.data_dir / "parquet"
    print(f"{state}: {path} ({splits}; source {manifest['source']}; fingerprint {manifest['fingerprint'][:16]})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mnist_pipeline.data.layout import DataLayout
    from mnist_pipeline.validation import raise_if_failed, validate_dataset

    shape = None if args.image_shape is None else parse_image_shape(args.image_shape)
    report = validate_dataset(DataLayout(args.data_dir), shape)
    print("\n".join(report.summary_lines()))
    raise_if_failed(report)
    return 0


# The options `run` and `serve` share, by CLI dest; each becomes a RunConfig field of the same name.
RUN_OPTION_NAMES = (
    "source",
    "models",
    "profile",
    "epochs",
    "precision",
    "train_limit",
    "test_limit",
    "task_runner",
    "dask_address",
    "seed",
    "promotion_margin",
    "max_recall_drop",
    "image_shape",
    "promote_limited",
)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Build the run configuration from the shared options; directories become absolute."""
    values = {name: getattr(args, name) for name in RUN_OPTION_NAMES}
    return build_config(**values, data_dir=str(args.data_dir.resolve()), reports_dir=str(args.reports_dir.resolve()))


def check_prefect_api() -> None:
    """When PREFECT_API_URL is set, the server must answer; else Prefect fails later with three tracebacks."""
    import urllib.error
    import urllib.request

    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=10):
            return
    except (urllib.error.URLError, OSError) as exc:
        raise PipelineError(
            f"PREFECT_API_URL={url}: expected a running Prefect server (start one with `make server`, or unset "
            f"the variable to use a temporary one), found none answering ({exc})"
        ) from exc


def print_flow_run_url(metrics_path: Path) -> None:
    """The run's page in the Prefect UI, when a server was up (a temporary server has no UI URL)."""
    import json

    url = json.loads(metrics_path.read_text())["run"].get("flow_run_url") or ""
    if url.startswith(("http://", "https://")):
        print(f"flow run: {url}")


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_prefect_api()
    from flows.temporary_server import start_temporary_server

    server = start_temporary_server()  # boots in its own process while this one imports the flow
    from flows.pipeline import mnist_pipeline
    from mnist_pipeline.runs.log_filters import install_pipeline_logging

    install_pipeline_logging()
    if server is not None:
        server.wait(float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
    outputs = mnist_pipeline(**config.to_parameters())
    print(f"report: {outputs['report']}")
    print(f"metrics: {outputs['metrics']}")
    print_flow_run_url(Path(outputs["metrics"]))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.deploy import resolve_schedule, serve_scheduled_retrain

    cron, timezone = resolve_schedule(args.cron, args.timezone)
    config = config_from_args(args)
    check_prefect_api()
    print(f"serving mnist-pipeline/scheduled-retrain on cron '{cron}' ({timezone}) and batch-predict/on-demand")
    import httpx

    try:
        serve_scheduled_retrain(cron, timezone, config.to_parameters())
    except httpx.HTTPError as exc:
        url = os.environ.get("PREFECT_API_URL")
        raise PipelineError(
            f"PREFECT_API_URL={url}: expected the server to accept the deployment, found: {exc}"
        ) from exc
    return 0


def cmd_champion(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from mnist_pipeline.champion.manual import force_promote_run, roll_back
    from mnist_pipeline.champion.registry import list_champions, load_registry
    from mnist_pipeline.data.layout import DataLayout

    layout = DataLayout(args.data_dir)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    reason = args.reason or "manual"
    if args.run and not args.force_promote:
        raise PipelineError("--run: only used with --force-promote MODEL, found it alone")
    if args.force_promote:
        if not args.run:
            raise PipelineError("--force-promote: expected --run RUN_NAME naming the run whose model to promote")
        force_promote_run(layout, args.reports_dir, args.force_promote, args.run, reason, now)
        print(f"{args.force_promote}: forced promotion of run {args.run} recorded")
    elif args.rollback:
        restored, model_file = roll_back(layout, args.rollback, reason, now)
        print(f"{args.rollback}: rolled back to run {restored.run_name} ({model_file})")
        if not model_file.is_file():
            print(f"warning: {model_file} no longer exists", file=sys.stderr)
    rows = list_champions(load_registry(layout.registry))
    if not rows:
        print(f"no champions yet ({layout.registry})")
    for row in rows:
        forced = " (forced)" if row["forced"] else ""
        print(
            f"{row['model']:<16} {100 * row['accuracy']:6.2f} %  run {row['run']}  since {row['promoted_at']}{forced}"
        )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Answer with the champion (or a run's model); each failed input is one stderr line and makes the exit 2."""
    from mnist_pipeline.predict.answer import answer, render
    from mnist_pipeline.predict.model_choice import choose_model

    choice = choose_model(args.model, args.data_dir, args.run, args.reports_dir)
    result = answer(choice, args.inputs)
    print(render(result, args.format))
    for name, problem in result.failures:
        print(f"mnist-pipeline: {name}: {problem}", file=sys.stderr)
    return 2 if result.failures else 0


def _add_image_shape(parser: argparse.ArgumentParser, default: str | None, help_default: str) -> None:
    parser.add_argument(
        "--image-shape",
        default=default,
        metavar="HxW",
        help=f"expected image size, e.g. 32x32 (default: {help_default})",
    )


def _add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--source", default=defaults.SOURCE, help=f"{SOURCE_HELP} (default: %(default)s)")
    _add_image_shape(run, format_image_shape(defaults.IMAGE_SHAPE), "%(default)s for every source")
    run.add_argument("--models", default=",".join(model_names()), help="comma-separated subset (default: %(default)s)")
    run.add_argument(
        "--profile", choices=profile_names(), default=defaults.PROFILE, help="training settings (default: %(default)s)"
    )
    run.add_argument(
        "--epochs",
        nargs="+",
        action="extend",  # `--epochs cnn=3 --epochs ann_no_hidden=2` keeps both, not only the last
        metavar="NAME=N",
        help=f"override epochs per model, e.g. {DEFAULT_PREDICT_MODEL}=3 (repeatable)",
    )
    run.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="training precision for every model (default: the profile's; auto = bfloat16 only where native)",
    )
    run.add_argument("--train-limit", type=int, metavar="N", help="train on the first N training images")
    run.add_argument("--test-limit", type=int, metavar="N", help="evaluate on the first N test images")
    run.add_argument(
        "--task-runner", choices=TASK_RUNNERS, default=defaults.TASK_RUNNER, help="how models train side by side"
    )
    run.add_argument(
        "--dask-address", metavar="tcp://HOST:PORT", help="existing Dask scheduler (with --task-runner dask)"
    )
    _add_data_dir(run)
    run.add_argument(
        "--reports-dir", type=Path, default=defaults.REPORTS_DIR, help="where reports go (default: %(default)s)"
    )
    run.add_argument(
        "--seed", type=int, default=defaults.SEED, help="seed for Python, numpy and TensorFlow (default: %(default)s)"
    )
    run.add_argument(
        "--promotion-margin",
        type=float,
        default=defaults.PROMOTION_MARGIN,
        help="accuracy gain (fraction) a challenger needs to become champion (default: %(default)s)",
    )
    run.add_argument(
        "--max-recall-drop",
        type=float,
        default=defaults.MAX_RECALL_DROP,
        help="largest per-digit recall drop (fraction) a promoted model may have (default: %(default)s)",
    )
    run.add_argument(
        "--promote-limited",
        action="store_true",
        help="let a run with --train-limit/--test-limit compete for champion (default: it leaves champions alone)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-pipeline", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="fetch MNIST and publish it as Parquet under DATA_DIR/parquet")
    ingest.add_argument("--source", default=defaults.SOURCE, help=f"{SOURCE_HELP} (default: %(default)s)")
    _add_image_shape(ingest, format_image_shape(defaults.IMAGE_SHAPE), "%(default)s for every source")
    _add_data_dir(ingest)
    ingest.set_defaults(handler=cmd_ingest)

    validate = sub.add_parser("validate", help="check the published dataset; exits non-zero listing what failed")
    _add_data_dir(validate)
    _add_image_shape(validate, None, "the size declared at ingest")
    validate.set_defaults(handler=cmd_validate)

    run = sub.add_parser("run", help="run the whole flow: ingest, validate, train, evaluate, report")
    _add_run_options(run)
    run.set_defaults(handler=cmd_run)

    serve = sub.add_parser("serve", help="register and serve the scheduled-retrain deployment (needs PREFECT_API_URL)")
    serve.add_argument("--cron", help="cron schedule (default: $MNIST_PIPELINE_CRON or '0 3 * * 1', weekly)")
    serve.add_argument("--timezone", help="IANA timezone of the schedule (default: $MNIST_PIPELINE_TIMEZONE or UTC)")
    _add_run_options(serve)
    serve.set_defaults(handler=cmd_serve)

    champion = sub.add_parser("champion", help="list champions; force a promotion or roll one back")
    _add_data_dir(champion)
    action = champion.add_mutually_exclusive_group()
    action.add_argument("--force-promote", metavar="MODEL", help="make MODEL from --run the champion")
    action.add_argument("--rollback", metavar="MODEL", help="restore MODEL's previous champion")
    champion.add_argument("--run", metavar="RUN_NAME", help="run whose model --force-promote promotes")
    champion.add_argument("--reports-dir", type=Path, default=defaults.REPORTS_DIR, help="where run metrics live")
    champion.add_argument("--reason", help="why, recorded in the registry history")
    champion.set_defaults(handler=cmd_champion)

    predict = sub.add_parser("predict", help="ask the champion (or a run's model) which digit each image shows")
    predict.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="image files, folders, .npz, IDX, Parquet"
    )
    predict.add_argument(
        "--model",
        choices=model_names(),
        default=DEFAULT_PREDICT_MODEL,
        help="which model answers (default: %(default)s)",
    )
    predict.add_argument("--run", metavar="RUN_NAME", help="use this run's model instead of the champion")
    _add_data_dir(predict)
    predict.add_argument(
        "--reports-dir", type=Path, default=defaults.REPORTS_DIR, help="where run metrics live (with --run)"
    )
    predict.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (default: table)")
    predict.set_defaults(handler=cmd_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors and OS errors become one message and exit code 2, never a traceback."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mnist_pipeline").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return args.handler(args)
    except PipelineError as exc:
        print(f"mnist-pipeline: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mnist-pipeline: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnist-pipeline: interrupted", file=sys.stderr)
        return 130


def console_main() -> int:
    """The `mnist-pipeline` command. Python's collection at interpreter exit walks every object still alive
    (Prefect, TensorFlow, pandas): ~2 s after a run on a 2-core machine, seen with py-spy as `gc_collect_main`
    after the last exit handler. Freezing them puts them out of its reach; the process's memory goes back to the OS
    either way. Only the command does this: `main` also runs inside other processes (tests)."""
    try:
        return main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(console_main())
