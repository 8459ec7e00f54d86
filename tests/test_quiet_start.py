"""TensorFlow starts without its C++ start-up lines, passes other stderr output on, and leaves a user's level alone."""

from __future__ import annotations

import os
import subprocess
import sys

from mnist_pipeline.modeling.hardware import ONEDNN_SWITCH, choose_onednn, read_cpu_flags
from mnist_pipeline.modeling.quiet_start import DEFAULT_MARK, LOG_LEVEL, STARTUP_LINES

# What start_tensorflow sets the oneDNN switch to on this machine, when the user has not.
ONEDNN = "1" if choose_onednn(read_cpu_flags()) else "None"

# The real start-up, plus one line of another kind written to fd 2 while it is captured.
SCRIPT = """
import os
from mnist_pipeline.modeling import quiet_start

real_import = quiet_start._import_tensorflow

def import_and_complain():
    real_import()
    os.write(2, b"a real error\\n")

quiet_start._import_tensorflow = import_and_complain
quiet_start.start_tensorflow()
print(os.environ["TF_CPP_MIN_LOG_LEVEL"], os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
"""


def _start_tensorflow(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A fresh process (TF starts once per process) with `env` instead of this one's TF settings."""
    clean = {key: value for key, value in os.environ.items() if key not in (LOG_LEVEL, DEFAULT_MARK, ONEDNN_SWITCH)}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=clean | env, capture_output=True, text=True, timeout=300, check=True
    )


def test_start_up_lines_are_dropped_and_other_lines_kept() -> None:
    started = _start_tensorflow({})
    assert [known for known in STARTUP_LINES if known in started.stderr] == []
    assert "a real error\n" in started.stderr
    assert started.stdout.split() == ["2", ONEDNN]


def test_a_user_who_sets_the_level_sees_what_it_lets_through() -> None:
    started = _start_tensorflow({LOG_LEVEL: "2", ONEDNN_SWITCH: "0"})
    assert any(known in started.stderr for known in STARTUP_LINES)
    assert "a real error\n" in started.stderr
    assert started.stdout.split() == ["2", "0"]
