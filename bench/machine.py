"""The machine a benchmark figure was measured on, for its record: figures from different CPUs do not compare."""

from __future__ import annotations

from pathlib import Path

from mnist_pipeline.modeling.hardware import count_usable_cores, read_cpu_flags

# Flags worth recording next to a benchmark figure: they decide which kernels TF/oneDNN can use.
BENCHMARK_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def read_cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, or "unknown"."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def describe_cpu() -> str:
    """One line for a benchmark record: model, the relevant flags present, usable cores."""
    present = [flag for flag in BENCHMARK_CPU_FLAGS if flag in read_cpu_flags()]
    flags = " ".join(present) or f"none of {', '.join(BENCHMARK_CPU_FLAGS)}"
    return f"{read_cpu_model()} ({flags}; {count_usable_cores()} cores)"
