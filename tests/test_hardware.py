"""Precision by hardware: bfloat16 only where the machine computes it natively (flags faked here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mnist_pipeline.modeling.hardware as hardware
from mnist_pipeline.config import build_config
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.modeling.hardware import Hardware, read_cpu_flags, resolve_precision
from mnist_pipeline.modeling.profiles import choose_precision, resolve_config
from mnist_pipeline.runs.cache_keys import compute_training_key

AMX_CPU = Hardware(frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}))
AVX2_CPU = Hardware(frozenset({"avx", "avx2", "fma"}))


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert read_cpu_flags(cpuinfo) == frozenset({"fpu", "avx2", "amx_bf16"})
    assert read_cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (AMX_CPU, "mixed_bfloat16"),
        (Hardware(frozenset({"avx512_bf16"})), "mixed_bfloat16"),
        (AVX2_CPU, "float32"),
        (Hardware(frozenset()), "float32"),
        (Hardware(AVX2_CPU.cpu_flags, gpu_compute_capabilities=(8.0,)), "mixed_bfloat16"),
        (Hardware(AMX_CPU.cpu_flags, gpu_compute_capabilities=(7.5,)), "float32"),
    ],
)
def test_auto_resolves_to_bfloat16_only_with_native_support(machine: Hardware, expected: str) -> None:
    choice = resolve_precision("auto", machine)
    assert choice.precision == expected
    assert choice.reason.startswith("auto: ")


@pytest.mark.parametrize("forced", ["float32", "mixed_bfloat16"])
def test_a_forced_precision_is_kept_on_any_machine(forced: str) -> None:
    for machine in (AMX_CPU, AVX2_CPU):
        assert resolve_precision(forced, machine).precision == forced


@pytest.mark.parametrize(("machine", "expected"), [(AMX_CPU, "mixed_bfloat16"), (AVX2_CPU, "float32")])
def test_default_cnn_config_and_cache_key_hold_the_resolved_precision(
    monkeypatch: pytest.MonkeyPatch, machine: Hardware, expected: str
) -> None:
    monkeypatch.setattr(hardware, "detect_hardware", lambda: machine)
    config = resolve_config("default", "cnn")
    assert config.precision == expected
    assert choose_precision("default", "cnn").precision == expected
    assert resolve_config("default", "cnn", precision="float32").precision == "float32"
    assert resolve_config("default", "ann_hidden_100").precision == "float32"
    other = "float32" if expected == "mixed_bfloat16" else "mixed_bfloat16"
    forced = resolve_config("default", "cnn", precision=other)
    keys = {compute_training_key("cnn", "f" * 64, c.to_dict(), 42, None, None) for c in (config, forced)}
    assert len(keys) == 2


def test_unknown_precision_is_refused_by_name() -> None:
    expected = r"precision \(--precision\): .*'auto', 'float32' or 'mixed_bfloat16', found 'fp16'"
    with pytest.raises(PipelineError, match=expected):
        build_config(precision="fp16")
    assert build_config(precision="float32").precision == "float32"
    assert build_config().precision is None


@pytest.mark.parametrize(("machine", "expected"), [(AMX_CPU, True), (AVX2_CPU, True), (Hardware(frozenset()), False)])
def test_onednn_is_chosen_from_avx2(machine: Hardware, expected: bool) -> None:
    assert hardware.choose_onednn(machine.cpu_flags) is expected


@pytest.mark.parametrize(("machine", "expected"), [(AVX2_CPU, "1"), (Hardware(frozenset({"neon"})), None)])
def test_onednn_switch_is_set_before_tensorflow_loads_unless_the_user_set_it(
    monkeypatch: pytest.MonkeyPatch, machine: Hardware, expected: str | None
) -> None:
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: machine.cpu_flags)
    monkeypatch.delenv(hardware.ONEDNN_SWITCH, raising=False)
    hardware.enable_onednn_where_it_helps()
    assert os.environ.get(hardware.ONEDNN_SWITCH) == expected
    monkeypatch.setenv(hardware.ONEDNN_SWITCH, "0")
    hardware.enable_onednn_where_it_helps()
    assert os.environ[hardware.ONEDNN_SWITCH] == "0"
