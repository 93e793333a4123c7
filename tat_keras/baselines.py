"""Predictors that never look at the eyes: what a gaze model must beat.

- `training mean`: the mean gaze of the training frames, whatever the frame.
- `device and orientation prior`: the mean gaze of the training frames taken
  on the same device model in the same orientation (the training mean for a
  pair training never saw). Device and orientation fix where the screen lies
  from the camera, so they explain part of the label; a model must do
  clearly better than this to be reading the eyes.

Both are fitted on labels only, so they cost no image decoding. The NumPy
functions import neither TensorFlow nor Keras; `load_labels` reads a
prepared dataset through TFDS.

Example:

>>> import numpy as np
>>> train = {"gaze_cm": np.array([[0.0, -4.0], [2.0, -6.0], [10.0, 1.0]]),
...          "device": np.array([b"iPhone 6", b"iPhone 6", b"iPad Air 2"]),
...          "orientation": np.array([1, 1, 3])}
>>> held_out = {"device": np.array([b"iPhone 6", b"iPad Mini"]),
...             "orientation": np.array([1, 1])}
>>> device_orientation_prior(train, held_out).tolist()
[[1.0, -5.0], [4.0, -3.0]]
"""

import numpy as np

LABEL_KEYS = ("gaze_cm", "device", "orientation", "device_type", "recording", "dot")


def training_mean(train, held_out):
    """The training frames' mean gaze, once per held-out frame.

    Args:
        train: dict with `gaze_cm` `(N, 2)`.
        held_out: dict with `device` `(M,)` (only its length is used).

    Returns:
        float array `(M, 2)`.
    """
    mean = np.asarray(train["gaze_cm"], dtype=np.float64).mean(axis=0)
    return np.tile(mean, (len(held_out["device"]), 1))


def device_orientation_prior(train, held_out):
    """The training mean of each held-out frame's (device, orientation) pair;
    the overall training mean for a pair training never saw.

    Args:
        train: dict with `gaze_cm` `(N, 2)`, `device` `(N,)`, `orientation`
            `(N,)`.
        held_out: dict with `device` `(M,)` and `orientation` `(M,)`.

    Returns:
        float array `(M, 2)`.
    """
    gaze = np.asarray(train["gaze_cm"], dtype=np.float64)
    if len(gaze) == 0:
        raise ValueError("The training labels are empty; a prior needs at least one "
                         "training frame.")
    overall = gaze.mean(axis=0)
    pairs = list(zip(train["device"], train["orientation"]))
    sums, counts = {}, {}
    for pair, value in zip(pairs, gaze):
        sums[pair] = sums.get(pair, 0.0) + value
        counts[pair] = counts.get(pair, 0) + 1
    means = {pair: sums[pair] / counts[pair] for pair in sums}
    prediction = [means.get(pair, overall)
                  for pair in zip(held_out["device"], held_out["orientation"])]
    return np.asarray(prediction, dtype=np.float64).reshape(-1, 2)


PREDICTORS = {
    "training mean": training_mean,
    "device and orientation prior": device_orientation_prior,
}


def load_labels(data_dir, split, image_size=64, max_examples=None):
    """Labels and metadata of a prepared split, in stored order, without
    decoding any image.

    Args:
        data_dir: str. The TFDS data folder of a prepared set.
        split: str. `train`, `validation` or `test`.
        image_size: int. The builder config's crop size.
        max_examples: int or None. Keep the first ones only (as training
            with `max_train_examples` does).

    Returns:
        dict of arrays keyed by `LABEL_KEYS`.
    """
    import tensorflow_datasets as tfds

    from tat_keras.data import pipeline

    dataset = pipeline.load_builder(data_dir, image_size).as_dataset(
        split=split, shuffle_files=False,
        decoders=tfds.decode.PartialDecoding({key: True for key in LABEL_KEYS}))
    columns = {key: [] for key in LABEL_KEYS}
    for batch in dataset.batch(8192).as_numpy_iterator():
        for key in LABEL_KEYS:
            columns[key].append(batch[key])
    columns = {key: np.concatenate(value) for key, value in columns.items()}
    if max_examples:
        columns = {key: value[:max_examples] for key, value in columns.items()}
    return columns


def evaluate(data_dir, image_size=64, max_train_examples=None,
             splits=(("validation", "val"), ("test", "test")), msd_min_length=5):
    """Errors of every predictor of `PREDICTORS` on held-out splits.

    Args:
        data_dir: str. The TFDS data folder of a prepared set.
        image_size: int. The builder config's crop size.
        max_train_examples: int or None. Fit on the first training frames
            only, as a model trained with `max_train_examples` sees them.
        splits: pairs (split, key prefix).
        msd_min_length: int. Shortest stare sequence counted by MSD.

    Returns:
        dict predictor name -> `evaluation.summarize` dict over `splits`,
        plus `prediction_cm` for the training mean.
    """
    from tat_keras import evaluation

    train = load_labels(data_dir, "train", image_size, max_train_examples)
    held_out = {split: load_labels(data_dir, split, image_size) for split, _ in splits}
    results = {}
    for name, predictor in PREDICTORS.items():
        results[name] = {}
        for split, prefix in splits:
            prediction = predictor(train, held_out[split])
            results[name].update(evaluation.summarize(
                held_out[split]["gaze_cm"], prediction, held_out[split],
                prefix=prefix, msd_min_length=msd_min_length))
    results["training mean"]["prediction_cm"] = [
        float(v) for v in np.asarray(train["gaze_cm"], np.float64).mean(axis=0)]
    return results
