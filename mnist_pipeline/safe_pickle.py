"""Restricted unpickling: a pickle can run arbitrary code, so only numpy array rebuilding is admitted."""

from __future__ import annotations

import io
import pickle
from typing import Any

from mnist_pipeline.errors import DataFormatError

# Exactly the globals a pickled ndarray needs (numpy 1.x and 2.x module paths).
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, origin: str) -> None:
        super().__init__(file, encoding="latin1")
        self._origin = origin

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise DataFormatError(
                f"{self._origin}: pickle asks for '{module}.{name}'; expected only numpy array "
                "reconstruction (refused: unpickling it could run code)"
            )
        import numpy as np

        if module == "numpy":
            return getattr(np, name)
        return np._core.multiarray._reconstruct


def load_numpy_pickle(data: bytes, origin: str) -> Any:
    """Unpickle `data` admitting nothing but numpy arrays, dtypes, tuples and lists."""
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), origin).load()
    except DataFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataFormatError(f"{origin}: expected a pickle of numpy arrays, found a broken pickle ({exc})") from exc
