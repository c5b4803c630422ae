"""Inception Score (Salimans et al., 2016) of a classifier's predictions on generated samples."""

from __future__ import annotations

import numpy as np
import scipy.special


def inception_score(
    predictions: np.ndarray, splits: int = 10, from_logits: bool = False
) -> tuple[float, float]:
    """Mean and standard deviation over `splits` of `exp(E_x KL(p(y|x) || p(y)))`.

    `predictions` is (num_samples, num_classes): class probabilities, or logits with
    `from_logits=True`. The samples are split into `splits` consecutive, near-equal chunks and
    `p(y)` is the chunk's mean prediction, as in the reference implementation.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim != 2:
        raise ValueError(
            f"predictions must be (num_samples, num_classes), got shape {predictions.shape}"
        )
    if not 1 <= splits <= predictions.shape[0]:
        raise ValueError(f"splits must be in [1, {predictions.shape[0]}], got {splits}")
    if from_logits:
        probabilities = scipy.special.softmax(predictions, axis=1)
    else:
        if np.any(predictions < 0) or not np.allclose(predictions.sum(axis=1), 1.0, atol=1e-3):
            raise ValueError(
                "predictions are not probabilities (negative or rows not summing to 1); "
                "pass from_logits=True for logits"
            )
        probabilities = predictions / predictions.sum(axis=1, keepdims=True)
    scores = []
    for chunk in np.array_split(probabilities, splits, axis=0):
        marginal = chunk.mean(axis=0, keepdims=True)
        # rel_entr is p log(p/q) with 0 log 0 = 0, so confident (one-hot) rows are fine.
        kl = scipy.special.rel_entr(chunk, marginal).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
