"""The small shared helpers: the table formatter every report prints with, and the top-k scorer
both frameworks' evaluations count with."""

import numpy as np
import pytest

from alexnet_spec.text import format_table
from alexnet_training.metrics import log_softmax, topk_hits


def test_table_columns_line_up_under_a_dashed_header():
    lines = format_table(["name", "n", ""], [["conv1", 64, "ok"], ["fc", 4096, "FAIL"]], right=[1])
    assert lines == [
        "name      n",
        "-----  ----  ----",
        "conv1    64  ok",
        "fc     4096  FAIL",
    ]


def test_topk_counts_hits_and_breaks_ties_by_the_lower_class():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
    labels = np.array([1, 0, 1, 0])
    # row 1: a tie ranks class 0 first; row 2: class 1 second; row 3: class 0 is second
    assert topk_hits(scores, labels, ks=(1, 2, 3)) == (2, 4, 4)
    assert topk_hits(scores, labels) == (2, 4)  # k beyond the classes counts every row
    with pytest.raises(ValueError, match="expected scores"):
        topk_hits(scores[0], labels[:1])


def test_log_softmax_is_stable_and_normalised():
    x = np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]])
    np.testing.assert_allclose(np.exp(log_softmax(x)), [[0.5, 0.5], [0.25, 0.75]])
