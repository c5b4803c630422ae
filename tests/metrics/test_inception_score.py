import numpy as np
import pytest

from avlae_keras.metrics import inception_score


def test_uniform_predictions_score_one():
    mean, std = inception_score(np.full((100, 10), 0.1), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    mean, _ = inception_score(np.zeros((50, 7)), splits=5, from_logits=True)
    assert mean == pytest.approx(1.0, abs=1e-12)


def test_confident_balanced_predictions_score_the_number_of_classes():
    classes = 7
    one_hot = np.tile(np.eye(classes), (10, 1))  # every split of 7 holds each class once
    mean, std = inception_score(one_hot, splits=10)
    assert mean == pytest.approx(classes, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)
    mean, _ = inception_score(40.0 * one_hot, splits=10, from_logits=True)
    assert mean == pytest.approx(classes, rel=1e-9)


def test_score_lies_between_one_and_the_number_of_classes():
    rng = np.random.default_rng(0)
    mean, std = inception_score(rng.standard_normal((200, 5)) * 3, splits=10, from_logits=True)
    assert 1.0 < mean < 5.0 and std > 0


def test_rejects_non_probabilities_and_bad_splits():
    with pytest.raises(ValueError, match="from_logits"):
        inception_score(np.full((10, 3), 2.0))
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.full((5, 3), 1 / 3), splits=6)
