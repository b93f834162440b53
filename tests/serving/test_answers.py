"""The per-image answer: mutual information is zero when members agree and log 2 when two split."""

import numpy as np
import pytest

from committee.serving.answers import mutual_information


def test_mutual_information():
    same = np.tile(np.array([[0.7, 0.2, 0.1]]), (3, 4, 1))  # 3 members, 4 images, all saying the same
    assert mutual_information(same) == pytest.approx(np.zeros(4), abs=1e-9)
    split = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # two sure members that disagree
    assert mutual_information(split)[0] == pytest.approx(np.log(2), abs=1e-6)
