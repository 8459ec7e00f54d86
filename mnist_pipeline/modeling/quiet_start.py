"""TensorFlow's start-up without its C++ start-up lines, which look like failures on a machine without a GPU.

absl writes them to fd 2 before its logging is initialised (the cuInit one at the first device use), so
TF_CPP_MIN_LOG_LEVEL does not hide them: TensorFlow is imported here, devices included, with fd 2 captured, and
every other line is passed on; a user's own TF_CPP_MIN_LOG_LEVEL is kept. Call `start_tensorflow` before importing
any module that imports TensorFlow or Keras. Its environment (the log level, oneDNN's kernels where they help) is
set there too, and by `set_tensorflow_environment` at the CLI's start, so processes it starts inherit it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from functools import cache

from mnist_pipeline.modeling.hardware import enable_onednn_where_it_helps

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# Set beside LOG_LEVEL when its value is this package's default, not the user's (child processes inherit both).
DEFAULT_MARK = "MNIST_PIPELINE_DEFAULT_TF_LOG_LEVEL"
DEFAULT_LOG_LEVEL = "2"
STARTUP_LINES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
)
_start_lock = threading.Lock()


def set_tensorflow_environment() -> None:
    """What must be set before TF loads: its info and warning logs hidden unless the user chose a level, and
    oneDNN's kernels on where this CPU gains from them (`hardware.choose_onednn`)."""
    if LOG_LEVEL not in os.environ:
        os.environ[LOG_LEVEL] = os.environ[DEFAULT_MARK] = DEFAULT_LOG_LEVEL
    enable_onednn_where_it_helps()


def start_tensorflow() -> None:
    """Import TensorFlow and find its devices, once per process, without the known start-up lines.

    One thread at a time: two overlapping captures of fd 2 could leave it pointing at the other's file.
    """
    with _start_lock:
        _start_once()


@cache
def _start_once() -> None:
    set_tensorflow_environment()
    if os.environ.get(DEFAULT_MARK) != os.environ[LOG_LEVEL]:
        _import_tensorflow()
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            _import_tensorflow()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.writelines(line for line in lines if not any(known in line for known in STARTUP_LINES))
            sys.stderr.flush()


def _import_tensorflow() -> None:
    import tensorflow as tf

    tf.config.list_physical_devices()
