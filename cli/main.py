"""The `mnist-pipeline` command line: one subcommand per stage, plus `run` for the whole flow."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from mnist_pipeline import defaults
from mnist_pipeline.champion.retention import DEFAULT_GRACE_DAYS
from mnist_pipeline.config import RunConfig, build_config
from mnist_pipeline.data.layout import DataLayout
from mnist_pipeline.errors import PipelineError, describe_os_error
from mnist_pipeline.increments import DRIFT_MODES
from mnist_pipeline.modeling.quiet_start import set_tensorflow_environment, start_tensorflow
from mnist_pipeline.modeling.registry import DEFAULT_PREDICT_MODEL, model_names
from mnist_pipeline.web import links

# How the command line spells some values; everything else about a run option comes from its RunConfig field.
METAVARS = {
    "image_shape": "HxW",
    "epochs": "NAME=N",
    "train_limit": "N",
    "test_limit": "N",
    "dask_address": "tcp://HOST:PORT",
}


def _plain_type(annotation: Any) -> Any:
    """`int` for `Annotated[int, ...] | None`; a Literal or a container stays as it is."""
    if get_origin(annotation) is Annotated:
        return _plain_type(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return _plain_type(next(arg for arg in get_args(annotation) if arg is not type(None)))
    return annotation


def add_config_options(parser: argparse.ArgumentParser, names: Sequence[str] = tuple(RunConfig.model_fields)) -> None:
    """One option per RunConfig field (`--train-limit` for train_limit), with the field's default and help text.

    Values arrive as typed: a list comma-separated (`--models a,b`), a mapping as repeatable NAME=N
    (`--epochs cnn=3 --epochs ann_no_hidden=2` keeps both), a flag for a bool; `config_from_args` validates them
    with RunConfig, the same check the flow's parameters get.
    """
    values = RunConfig().to_parameters()
    for name in names:
        field, default = RunConfig.model_fields[name], values[name]
        kind = _plain_type(field.annotation)
        options: dict[str, Any] = {"help": field.description, "default": default}
        if name in METAVARS:
            options["metavar"] = METAVARS[name]
        if isinstance(default, bool):
            options = {"help": field.description, "action": "store_true"}
        elif get_origin(kind) is Literal:
            options["choices"] = get_args(kind)
        elif kind in (int, float, Path):
            options["type"] = kind
        elif isinstance(default, list):
            options["default"] = ",".join(default)
        elif isinstance(default, dict):
            options.update(default=None, nargs="+", action="extend")
        if options.get("default") is not None:
            options["help"] += " (default: %(default)s)"
        parser.add_argument(f"--{name.replace('_', '-')}", **options)


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, ("data_dir",))


def open_layout(args: argparse.Namespace) -> DataLayout:
    """The data directory that `--data-dir` names, made absolute (flows may run in another working directory)."""
    return DataLayout(args.data_dir.resolve())


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest, then publish only through the validation gate: DATA_DIR/parquet only ever points at valid data."""
    from mnist_pipeline.increments.versions import ingest_and_publish_grown
    from mnist_pipeline.validation import raise_if_failed

    config = build_config(source=args.source, image_shape=args.image_shape)
    result, report = ingest_and_publish_grown(config.source, open_layout(args), config.image_shape)
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


