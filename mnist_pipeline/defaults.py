"""Every default a user can override, defined once: the CLI, the flow signatures, the deployment and RunConfig
all read them here, so `--help`, the Prefect UI's parameter form and a bare `RunConfig()` always agree."""

from pathlib import Path

SOURCE = "auto"
PROFILE = "default"
SEED = 42
# Promotion: the accuracy gain (a fraction; this one is 0.05 points) a challenger needs to become champion, and the
# largest per-digit recall drop (fraction) a promoted model may have.
PROMOTION_MARGIN = 0.0005
MAX_RECALL_DROP = 0.01
TASK_RUNNER = "threads"
IMAGE_SHAPE = (28, 28)
DATA_DIR = Path("data")
REPORTS_DIR = Path("reports")
PREDICTIONS_DIR = REPORTS_DIR / "predictions"
# Batch predictions below this probability are flagged for a person to look at.
LOW_CONFIDENCE = 0.9
