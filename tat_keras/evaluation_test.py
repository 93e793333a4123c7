"""Tests of evaluation: errors and MSD against a NumPy re-derivation."""

import numpy as np
import pytest

from tat_keras import evaluation


def _data(seed=0, count=60):
    rng = np.random.default_rng(seed)
    gaze_true = rng.normal(size=(count, 2)) * 4
    gaze_pred = gaze_true + rng.normal(size=(count, 2))
    metadata = {"recording": rng.integers(0, 3, count), "dot": rng.integers(0, 4, count),
                "device_type": rng.integers(0, 2, count)}
    return gaze_true, gaze_pred, metadata


def test_summarize_matches_numpy():
    gaze_true, gaze_pred, metadata = _data()
    got = evaluation.summarize(gaze_true, gaze_pred, metadata, prefix="val",
                               msd_min_length=3)
    errors = np.sqrt(((gaze_true - gaze_pred) ** 2).sum(axis=1))
    assert got["val_error_cm"] == pytest.approx(errors.mean(), rel=1e-12)
    assert got["val_examples"] == 60
    for index, name in enumerate(("phone", "tablet")):
        chosen = metadata["device_type"] == index
        assert got[f"val_error_cm_{name}"] == pytest.approx(errors[chosen].mean())
    # MSD: per (recording, dot) sequence of >= 3 frames, the root mean squared
    # distance of its predictions to their mean (Eq. 10-12), averaged.
    sigmas = []
    for recording in range(3):
        for dot in range(4):
            chosen = (metadata["recording"] == recording) & (metadata["dot"] == dot)
            if chosen.sum() >= 3:
                points = gaze_pred[chosen]
                sigmas.append(np.sqrt(np.mean(np.sum((points - points.mean(0)) ** 2, 1))))
    assert got["val_msd_sequences"] == len(sigmas)
    assert got["val_msd_cm"] == pytest.approx(np.mean(sigmas), rel=1e-9)


def test_summarize_without_metadata_or_tablets():
    gaze_true, gaze_pred, metadata = _data(1, 10)
    assert set(evaluation.summarize(gaze_true, gaze_pred)) == {"test_error_cm",
                                                               "test_examples"}
    metadata["device_type"][:] = 0
    got = evaluation.summarize(gaze_true, gaze_pred, metadata, msd_min_length=100)
    assert got["test_error_cm_tablet"] is None
    assert got["test_msd_cm"] is None and got["test_msd_sequences"] == 0


class _Decoded:
    """What `predict_split` reads of a `pipeline.DecodedSplit`."""

    def __init__(self, count):
        rng = np.random.default_rng(2)
        self.images = {k: rng.integers(0, 255, (count, 4, 4, 3), dtype=np.uint8)
                       for k in ("face", "left_eye", "right_eye")}
        self.gaze_cm = rng.normal(size=(count, 2)).astype(np.float32)
        self.metadata = {"recording": np.arange(count), "dot": np.zeros(count, int),
                         "device_type": np.zeros(count, int)}

    def batches(self, batch_size):
        from tat_keras.data.pipeline import DecodedSplit

        return DecodedSplit(self.images, self.gaze_cm, self.metadata).batches(batch_size)


def test_predict_split_on_a_decoded_split_keeps_order_and_batches():
    decoded = _Decoded(7)
    sizes = []

    def predict_fn(inputs):
        sizes.append(len(inputs["face"]))
        assert inputs["face"].dtype == np.float32
        return inputs["face"][:, 0, 0, :2]

    gaze_true, gaze_pred, metadata = evaluation.predict_split(
        predict_fn, None, "test", batch_size=3, decoded=decoded)
    assert sizes == [3, 3, 1]
    np.testing.assert_array_equal(gaze_true, decoded.gaze_cm)
    np.testing.assert_array_equal(gaze_pred, decoded.images["face"][:, 0, 0, :2])
    np.testing.assert_array_equal(metadata["recording"], np.arange(7))


def test_empty_split_is_an_error():
    with pytest.raises(ValueError, match="has no examples"):
        evaluation.predict_split(lambda x: x, "data", "test", decoded=_Decoded(0))
