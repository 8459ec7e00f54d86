"""Every default a user can override, defined once: the CLI, the flow signatures, the deployment and RunConfig
all read them here, so `--help`, the Prefect UI's parameter form and a bare `RunConfig()` always agree."""

from pathlib import Path

SOURCE = "auto"
PROFILE = "default"
SEED = 42
# Promotion: the accuracy gain (a fraction; this one is 0.05 points) a challenger needs to become champion (on `new`,
# or on `test` while `new` is empty), and the largest per-digit recall drop (fraction) a promoted model may have.
PROMOTION_MARGIN = 0.0005
MAX_RECALL_DROP = 0.01
# The most a promoted model may lose on the fixed `test` set (a fraction; 0.2 points) while it wins on `new`.
MAX_TEST_DROP = 0.002
TASK_RUNNER = "threads"
IMAGE_SHAPE = (28, 28)
DATA_DIR = Path("data")
REPORTS_DIR = Path("reports")
PREDICTIONS_DIR = REPORTS_DIR / "predictions"
# The error among answered images that abstention aims at: answers less sure than that are withheld ("unsure").
TARGET_ERROR = 0.005
# The web app's corrections: this many pending ones go to the increment gate together as one batch.
FEEDBACK_BATCH = 50
# The review page's labels: this many go to the increment gate together as one batch.
REVIEW_BATCH = 100
# ...or once no label has come for this long (fewer than MIN_IMAGES wait for more).
REVIEW_IDLE_MINUTES = 10
# The increment gate refuses a batch of fewer images than this (`add-data --min-images`).
MIN_IMAGES = 10
