"""Machine facts: the CPU signature that keys cached speed choices."""

from committee.base.machine import cpu_flags, cpu_model, cpu_signature

ZEN3 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
ZEN5 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 avx512_vnni\n"


def test_two_cpus_with_one_model_string_get_different_signatures():
    assert cpu_model(ZEN3) == cpu_model(ZEN5) == "AMD EPYC"
    assert cpu_signature(ZEN3) != cpu_signature(ZEN5)
    assert "avx512_bf16" in cpu_signature(ZEN5) and "avx512_bf16" not in cpu_signature(ZEN3)
    assert cpu_flags(ZEN3) == {"fpu", "sse2", "avx", "avx2", "fma"}


def test_signature_of_this_machine_names_its_model_and_cores():
    sig = cpu_signature()
    assert cpu_model() in sig and "cores" in sig
