"""The 1-NN identity with "unknown" under a threshold, against hand-computed answers."""

import numpy as np
import pytest

from finegrain.errors import DataError
from finegrain.identification.nearest import nearest_identity


def test_nearest_identity_and_unknown_under_threshold():
    similarity = np.array([
        [0.9, 0.2, 0.7, 0.1],  # a (0.9); then b at its best image (0.7), then c
        [0.3, 0.4, 0.1, 0.35],  # best is b at 0.4: under the 0.5 threshold -> unknown
        [0.1, 0.2, 0.3, 0.5],  # exactly at the threshold: accepted
    ])
    labels = ["a", "b", "b", "c"]
    known, unknown, edge = nearest_identity(similarity, labels, threshold=0.5, alternatives=5)
    assert known.label == "a" and not known.unknown and known.confidence == pytest.approx(0.9)
    assert known.alternatives == [("b", pytest.approx(0.7)), ("c", pytest.approx(0.1))]  # distinct identities
    assert unknown.label is None and unknown.unknown and unknown.nearest == "b"
    assert unknown.confidence == pytest.approx(0.4)
    assert [label for label, _ in unknown.alternatives] == ["c", "a"]
    assert edge.label == "c" and not edge.unknown
    assert nearest_identity(similarity, labels, threshold=0.5)[0].alternatives == []
    # Unlabelled gallery images give no identity; a gallery with no labels at all is an error.
    assert nearest_identity(similarity[:1], [None, "b", "b", "c"], 0.5)[0].label == "b"
    with pytest.raises(DataError, match="no labelled images"):
        nearest_identity(similarity, [None] * 4, 0.5)
