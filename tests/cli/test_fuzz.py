"""A short fuzz run in the suite; benchmarks/fuzz.py runs the same checks for longer."""

import pytest
from fuzz_cases import check_idx, check_image, mutated, seeds
from hypothesis import HealthCheck, given, settings

SEEDS = seeds()
FAST = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("kind", ["idx", "idx.gz", "labels.gz"])
def test_fuzz_idx_reader(kind):
    @FAST
    @given(mutated(SEEDS[kind]))
    def run(data):
        check_idx(data)

    run()


@pytest.mark.parametrize("kind", ["png", "jpg", "gif", "exif.jpg"])
def test_fuzz_image_loader(kind):
    @FAST
    @given(mutated(SEEDS[kind]))
    def run(data):
        check_image(data, kind)

    run()


@pytest.mark.parametrize("kind", ["idx", "idx.gz", "labels.gz", "png", "jpg", "gif", "exif.jpg"])
def test_unmutated_files_still_parse(kind):
    """The checks above must not pass by refusing everything: a valid file parses (and IDX round-trips)."""
    import gzip

    from committee.data.fashion_mnist import parse_idx

    data = SEEDS[kind]
    outcome = check_idx(data) if kind.startswith(("idx", "labels")) else check_image(data, kind)
    assert outcome == "parsed"
    if kind == "idx.gz":
        raw = gzip.decompress(data)
        assert parse_idx(raw, "x", 3).shape == (20, 28, 28)
