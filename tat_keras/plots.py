"""Figures: prediction jitter (Fig. 1(b) of Guo et al. 2019) and training curves.

Figures are drawn on a bare `matplotlib.figure.Figure` rendered by the Agg
canvas, so nothing here touches pyplot's global state or needs a display.
"""

import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tat_keras import metrics

_COLORS = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)


def _save(figure, path):
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png")
    return path


def _validate_path(path):
    if not str(os.fspath(path)).lower().endswith(".png"):
        raise ValueError(f"path must name a .png file. Received: path={path!r}")


def _as_points(value, what):
    points = np.asarray(value, np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(
            f"{what} must be an array of shape (M, 2) with M >= 1, gaze in cm. "
            f"Received: shape {points.shape}"
        )
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{what} must be finite. Received: {points}")
    return points


def _validate_sequences(sequences, titles):
    if isinstance(sequences, dict) or not sequences:
        raise ValueError(
            "sequences must be a non-empty list of dicts with 'target' and "
            f"'predictions'. Received: {sequences!r}"
        )
    checked = []
    for i, sequence in enumerate(sequences):
        if not isinstance(sequence, dict) or not {"target", "predictions"} <= set(sequence):
            raise ValueError(
                "Every sequence must be a dict with keys 'target' (2,) and "
                f"'predictions' (one (M, 2) array per panel). Received at {i}: "
                f"{sequence!r:.200}"
            )
        target = np.asarray(sequence["target"], np.float64)
        if target.shape != (2,) or not np.all(np.isfinite(target)):
            raise ValueError(
                f"sequences[{i}]['target'] must be 2 finite numbers (x, y) in cm. "
                f"Received: {sequence['target']!r}"
            )
        predictions = sequence["predictions"]
        if len(predictions) != len(titles):
            raise ValueError(
                f"sequences[{i}]['predictions'] needs one array per panel title "
                f"{list(titles)}. Received: {len(predictions)} arrays"
            )
        predictions = [
            _as_points(p, f"sequences[{i}]['predictions'][{j}]")
            for j, p in enumerate(predictions)
        ]
        label = str(sequence.get("label", f"sequence {i + 1}"))
        checked.append((target, predictions, label))
    return checked


def plot_jitter(
    sequences,
    path,
    *,
    screen=None,
    titles=("Baseline", "DwO"),
    figure_width=5.0,
):
    """Draws prediction jitter on stare sequences, like Fig. 1(b).

    One panel per model, side by side on shared axes: for each sequence
    (frames of one subject staring at one point) the target dot and the
    model's predictions on its frames, scattered in camera-relative cm
    (origin at the camera, x to the right, y up, as GazeCapture's
    `XCam`/`YCam`). Each panel's title gives the MSD over the drawn
    sequences (Eq. 10-12); the legend gives each sequence's sigma (Eq. 11).

    Args:
        sequences: list of dicts, each with `target`: (x, y) in cm;
            `predictions`: one array `(M, 2)` in cm per entry of `titles`
            (the frames may differ in number between sequences); and
            optionally `label`: str.
        path: str or path-like. The PNG file to write (folders are made).
        screen: None or `(x_min, y_min, x_max, y_max)` in cm. The device
            screen, drawn as a rectangle in every panel.
        titles: sequence of str. One panel title per model.
        figure_width: float. Width of one panel in inches.

    Returns:
        str. The path written.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> sequence = {"target": (1.0, -4.0),
    ...             "predictions": [rng.normal((1, -4), 0.5, (30, 2)),
    ...                             rng.normal((1, -4), 0.3, (30, 2))]}
    >>> import tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "jitter.png")
    >>> plot_jitter([sequence], out, screen=(-3, -12, 3, -1)) == out
    True
    """
    _validate_path(path)
    titles = [str(t) for t in titles]
    if not titles:
        raise ValueError("titles must name at least one panel. Received: titles=[]")
    checked = _validate_sequences(sequences, titles)
    if screen is not None:
        screen = np.asarray(screen, np.float64)
        if screen.shape != (4,) or not (screen[2] > screen[0] and screen[3] > screen[1]):
            raise ValueError(
                "screen must be (x_min, y_min, x_max, y_max) in cm with "
                f"x_max > x_min and y_max > y_min. Received: screen={screen.tolist()}"
            )

    # Shared limits: every point, the camera and the screen, plus a margin.
    points = [np.zeros((1, 2))]
    for target, predictions, _ in checked:
        points.append(target[None])
        points.extend(predictions)
    if screen is not None:
        points.append(screen.reshape(2, 2))
    points = np.concatenate(points)
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.08 * max(float(np.max(high - low)), 1.0)
    low, high = low - margin, high + margin

    figure = Figure(figsize=(figure_width * len(titles), figure_width + 0.6), dpi=110)
    axes = figure.subplots(1, len(titles), squeeze=False)[0]
    for panel, (axis, title) in enumerate(zip(axes, titles)):
        sigmas = []
        if screen is not None:
            axis.add_patch(_rectangle(screen, label="screen"))
        axis.plot([0.0], [0.0], marker="s", color="black", markersize=5, linestyle="")
        axis.annotate("camera", (0.0, 0.0), textcoords="offset points", xytext=(4, 4),
                      fontsize=8)
        for i, (target, predictions, label) in enumerate(checked):
            color = _COLORS[i % len(_COLORS)]
            guesses = predictions[panel]
            sigma = metrics.mean_standard_deviation(guesses, np.zeros(len(guesses)))
            sigmas.append(sigma)
            axis.scatter(guesses[:, 0], guesses[:, 1], s=9, color=color, alpha=0.45,
                         linewidths=0, label=f"{label}: \u03c3 {sigma:.2f} cm")
            axis.plot(target[0], target[1], marker="X", markersize=11, color=color,
                      markeredgecolor="black", linestyle="")
        axis.set_title(f"{title}  (MSD {np.mean(sigmas):.2f} cm)")
        axis.set_xlim(low[0], high[0])
        axis.set_ylim(low[1], high[1])
        axis.set_aspect("equal", adjustable="box")
        axis.set_xlabel("x from camera (cm)")
        if panel == 0:
            axis.set_ylabel("y from camera (cm)")
        axis.grid(True, linewidth=0.3, alpha=0.5)
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2,
                    fontsize=7, frameon=False)
    figure.suptitle("Predictions on stare sequences (X: target dot)", fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def _rectangle(screen, label):
    return Rectangle(
        (screen[0], screen[1]), screen[2] - screen[0], screen[3] - screen[1],
        fill=False, edgecolor="0.35", linewidth=1.2, linestyle="--", label=label,
    )


def _history_dict(history):
    history = getattr(history, "history", history)  # a keras History callback
    if not isinstance(history, dict):
        raise ValueError(
            "history must be a dict of per-epoch lists (keras History.history or "
            f"history.json). Received: {type(history).__name__}"
        )
    return history


def _series(history, key):
    values = history.get(key)
    if values is None:
        return None
    values = np.asarray(values, np.float64).reshape(-1)
    return values if len(values) else None


def plot_curves(
    history,
    path,
    *,
    metric="error_cm",
    generation_boundaries=None,
    title=None,
):
    """Draws train and validation curves per epoch, with generation marks.

    The left panel shows `metric` and `val_{metric}`; when the history also
    holds `loss` (and `val_loss`), a right panel shows them. Dashed vertical
    lines mark where a new mini-generation of TAT begins.

    Args:
        history: dict of per-epoch lists (keras `History.history`, or the
            dict read from a run's history.json), or a keras `History`.
        path: str or path-like. The PNG file to write (folders are made).
        metric: str. Key of the training metric; its validation twin is
            `"val_" + metric`.
        generation_boundaries: None or list of int. 0-based epoch indices at
            which a new mini-generation starts (a line is drawn just before
            that epoch). When None and the history has a per-epoch
            `generation` list, the boundaries are read from it.
        title: str or None. Figure title.

    Returns:
        str. The path written.

    Example:

    >>> import tempfile
    >>> history = {"error_cm": [3.0, 2.5, 2.2, 2.4, 2.0],
    ...            "val_error_cm": [3.2, 2.9, 2.7, 2.8, 2.5]}
    >>> out = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> plot_curves(history, out, generation_boundaries=[3]) == out
    True
    """
    _validate_path(path)
    history = _history_dict(history)
    train = _series(history, metric)
    validation = _series(history, f"val_{metric}")
    if train is None and validation is None:
        raise ValueError(
            f"history has no per-epoch values for {metric!r} or 'val_{metric}'. "
            f"Received keys: {sorted(history)}"
        )
    epochs = max(len(s) for s in (train, validation) if s is not None)
    if generation_boundaries is None and _series(history, "generation") is not None:
        generation = _series(history, "generation")
        generation_boundaries = [
            int(i) for i in np.flatnonzero(np.diff(generation) != 0) + 1
        ]
    boundaries = list(generation_boundaries or [])
    for boundary in boundaries:
        if int(boundary) != boundary or not 0 < boundary < max(epochs, 1) + 1:
            raise ValueError(
                "generation_boundaries must be epoch indices in 1 .. "
                f"{epochs} (0-based index of a generation's first epoch). "
                f"Received: {boundaries}"
            )
    loss = _series(history, "loss")
    val_loss = _series(history, "val_loss")
    panels = [(metric, train, validation)]
    if loss is not None or val_loss is not None:
        panels.append(("loss", loss, val_loss))

    figure = Figure(figsize=(5.5 * len(panels), 4.0), dpi=110)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (name, train_values, val_values) in zip(axes, panels):
        for values, label, style in (
            (train_values, "train", "-o"),
            (val_values, "validation", "-s"),
        ):
            if values is not None:
                x = np.arange(1, len(values) + 1)
                finite = np.isfinite(values)
                axis.plot(x[finite], values[finite], style, markersize=3, label=label)
        for i, boundary in enumerate(boundaries):
            axis.axvline(boundary + 0.5, color="0.5", linestyle="--", linewidth=0.8,
                         label="new mini-generation" if i == 0 else None)
        axis.set_xlabel("epoch")
        axis.set_ylabel(f"{name[:-3]} (cm)" if name.endswith("_cm") else name)
        axis.set_xlim(0.5, epochs + 0.5)
        if epochs <= 30:
            axis.set_xticks(np.arange(1, epochs + 1, max(1, math.ceil(epochs / 15))))
        axis.grid(True, linewidth=0.3, alpha=0.5)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, path)