def cmd_add_data(args: argparse.Namespace) -> int:
    """Land SOURCE in the inbox and run the increment gate on it (or, with --pending, on every pending batch)."""

    if args.pending == (args.source is not None):
        raise PipelineError(
            "add-data: expected either SOURCE or --pending, found " + ("both" if args.pending else "neither")
        )
    if args.min_images < 1:
        raise PipelineError(f"--min-images: expected a positive number of images, found {args.min_images}")
    layout = open_layout(args)
    batch_ids = None
    if args.source is not None:
        from mnist_pipeline.increments.inbox import keep_first_of_repeats, land_batch
        from mnist_pipeline.increments.sources import read_labelled_batch

        batch = read_labelled_batch(args.source)
        batch_ids = [land_batch(layout, batch, str(args.source), args.note)]
        repeats = len(keep_first_of_repeats(batch)[1])  # what landing dropped (a gate may take the batch at once)
        print(
            f"landed: {batch_ids[0]} ({batch.rows - repeats} images, {len(batch.problems)} unreadable inputs, "
            f"{repeats} repeats of an image with the same label dropped)"
        )
    connect_prefect_api()
    from flows.increments import increment_gate
    from tasks.guard import install_pipeline_logging

    install_pipeline_logging()
    outcomes = increment_gate(
        data_dir=str(layout.root), batch_ids=batch_ids, min_images=args.min_images, drift=args.drift
    )
    if not outcomes:
        print(f"no pending batches in {layout.inbox}")
    for outcome in outcomes:
        if outcome.accepted:
            rows, folder = outcome.rows or {}, layout.increments / outcome.id
            print(f"accepted: {outcome.id} (train {rows.get('train')}, test {rows.get('test')}) -> {folder}")
        else:
            print(f"refused: {outcome.id} -> {layout.refused / outcome.id}")
            for reason in outcome.reasons:
                print(f"  {reason}")
        if outcome.note:
            print(f"  ({outcome.note})")
        for line in outcome.drift:
            print(f"  drift flagged: {line}")
    return 0 if all(outcome.accepted for outcome in outcomes) else 2


def cmd_add_scans(args: argparse.Namespace) -> int:
    """Run the review-intake flow: queue SOURCE's images for the review page and score them with the CNN champion.
    Each unreadable file is one stderr line; exit 2 when nothing could be read."""
    layout = open_layout(args)
    connect_prefect_api()
    from flows.increments import review_intake
    from tasks.guard import install_pipeline_logging

    install_pipeline_logging()
    intake = review_intake(source=str(args.source), data_dir=str(layout.root), note=args.note)
    for name, problem in intake.unreadable:
        print(f"mnist-pipeline: {name}: {problem}", file=sys.stderr)
    if not (intake.queued or intake.already_queued or intake.in_test or intake.accepted):
        raise PipelineError(
            f"{args.source}: expected a readable image, found none ({len(intake.unreadable)} unreadable)"
        )
    print(
        f"queued: {intake.queued} in {layout.review}; skipped: {intake.already_queued} already queued, "
        f"{intake.in_test} equal to an MNIST test image, {intake.accepted} already accepted; "
        f"unreadable: {len(intake.unreadable)}"
    )
    if intake.champion is None:
        print("not scored: no cnn champion yet; the web app scores the queue once there is one")
    else:
        print(f"scored: {intake.scored} with the cnn champion (key {intake.champion})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mnist_pipeline.validation import raise_if_failed, validate_dataset

    shape = None if args.image_shape is None else build_config(image_shape=args.image_shape).image_shape
    report = validate_dataset(open_layout(args), shape)
    print("\n".join(report.summary_lines()))
    raise_if_failed(report)
    return 0


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run configuration from the options `add_config_options` made; directories become absolute."""
    return build_config(**{name: getattr(args, name) for name in RunConfig.model_fields}).resolve_dirs()


# `make run`'s server (Makefile: PREFECT_PORT, default 4200); MNIST_PIPELINE_LOCAL_SERVER=off opts out of reusing it.
LOCAL_SERVER_OPT_OUT = "MNIST_PIPELINE_LOCAL_SERVER"
OPT_OUT_VALUES = frozenset({"0", "off", "false", "no"})
# A server on loopback answers /api/health in milliseconds; one that takes longer is not worth waiting for.
LOCAL_PROBE_SECONDS = 0.5
# Seconds to wait for PREFECT_API_URL's server to answer: set by `make run` when it has just started that server.
SERVER_WAIT = "MNIST_PIPELINE_SERVER_WAIT"


def local_server_url(environ: Mapping[str, str]) -> str:
    """The API URL of the server `make run` starts and keeps: 127.0.0.1 on PREFECT_PORT (default 4200)."""
    return f"http://127.0.0.1:{environ.get('PREFECT_PORT') or 4200}/api"


def server_answers(api_url: str, timeout: float = LOCAL_PROBE_SECONDS) -> bool:
    """Whether a Prefect server answers `api_url`/health (with `true`, as Prefect does) within `timeout` seconds."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.read(16).strip() == b"true"
    except OSError:  # refused, timed out, or an HTTP error (URLError and HTTPError are OSErrors)
        return False


def choose_local_server(environ: Mapping[str, str], answers: Callable[[str], bool]) -> str | None:
    """The local server's API URL when a command should report to it instead of Prefect's ephemeral mode: no
    PREFECT_API_URL in the environment, no opt-out, and the server answers. None leaves Prefect's own choice."""
    if environ.get("PREFECT_API_URL") or environ.get(LOCAL_SERVER_OPT_OUT, "").lower() in OPT_OUT_VALUES:
        return None
    url = local_server_url(environ)
    return url if answers(url) else None


def connect_prefect_api() -> None:
    """Before a command starts a flow: report to `make run`'s server when it answers (its start-up is paid once;
    ephemeral mode's, 10-20 s here, on every command), then check the server PREFECT_API_URL names.

    Prefect reads PREFECT_API_URL once, when it is imported, so this runs before any Prefect import and does
    nothing once Prefect is loaded (a caller inside another process, such as a test, keeps its own settings)."""
    url = None if "prefect" in sys.modules else choose_local_server(os.environ, server_answers)
    if url:
        os.environ["PREFECT_API_URL"] = url  # inherited by task-runner subprocesses too
        logging.getLogger("mnist_pipeline").info(
            "Prefect: using the server at %s (%s=off for Prefect's ephemeral mode instead)", url, LOCAL_SERVER_OPT_OUT
        )
    check_prefect_api()


def read_server_wait() -> float:
    """SERVER_WAIT in seconds (0 when unset); `make run` sets it from PREFECT_START_SECONDS."""
    text = os.environ.get(SERVER_WAIT) or "0"
    seconds = float(text) if text.replace(".", "", 1).isdigit() else -1.0
    if seconds < 0:
        raise PipelineError(f"{SERVER_WAIT} (PREFECT_START_SECONDS): expected seconds, found {text!r}")
    return seconds


def check_prefect_api() -> None:
    """When PREFECT_API_URL is set, the server must answer (within SERVER_WAIT seconds, when `make run` has just
    started it); else Prefect fails later with three tracebacks."""
    import urllib.error
    import urllib.request

    url, wait = os.environ.get("PREFECT_API_URL"), read_server_wait()
    deadline = time.monotonic() + wait
    while url:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=10):
                return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                expected = "a running Prefect server (start one with `make server`, or unset the variable to let "
                expected += "Prefect start a temporary one)"
                if wait:
                    log = f"{os.environ.get('PREFECT_HOME', '~/.prefect')}/server.log"
                    expected = f"the Prefect server `make run` started to answer within {wait:g} s (its log: {log})"
                raise PipelineError(
                    f"PREFECT_API_URL={url}: expected {expected}, found none answering ({exc})"
                ) from exc
            time.sleep(0.5)


