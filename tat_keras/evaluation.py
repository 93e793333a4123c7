"""Evaluation of a gaze predictor on a prepared split: error in cm and MSD.

The same functions serve Keras models (`recipes/evaluate.py`) and TFLite
files (`tflite/evaluate.py`), so both report identical keys.
"""

import numpy as np

from tat_keras import metrics

DEVICE_TYPES = ("phone", "tablet")


def predict_split(predict_fn, data_dir, split, *, image_size=64, batch_size=256,
                  max_examples=None, decoded=None):
    """Runs `predict_fn` over a prepared split, in file order.

    Args:
        predict_fn: callable. Takes a dict of float32 batches (`face`,
            `left_eye`, `right_eye`, pixels in [0, 255]) and returns the
            predicted gaze `(batch, 2)` in cm as a NumPy array.
        data_dir: str. TFDS data directory holding the prepared
            `gaze_capture` dataset.
        split: str. `train`, `validation` or `test`.
        image_size: int. Crop size of the prepared dataset.
        batch_size: int. Examples per call of `predict_fn`.
        max_examples: int or None. Stop after this many examples.
        decoded: `pipeline.DecodedSplit` or None. The split already decoded
            (by a run that keeps it in memory); `data_dir` is then not read.

    Returns:
        `(gaze_true, gaze_pred, metadata)`: float arrays `(N, 2)` and a dict
        of `(N,)` arrays (`recording`, `dot`, `frame`, `device_type`,
        `orientation`, ...).
    """
    if decoded is not None:
        batches = decoded.batches(batch_size)
    else:
        from tat_keras.data import pipeline  # The data floor sits above metrics.

        batches = pipeline.make_dataset(
            data_dir,
            split,
            image_size=image_size,
            batch_size=batch_size,
            with_metadata=True,
            max_examples=max_examples,
        ).as_numpy_iterator()
    gaze_true, gaze_pred, metadata = [], [], {}
    for inputs, gaze_cm, meta in batches:
        gaze_pred.append(np.asarray(predict_fn(inputs), np.float32).reshape(-1, 2))
        gaze_true.append(gaze_cm)
        for key, value in meta.items():
            metadata.setdefault(key, []).append(np.asarray(value))
    if not gaze_true:
        raise ValueError(
            f"Split {split!r} in {data_dir} has no examples; prepare the data "
            "again (recipes/prepare_gazecapture.py)."
        )
    metadata = {key: np.concatenate(value) for key, value in metadata.items()}
    return np.concatenate(gaze_true), np.concatenate(gaze_pred), metadata


def summarize(gaze_true, gaze_pred, metadata=None, *, prefix="test", msd_min_length=5):
    """Error in cm overall and per device type, and MSD over stare sequences.

    Sequences are the frames of one recording that share a dot (GazeCapture's
    `DotNum`); those shorter than `msd_min_length` frames are left out of MSD
    and the number counted is reported.

    Args:
        gaze_true: array `(N, 2)` in cm.
        gaze_pred: array `(N, 2)` in cm.
        metadata: dict of `(N,)` arrays with `recording`, `dot` and
            `device_type` (0 phone, 1 tablet), or None for error only.
        prefix: str. Key prefix, e.g. `test` or `val`.
        msd_min_length: int. Shortest sequence counted by MSD.

    Returns:
        dict of floats and ints keyed `{prefix}_error_cm`,
        `{prefix}_error_cm_phone`, `{prefix}_error_cm_tablet`,
        `{prefix}_msd_cm`, `{prefix}_msd_sequences`, `{prefix}_examples`.
        Values without data (no tablet frames, no long sequences) are None.

    Example:

    >>> true = np.zeros((4, 2))
    >>> pred = np.array([[3.0, 4.0], [3.0, 4.0], [0.0, 1.0], [0.0, 3.0]])
    >>> meta = {"recording": np.zeros(4), "dot": np.array([0, 0, 1, 1]),
    ...         "device_type": np.zeros(4)}
    >>> summarize(true, pred, meta, msd_min_length=2)["test_msd_cm"]
    0.5
    """
    errors = metrics.euclidean_error(gaze_true, gaze_pred)
    result = {
        f"{prefix}_error_cm": float(np.mean(errors)) if len(errors) else None,
        f"{prefix}_examples": int(len(errors)),
    }
    if metadata is None:
        return result
    device_type = np.asarray(metadata["device_type"]).reshape(-1)
    for index, name in enumerate(DEVICE_TYPES):
        chosen = device_type == index
        result[f"{prefix}_error_cm_{name}"] = (
            float(np.mean(errors[chosen])) if np.any(chosen) else None
        )
    sigmas = metrics.sequence_standard_deviations(
        gaze_pred,
        (np.asarray(metadata["recording"]), np.asarray(metadata["dot"])),
        min_length=msd_min_length,
    )
    result[f"{prefix}_msd_cm"] = float(np.mean(sigmas)) if len(sigmas) else None
    result[f"{prefix}_msd_sequences"] = int(len(sigmas))
    return result
