"""What the machine that runs training can do, read before choosing a hardware-specific setting (bfloat16 is much
faster than float32 only where oneDNN has native bf16 kernels: docs/training.md). Nothing here imports TensorFlow,
so the choice can be made (and cached on) before TF loads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# Training precisions; "auto" resolves per machine (resolve_precision).
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
# CPU flags (as /proc/cpuinfo spells them) under which oneDNN computes bfloat16 natively.
NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# NVIDIA compute capability from which bfloat16 is native (Ampere and newer).
NATIVE_BF16_MIN_COMPUTE_CAPABILITY = 8.0
# TensorFlow's switch for its oneDNN kernels, read once when TensorFlow loads.
ONEDNN_SWITCH = "TF_ENABLE_ONEDNN_OPTS"


@dataclass(frozen=True)
class Hardware:
    """The facts a precision choice rests on: CPU flags and the compute capabilities of visible NVIDIA GPUs."""

    cpu_flags: frozenset[str]
    gpu_compute_capabilities: tuple[float, ...] = ()


@dataclass(frozen=True)
class PrecisionChoice:
    """A resolved precision and the reason, for the log."""

    precision: str
    reason: str


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's flags on Linux; empty elsewhere (no native bf16 is then assumed)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def read_gpu_compute_capabilities() -> tuple[float, ...]:
    """Compute capabilities from `nvidia-smi` when one is installed and answers; none otherwise."""
    if shutil.which("nvidia-smi") is None or os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return ()
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    values = []
    for line in output.split():
        try:
            values.append(float(line))
        except ValueError:
            continue
    return tuple(values)


@cache
def detect_hardware() -> Hardware:
    """This machine's facts, read once per process."""
    return Hardware(read_cpu_flags(), read_gpu_compute_capabilities())


def resolve_precision(requested: str, hardware: Hardware | None = None) -> PrecisionChoice:
    """`auto` becomes mixed_bfloat16 only where bf16 is native (GPU or CPU), float32 elsewhere; others pass."""
    if requested != "auto":
        return PrecisionChoice(requested, f"{requested} requested")
    hardware = hardware or detect_hardware()
    bf16_gpus = [cc for cc in hardware.gpu_compute_capabilities if cc >= NATIVE_BF16_MIN_COMPUTE_CAPABILITY]
    if bf16_gpus:
        return PrecisionChoice("mixed_bfloat16", f"auto: GPU with compute capability {bf16_gpus[0]} computes bf16")
    if hardware.gpu_compute_capabilities:
        return PrecisionChoice("float32", "auto: the GPU has no native bfloat16")
    native = sorted(flag for flag in NATIVE_BF16_CPU_FLAGS if flag in hardware.cpu_flags)
    if native:
        return PrecisionChoice("mixed_bfloat16", f"auto: CPU has {', '.join(native)}")
    return PrecisionChoice("float32", f"auto: CPU has none of {', '.join(NATIVE_BF16_CPU_FLAGS)}")


def choose_onednn(cpu_flags: frozenset[str]) -> bool:
    """Whether TensorFlow should run oneDNN's kernels: on every CPU with AVX2.

    TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI, bfloat16 or AMX; on an AVX2-only CPU it
    keeps its Eigen kernels, with which the CNN's epoch took 1.7x as long (bench/RESULTS.md, "oneDNN on AVX2").
    """
    return "avx2" in cpu_flags


def enable_onednn_where_it_helps() -> None:
    """Set ONEDNN_SWITCH to 1 where `choose_onednn` says so, before TensorFlow loads; a user's own value stays
    (child processes inherit either)."""
    if ONEDNN_SWITCH not in os.environ and choose_onednn(read_cpu_flags()):
        os.environ[ONEDNN_SWITCH] = "1"


def count_usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset narrow), not the host's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
