"""`--dask-address`: training runs on an existing Dask cluster (a real `dask scheduler` and `dask worker`), the
models side by side on its two workers."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import find_free_port, start_process, stop_process
from tests.test_flow import assert_overlapping, read_task_runs, run_flow

pytestmark = pytest.mark.usefixtures("prefect_server")
DASK = str(Path(sys.executable).with_name("dask"))


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and two single-threaded workers on loopback, as separate processes; yields the address."""
    port = find_free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = (tmp_path / "dask.log").open("w")
    scheduler = start_process(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env=dict(os.environ),
        stdout=log,
    )
    wait_for_port(port, 60)
    worker = start_process(
        [DASK, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard", "--name", "loopback"],
        env=dict(os.environ),
        stdout=log,
    )
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        stop_process(worker)
        stop_process(scheduler)
        log.close()


def test_training_runs_on_the_given_dask_scheduler(dask_cluster: str, synthetic_npz: Path, tmp_path: Path) -> None:
    from distributed import Client

    state, metrics = run_flow(
        tmp_path,
        synthetic_npz,
        task_runner="dask",
        dask_address=dask_cluster,
        models=["ann_no_hidden", "ann_hidden_100"],
        train_limit=600,
    )
    assert state.is_completed(), state.message
    assert (metrics["run"]["task_runner"], metrics["run"]["parameters"]["dask_address"]) == ("dask", dask_cluster)
    assert [model["train_rows"] for model in metrics["models"].values()] == [600, 600]
    assert_overlapping(read_task_runs(str(state.state_details.flow_run_id), "train"))
    with Client(dask_cluster, timeout=30) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    # Each model's train, evaluate and charts tasks ran on the cluster's workers, which shared them.
    assert sum(executed.values()) == 6 and all(executed.values())
