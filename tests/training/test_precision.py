"""The precision cache is keyed on what decides the choice, not on the CPU's model string alone."""

from committee.base.machine import cpu_signature
from committee.training.precision import cache_key, choose


def test_cache_key_names_the_cpu_signature():
    assert cache_key("cpu", "air_cnn batch 128").startswith(cpu_signature())


def test_a_choice_cached_for_one_cpu_is_not_reused_on_another(tmp_path):
    path = tmp_path / "precision.json"
    rates = {"fp32": 100.0, "bf16": 300.0}
    assert choose("auto", "AMD EPYC [avx2 avx512_bf16] 2 cores | x", rates.get, path)[0] == "bf16"
    measured = []
    slow_bf16 = {"fp32": 100.0, "bf16": 10.0}
    choice, info = choose("auto", "AMD EPYC [avx2] 2 cores | x", lambda p: measured.append(p) or slow_bf16[p], path)
    assert choice == "fp32" and not info["cached"] and measured == ["fp32", "bf16"]
