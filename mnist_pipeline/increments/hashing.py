"""Content hashes of prepared images, and the 80/20 train/test split they decide.

The part an image goes to depends on its bytes alone, so the same image lands in the same part whatever batch,
order or day it arrives in, and nothing ever moves between parts later.
"""

from __future__ import annotations

import hashlib

import numpy as np

SHA_BYTES = 16
SHA_DTYPE = f"S{SHA_BYTES}"
TEST_PERCENT = 20


def hash_images(images: np.ndarray) -> np.ndarray:
    """BLAKE2b-128 of each uint8 (n, 28, 28) image's bytes, as a dtype 'S16' array."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    digests = [hashlib.blake2b(row.data, digest_size=SHA_BYTES).digest() for row in flat]
    return np.array(digests, dtype=SHA_DTYPE) if digests else np.zeros(0, dtype=SHA_DTYPE)


def is_test_part(shas: np.ndarray) -> np.ndarray:
    """Per hash: True for the test part (the first 8 bytes, big-endian, modulo 100 below 20), else train."""
    if len(shas) == 0:
        return np.zeros(0, dtype=bool)
    leading = np.frombuffer(np.ascontiguousarray(shas, dtype=SHA_DTYPE).tobytes(), dtype=">u8").reshape(-1, 2)[:, 0]
    return leading % 100 < TEST_PERCENT
