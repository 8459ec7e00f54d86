"""Restricted unpickling: a pickle can run arbitrary code, so only numpy array rebuilding is admitted."""

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any

from mnist_pipeline.errors import DataFormatError

# Exactly the globals a pickled ndarray needs, mapped to where they live now. numpy 1.x pickles name
# `numpy.core`; Python 3 pickles at protocol <= 2 rebuild bytes with `_codecs.encode`; protocol 5 uses
# `_frombuffer`. None of them can run code.
_ALLOWED = {
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"): ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, origin: str) -> None:
        super().__init__(file, encoding="latin1")
        self._origin = origin

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise DataFormatError(
                f"{self._origin}: pickle asks for '{module}.{name}'; expected only numpy array "
                "reconstruction (refused: unpickling it could run code)"
            )
        return getattr(importlib.import_module(target[0]), target[1])


def load_numpy_pickle(data: bytes, origin: str) -> Any:
    """Unpickle `data` admitting nothing but numpy arrays, dtypes, tuples and lists."""
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), origin).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataFormatError(f"{origin}: expected a pickle of numpy arrays, found a broken pickle ({exc})") from exc
