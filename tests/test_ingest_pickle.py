"""The restricted unpickler: numpy arrays load, anything that could run code is refused before it runs."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.data.safe_pickle import load_numpy_pickle
from mnist_pipeline.errors import DataFormatError


class _Payload:
    """Pickles as `func(arg)`; every variant below creates `marker` when it runs."""

    def __init__(self, func: object, arg: str) -> None:
        self.func, self.arg = func, arg

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return self.func, (self.arg,)


def _payload(name: str, marker: Path) -> _Payload:
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "builtins.eval": _Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.getoutput": _Payload(subprocess.getoutput, f"touch {marker}"),
    }[name]


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.getoutput"])
@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, name: str, protocol: int) -> None:
    marker = tmp_path / "payload-ran"
    payload = _payload(name, marker)
    # Hidden inside an otherwise legitimate structure, after a real array.
    data = pickle.dumps(((np.zeros((2, 4), np.float32), np.arange(2)), payload), protocol=protocol)

    pickle.loads(data)  # control: a plain unpickler really runs it
    assert marker.exists()
    marker.unlink()

    with pytest.raises(DataFormatError) as info:
        load_numpy_pickle(data, "evil.pkl")
    message = str(info.value)
    assert message.startswith("evil.pkl: pickle asks for")
    # The refusal names the global (protocol 2 spells the module the Python 2 way, e.g. __builtin__).
    assert f".{name.split('.')[-1]}'" in message
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_load_at_every_protocol(protocol: int) -> None:
    rng = np.random.default_rng(protocol)
    x = (rng.integers(0, 256, (5, 16)) / 256).astype(np.float32)
    y = rng.integers(0, 10, 5)
    triple = ((x, y), (x[:2], y[:2]), [x.T, y.astype(np.uint8)])
    loaded = load_numpy_pickle(pickle.dumps(triple, protocol=protocol), "ok.pkl")
    assert isinstance(loaded, tuple) and len(loaded) == 3
    for got, want in zip([a for pair in loaded for a in pair], [a for pair in triple for a in pair], strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_numpy_scalar_and_other_numpy_globals_are_refused() -> None:
    """Only array reconstruction is admitted, not every numpy callable (e.g. numpy.load could read files)."""
    with pytest.raises(DataFormatError, match="numpy"):
        load_numpy_pickle(pickle.dumps(np.float32(1.5)), "scalar.pkl")
    with pytest.raises(DataFormatError, match=r"'numpy\.load'"):
        load_numpy_pickle(pickle.dumps(_Payload(np.load, "/etc/passwd")), "np-load.pkl")


@pytest.mark.parametrize("data", [b"", b"not a pickle", pickle.dumps((1, 2))[:-3]], ids=["empty", "garbage", "cut"])
def test_broken_pickle_is_a_data_format_error(data: bytes) -> None:
    with pytest.raises(DataFormatError, match=r"^x\.pkl: expected a pickle of numpy arrays, found a broken pickle"):
        load_numpy_pickle(data, "x.pkl")
