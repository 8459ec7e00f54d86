"""A retrain on grown data against a real Prefect server: a challenger that wins on `new` but loses on `test` stays
a challenger.

The data is built so that this happens by construction, not by luck: digits drawn in MNIST style (so the batch's
MNIST-style preprocessing leaves them as they are), and a batch that labels every digit as the next one (a
writer who follows another convention). The grown training set holds twice as many shifted labels as MNIST-like
ones, so a model trained from scratch on it learns the shift: it wins on `new` (the batch's test part, which only
the shift explains) and loses on `test` (the base test split) by far more than the allowed 0.2 points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline import defaults
from tests.predict_support import draw_digits
from tests.test_flow import run_flow

pytestmark = pytest.mark.usefixtures("prefect_server")
MODEL = "ann_no_hidden"


def unique_rows(images: np.ndarray, labels: np.ndarray, seen: set[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The images (and their labels) not drawn before, so no gate check refuses an accidental duplicate."""
    keep = []
    for index, image in enumerate(images):
        if image.tobytes() not in seen:
            seen.add(image.tobytes())
            keep.append(index)
    return images[keep], labels[keep]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The base dataset (600 train / 200 test drawn digits) and the shifted batch (1500 drawn digits)."""
    folder = tmp_path_factory.mktemp("sets")
    seen: set[bytes] = set()
    x_train, y_train = unique_rows(*draw_digits(600, seed=11), seen)
    x_test, y_test = unique_rows(*draw_digits(200, seed=12), seen)
    np.savez(folder / "base.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    x_batch, y_batch = unique_rows(*draw_digits(1500, seed=13), seen)
    np.savez(folder / "shifted.npz", x=x_batch, y=(y_batch + 1) % 10)
    return folder / "base.npz", folder / "shifted.npz"


def test_a_challenger_that_wins_on_new_but_loses_on_test_is_not_promoted(
    sources: tuple[Path, Path], tmp_path: Path
) -> None:
    from mnist_pipeline.champion.registry import find_champion, load_registry
    from mnist_pipeline.data.layout import DataLayout
    from mnist_pipeline.increments.inbox import land_batch
    from mnist_pipeline.increments.sources import read_labelled_batch
    from mnist_pipeline.modeling.evaluation import evaluate_saved_model

    base, shifted = sources
    settings = {"models": [MODEL], "epochs": {MODEL: 2}}
    state, first = run_flow(tmp_path, base, **settings)
    assert state.is_completed(), state.message
    assert first["champion"][MODEL]["promoted"] and "new" not in first["models"][MODEL]["eval"]
    assert (first["data"]["increments"], first["data"]["new_rows"]) == ([], 0)

    layout = DataLayout(tmp_path / "data")
    batch_id = land_batch(layout, read_labelled_batch(shifted), source=str(shifted), note="labels shifted by one")
    state, second = run_flow(tmp_path, base, **settings)  # gates the pending batch, grows the version, retrains
    assert state.is_completed(), state.message

    assert second["data"]["increments"] == [batch_id]
    assert second["data"]["fingerprint"] != first["data"]["fingerprint"]
    assert second["data"]["test_sha256"] == first["data"]["test_sha256"]  # `test` never changes
    challenger = second["models"][MODEL]
    assert challenger["eval"]["new"]["rows"] == second["data"]["new_rows"] > 0
    assert challenger["eval"]["test"]["accuracy"] == challenger["test_accuracy"]
    decision = second["champion"][MODEL]
    assert decision["promoted"] is False
    assert decision["champion_run"] == first["run"]["name"]
    # The champion was measured on no `new` set: it is scored on this one, with its own saved model...
    grown = layout.pin(second["data"]["fingerprint"])
    champion_on_new = evaluate_saved_model(layout, MODEL, first["models"][MODEL]["key"], grown.split_file("new"), None)
    assert champion_on_new.rows == decision["new_rows"] == second["data"]["new_rows"]
    assert decision["champion_new_accuracy"] == champion_on_new.accuracy
    # ...and not again on `test`, which is the one it was scored on.
    assert decision["champion_accuracy"] == first["models"][MODEL]["test_accuracy"]
    assert decision["challenger_new_accuracy"] == challenger["eval"]["new"]["accuracy"]
    # It wins on new by more than the margin and loses on test by more than the allowed drop: not promoted.
    assert decision["new_accuracy_gain"] > defaults.PROMOTION_MARGIN
    assert decision["accuracy_gain"] < -defaults.MAX_TEST_DROP
    assert "points on test, more than the allowed 0.20" in decision["reason"]
    assert "does not beat" not in decision["reason"]
    champion = find_champion(load_registry(layout.registry), MODEL)
    assert champion is not None and champion.run_name == first["run"]["name"]
    assert load_registry(layout.registry).history[-1]["kind"] == "kept"