def print_flow_run_url(metrics_path: Path) -> None:
    """The run's page in the Prefect UI, when a server was up (a temporary server has no UI URL)."""
    import json

    url = json.loads(metrics_path.read_text())["run"].get("flow_run_url") or ""
    if url.startswith(("http://", "https://")):
        print(f"flow run: {url}")


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if read_server_wait() and os.environ.get("PREFECT_API_URL"):  # its server is starting: load the run meanwhile
        logging.getLogger("mnist_pipeline").info("loading the run while the Prefect server starts")
        import flows.pipeline  # noqa: F401

        start_tensorflow()
    connect_prefect_api()
    from flows.pipeline import mnist_pipeline
    from tasks.guard import install_pipeline_logging

    install_pipeline_logging()
    outputs = mnist_pipeline(**config.to_parameters())
    if "skipped" in outputs:  # --require-new-data and nothing new: the flow logged the one line saying so
        return 0
    print(f"report: {outputs['report']}")
    print(f"metrics: {outputs['metrics']}")
    print_flow_run_url(Path(outputs["metrics"]))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.deploy import check_cooldown, resolve_schedule, serve_scheduled_retrain

    cron, timezone = resolve_schedule(args.cron, args.timezone)
    cooldown = check_cooldown(args.cooldown)
    config = config_from_args(args)
    connect_prefect_api()
    print(
        f"serving mnist-pipeline/scheduled-retrain on cron '{cron}' ({timezone}) and on accepted increments "
        f"(cooldown {cooldown.total_seconds() / 60:g} min), mnist-maintenance/weekly-gc and batch-predict/on-demand"
    )
    import httpx

    try:
        serve_scheduled_retrain(cron, timezone, cooldown, config.to_parameters())
    except httpx.HTTPError as exc:
        url = os.environ.get("PREFECT_API_URL")
        raise PipelineError(
            f"PREFECT_API_URL={url}: expected the server to accept the deployment, found: {exc}"
        ) from exc
    return 0


def cmd_champion(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from mnist_pipeline.champion.decide import force_promote_run, roll_back
    from mnist_pipeline.champion.registry import list_champions, load_registry

    layout = open_layout(args)
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


def cmd_gc(args: argparse.Namespace) -> int:
    """Delete what no champion needs and nobody used for --grace-days; one line per item that went."""
    from mnist_pipeline.champion.retention import collect_garbage

    removed = collect_garbage(open_layout(args), args.grace_days, args.dry_run)
    for path in removed:
        print(f"{'would remove' if args.dry_run else 'removed'}: {path}")
    print(f"{len(removed)} item(s) {'would go (dry run)' if args.dry_run else 'removed'}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Answer with the champion (or a run's model); each failed input is one stderr line and makes the exit 2."""
    from mnist_pipeline.predict.answer import answer, render
    from mnist_pipeline.predict.model_choice import choose_model

    choice = choose_model(args.model, open_layout(args), args.run, args.reports_dir)
    result = answer(choice, args.inputs, args.target_error, args.answer_all)
    print(render(result, args.format))
    for name, problem in result.failures:
        print(f"mnist-pipeline: {name}: {problem}", file=sys.stderr)
    return 2 if result.failures else 0


def parse_error_rate(value: str) -> float:
    """--target-error: an error rate strictly between 0 and 1 (0.005 is 0.5 %)."""
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0.0 < rate < 1.0:
        raise argparse.ArgumentTypeError(f"expected an error rate between 0 and 1 (0.005 is 0.5 %), found {value!r}")
    return rate


def cmd_app(args: argparse.Namespace) -> int:
    """Serve the drawing page, its API and the reports folder until interrupted."""
    from mnist_pipeline.web.app import build_app
    from mnist_pipeline.web.server import bind, build_server

    if args.feedback_batch < defaults.MIN_IMAGES:
        raise PipelineError(
            f"--feedback-batch: expected at least {defaults.MIN_IMAGES} corrections (the gate refuses smaller "
            f"batches), found {args.feedback_batch}"
        )
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise PipelineError(f"--port {args.port}: expected a free port on {args.host}, found: {exc}") from exc
    batches = {"feedback_threshold": args.feedback_batch, "review_threshold": args.review_batch}
    app = build_app(open_layout(args), args.reports_dir, args.allowed_hosts, args.model, **batches)
    print(f"drawing page at http://{args.host}:{args.port}/ (reports: {args.reports_dir.resolve()})", flush=True)
    build_server(app).run(sockets=[sock])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-pipeline", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="fetch MNIST and publish it as Parquet under DATA_DIR/parquet")
    add_config_options(ingest, ("source", "image_shape", "data_dir"))
    ingest.set_defaults(handler=cmd_ingest)

    add_data = sub.add_parser("add-data", help="land a labelled batch in the inbox and run the increment gate on it")
    add_data.add_argument(
        "source",
        nargs="?",
        type=Path,
        metavar="SOURCE",
        help="an ImageFolder (SOURCE/<digit>/<image>), an .npz (x, y), an IDX pair or a Parquet file (image, label)",
    )
    add_data.add_argument("--pending", action="store_true", help="run the gate on every pending batch instead")
    _add_data_dir(add_data)
    add_data.add_argument("--note", help="recorded with the batch (who sent it, why)")
    add_data.add_argument(
        "--drift",
        choices=DRIFT_MODES,
        default=DRIFT_MODES[0],
        help="report: drift is informative; block: flagged drift refuses the batch (default: %(default)s)",
    )
    add_data.add_argument(
        "--min-images",
        type=int,
        default=defaults.MIN_IMAGES,
        metavar="N",
        help="refuse batches of fewer images (default: %(default)s)",
    )
    add_data.set_defaults(handler=cmd_add_data)

    scans = sub.add_parser("add-scans", help="queue unlabelled images for the review page, scored by the champion")
    scans.add_argument("source", type=Path, metavar="SOURCE", help="an image file or a folder, as predict reads")
    scans.add_argument("--note", help="recorded with each image (who sent it, why)")
    _add_data_dir(scans)
    scans.set_defaults(handler=cmd_add_scans)

    validate = sub.add_parser("validate", help="check the published dataset; exits non-zero listing what failed")
    _add_data_dir(validate)
    validate.add_argument(
        "--image-shape", metavar="HxW", help="expected image size, e.g. 32x32 (default: the size declared at ingest)"
    )
    validate.set_defaults(handler=cmd_validate)

    run = sub.add_parser("run", help="run the whole flow: ingest, validate, train, evaluate, report")
    add_config_options(run)
    run.set_defaults(handler=cmd_run)

    serve = sub.add_parser(
        "serve",
        help="register and serve the retrain, maintenance and batch-predict deployments (needs PREFECT_API_URL)",
    )
    serve.add_argument("--cron", help="cron schedule (default: $MNIST_PIPELINE_CRON or '0 3 * * 1', weekly)")
    serve.add_argument("--timezone", help="IANA timezone of the schedule (default: $MNIST_PIPELINE_TIMEZONE or UTC)")
    serve.add_argument(
        "--cooldown",
        type=float,
        metavar="MINUTES",
        help="a retrain starts this long after an accepted increment, with all accepted by then (default: 10)",
    )
    add_config_options(serve)
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

    collect = sub.add_parser("gc", help="delete old models, evaluations and datasets that no champion needs")
    _add_data_dir(collect)
    collect.add_argument(
        "--grace-days",
        type=float,
        default=DEFAULT_GRACE_DAYS,
        help="keep whatever was used within this many days (default: %(default)s)",
    )
    collect.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    collect.set_defaults(handler=cmd_gc)

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
    predict.add_argument(
        "--target-error",
        type=parse_error_rate,
        default=defaults.TARGET_ERROR,
        help="answer only while the estimated error among answers stays under this (default: %(default)s)",
    )
    predict.add_argument("--answer-all", action="store_true", help="answer every image, however unsure")
    predict.set_defaults(handler=cmd_predict)

    web = sub.add_parser("app", help="serve the drawing page (ask the champion, send corrections) and the reports")
    web.add_argument(
        "--port", type=int, default=links.resolve_port(), help="port (default: $MNIST_REPORT_PORT or 4201)"
    )
    web.add_argument("--host", default=links.HOST, help="address to listen on (default: %(default)s, loopback)")
    _add_data_dir(web)
    web.add_argument(
        "--reports-dir",
        type=Path,
        default=defaults.REPORTS_DIR,
        help="folder served at /reports/ (default: %(default)s)",
    )
    web.add_argument(
        "--model",
        choices=model_names(),
        default=DEFAULT_PREDICT_MODEL,
        help="whose champion answers (default: %(default)s)",
    )
    web.add_argument(
        "--allowed-hosts",
        type=links.parse_hosts,
        default=links.resolve_allowed_hosts(),
        help=f"comma-separated Host values to answer (default: ${links.HOSTS_ENV} or {','.join(links.LOOPBACK_HOSTS)})",
    )
    web.add_argument(
        "--feedback-batch",
        type=int,
        default=defaults.FEEDBACK_BATCH,
        metavar="N",
        help="corrections per batch sent to the gate (default: %(default)s)",
    )
    web.add_argument(
        "--review-batch",
        type=int,
        default=defaults.REVIEW_BATCH,
        metavar="N",
        help="review labels per batch sent to the gate (default: %(default)s)",
    )
    web.set_defaults(handler=cmd_app)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors and OS errors become one message and exit code 2, never a traceback."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    set_tensorflow_environment()
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
