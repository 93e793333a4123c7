"""Every figure of the project, in one style.

The paper's figures (Fig. 1(a): train and validation error of several
schemes; Fig. 1(b): prediction jitter on stare sequences; Fig. 3: norm
ranges of pruned and re-born filters), a run's training curves, the
protocol's per-generation errors, the synthetic twin's contact sheet,
jitter against lag, and the error after per-user calibration.

All of them are drawn the same way: on a bare `matplotlib.figure.Figure`
rendered by the Agg canvas (so nothing here touches pyplot's global state or
needs a display), inside `matplotlib.rc_context(STYLE)`, saved as PNG at
`STYLE["savefig.dpi"]`. Importing this module loads neither TensorFlow nor
Keras.

Example:

>>> import tempfile
>>> out = os.path.join(tempfile.mkdtemp(), "curves.png")
>>> plot_curves({"error_cm": [3.0, 2.4, 2.1], "val_error_cm": [3.2, 2.8, 2.9]},
...             out, mark_best=True) == out
True
"""

import contextlib
import math
import os

import cycler
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

COLORS = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)
# The one style of every figure (matplotlib rc parameters).
STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.prop_cycle": cycler.cycler(color=COLORS),
    "axes.grid": True,
    "grid.linewidth": 0.3,
    "grid.alpha": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "legend.frameon": False,
}


def _validate_path(path):
    if not str(os.fspath(path)).lower().endswith(".png"):
        raise ValueError(f"path must name a .png file. Received: path={path!r}")


def _save(figure, path):
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png")
    return path


@contextlib.contextmanager
def _figure(path, width, height):
    """A figure of `width` x `height` inches drawn in `STYLE`, laid out
    and saved to `path` when the block ends."""
    _validate_path(path)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(width, height))
        yield figure
        figure.tight_layout()
        _save(figure, path)


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

    # Sigma of Eq. 11, per sequence; `metrics` loads Keras, which the callers
    # of this figure (they have just run a model) have loaded already.
    from tat_keras import metrics

    with _figure(path, figure_width * len(titles), figure_width + 0.6) as figure:
        axes = figure.subplots(1, len(titles), squeeze=False)[0]
        for panel, (axis, title) in enumerate(zip(axes, titles)):
            sigmas = []
            if screen is not None:
                axis.add_patch(_rectangle(screen, label="screen"))
            axis.plot([0.0], [0.0], marker="s", color="black", markersize=5, linestyle="")
            axis.annotate("camera", (0.0, 0.0), textcoords="offset points", xytext=(4, 4))
            for i, (target, predictions, label) in enumerate(checked):
                color = COLORS[i % len(COLORS)]
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
            axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2,
                        fontsize=7)
        figure.suptitle("Predictions on stare sequences (X: target dot)")
    return os.fspath(path)


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
    mark_best=False,
):
    """Draws train and validation curves per epoch, with generation marks.

    The left panel shows `metric` and `val_{metric}`; when the history also
    holds `loss` (and `val_loss`), a right panel shows them. Dashed vertical
    lines mark where a new mini-generation of TAT begins; with `mark_best`,
    a dotted one the epoch of the lowest validation value.

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
        mark_best: bool. Mark the epoch of the lowest `val_{metric}`.

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

    best = None
    if mark_best and validation is not None and np.any(np.isfinite(validation)):
        best = int(np.nanargmin(validation)) + 1

    with _figure(path, 5.5 * len(panels), 4.0) as figure:
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
            _mark_generations(axis, boundaries)
            if best is not None:
                axis.axvline(best, color="0.3", linestyle=":",
                             label=f"best validation (epoch {best})")
            axis.set_xlabel("epoch")
            axis.set_ylabel(f"{name[:-3]} (cm)" if name.endswith("_cm") else name)
            axis.set_xlim(0.5, epochs + 0.5)
            if epochs <= 30:
                axis.set_xticks(np.arange(1, epochs + 1, max(1, math.ceil(epochs / 15))))
            axis.legend()
        if title:
            figure.suptitle(title)
    return os.fspath(path)


def _mark_generations(axis, boundaries):
    """Dashed lines just before the first epoch of each new mini-generation."""
    for i, boundary in enumerate(boundaries):
        axis.axvline(boundary + 0.5, color="0.5", linestyle="--", linewidth=0.8,
                     label="new mini-generation" if i == 0 else None)


def _check_mapping(name, value):
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{name} must be a non-empty dict. Received: {value!r:.200}")


def plot_scheme_curves(histories, path, *, generation_boundaries=()):
    """The paper's Fig. 1(a): train and validation error per epoch of
    several schemes (train dashed, validation solid, one color a scheme),
    with the mini-generations marked.

    Args:
        histories: dict label -> list of per-epoch dicts with `error_cm` and
            `val_error_cm` (a run's history.json).
        path: str or path-like. The PNG file to write (folders are made).
        generation_boundaries: list of int. As in `plot_curves`.

    Returns:
        str. The path written.

    Example:

    >>> import tempfile
    >>> run = [{"error_cm": 3.0 - e / 4, "val_error_cm": 3.2 - e / 5} for e in range(6)]
    >>> out = os.path.join(tempfile.mkdtemp(), "fig1a.png")
    >>> plot_scheme_curves({"standard": run, "TAT": run}, out, generation_boundaries=[3]) == out
    True
    """
    _check_mapping("histories", histories)
    with _figure(path, 7.0, 4.0) as figure:
        axis = figure.subplots()
        for index, (label, history) in enumerate(histories.items()):
            epochs = np.arange(1, len(history) + 1)
            color = COLORS[index % len(COLORS)]
            axis.plot(epochs, [h["error_cm"] for h in history], color=color,
                      linestyle="--", label=f"{label} train")
            axis.plot(epochs, [h.get("val_error_cm", math.nan) for h in history],
                      color=color, label=f"{label} validation")
        _mark_generations(axis, list(generation_boundaries))
        axis.set(xlabel="epoch", ylabel="error (cm)", title="Train and validation error")
        axis.legend()
    return os.fspath(path)


def plot_generation_errors(panels, path):
    """Test error after every mini-generation, one panel per table (the
    protocol's Tables 2-4), one line per row.

    Args:
        panels: dict title -> dict label -> list of float or None (the test
            error after each mini-generation; None where it is missing).
        path: str or path-like. The PNG file to write (folders are made).

    Returns:
        str. The path written.

    Example:

    >>> import tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "generations.png")
    >>> plot_generation_errors({"Table 2": {"last": [2.0, 1.9, None]}}, out) == out
    True
    """
    _check_mapping("panels", panels)
    with _figure(path, 4.3 * len(panels), 4.0) as figure:
        axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for axis, (title, lines) in zip(axes, panels.items()):
            for label, errors in lines.items():
                values = np.array([math.nan if v is None else v for v in errors], float)
                axis.plot(np.arange(len(values)), values, marker="o", label=label)
            axis.set(title=title, xlabel="mini-generation")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            if lines:
                axis.legend()
        axes[0].set_ylabel("test error (cm)")
    return os.fspath(path)


def plot_norm_ranges(rebirths, layers, path):
    """The paper's Fig. 3: L2-norm ranges of pruned and re-born filters.

    Args:
        rebirths: dict method -> the `rebirth` entry of one mini-generation
            of a run (per layer: `pruned_norm_min/max`, `new_norm_min/max`).
        layers: list of str. Layers to show, one panel each.
        path: str or path-like. The PNG file to write (folders are made).

    Returns:
        str. The path written.

    Example:

    >>> import tempfile
    >>> rebirth = {"conv11": {"pruned_norm_min": 0.1, "pruned_norm_max": 0.4,
    ...                       "new_norm_min": 0.9, "new_norm_max": 1.1}}
    >>> out = os.path.join(tempfile.mkdtemp(), "fig3.png")
    >>> plot_norm_ranges({"aoi": rebirth}, ["conv11"], out) == out
    True
    """
    _check_mapping("rebirths", rebirths)
    if not layers:
        raise ValueError("layers must name at least one layer. Received: layers=[]")
    with _figure(path, 6.0 * len(layers), 3.0) as figure:
        axes = figure.subplots(1, len(layers), squeeze=False)[0]
        for axis, layer in zip(axes, layers):
            labels = []
            for index, (method, rebirth) in enumerate(rebirths.items()):
                info = rebirth.get(layer) or {}
                for offset, (kind, color) in enumerate((("pruned", COLORS[0]),
                                                        ("new", COLORS[4]))):
                    low, high = info.get(f"{kind}_norm_min"), info.get(f"{kind}_norm_max")
                    if low is None or high is None:
                        continue
                    y = 2 * index + offset
                    axis.plot([low, high], [y, y], color=color, linewidth=6,
                              solid_capstyle="butt")
                labels += [f"{method}: pruned", f"{method}: re-born"]
            axis.set_yticks(range(len(labels)), labels)
            axis.set(title=layer, xlabel="L2 norm of the filter")
    return os.fspath(path)


def plot_contact_sheet(rows, path):
    """Frames with their boxes and the crops cut from them, a row each.

    Args:
        rows: list of dicts: `frame` uint8 `(H, W, 3)`; `boxes`, a list of
            `(box, color)` with `box` the `X, Y, W, H` in frame pixels;
            `title`, str; `crops`, a dict name -> uint8 `(S, S, 3)` (or None
            when no crop could be cut), drawn left to right in its order.
        path: str or path-like. The PNG file to write (folders are made).

    Returns:
        str. The path written.

    Example:

    >>> import tempfile
    >>> row = {"frame": np.zeros((48, 64, 3), np.uint8), "title": "one frame",
    ...        "boxes": [((8, 8, 24, 24), "yellow")],
    ...        "crops": {"face": np.zeros((16, 16, 3), np.uint8)}}
    >>> out = os.path.join(tempfile.mkdtemp(), "sheet.png")
    >>> plot_contact_sheet([row], out) == out
    True
    """
    if not rows:
        raise ValueError("rows must hold at least one frame. Received: rows=[]")
    names = next((list(row["crops"]) for row in rows if row["crops"]), [])
    with _figure(path, 2.2 + 1.4 * len(names), 1.65 * len(rows)) as figure:
        axes = figure.subplots(len(rows), 1 + len(names), squeeze=False,
                               gridspec_kw={"width_ratios": [2.2] + [1] * len(names)})
        for row, panels in zip(rows, axes):
            panels[0].imshow(row["frame"])
            for box, color in row["boxes"]:
                panels[0].add_patch(Rectangle(box[:2], box[2], box[3], fill=False,
                                              color=color, linewidth=1))
            panels[0].set_title(row["title"], fontsize=7)
            for axis, name in zip(panels[1:], names):
                if row["crops"] is not None:
                    axis.imshow(row["crops"][name])
                axis.set_title(name.replace("_", " "), fontsize=7)
            for axis in panels:
                axis.set_axis_off()
    return os.fspath(path)


_MARKERS = ("s", "o", "^", "v", "*", "P", "D", "X")


def plot_jitter_against_lag(points, path, *, title="Jitter against lag"):
    """MSD against lag for filters on a model's predictions, a color and
    marker per family, each point labelled.

    Args:
        points: list of dicts with `family`, `label`, `lag_ms` and `msd_cm`.
        path: str or path-like. The PNG file to write (folders are made).
        title: str. Figure title.

    Returns:
        str. The path written.

    Example:

    >>> import tempfile
    >>> points = [{"family": "raw", "label": "raw", "lag_ms": 40.0, "msd_cm": 0.5},
    ...           {"family": "ema", "label": "tau=0.1s", "lag_ms": 160.0, "msd_cm": 0.3}]
    >>> out = os.path.join(tempfile.mkdtemp(), "lag.png")
    >>> plot_jitter_against_lag(points, out) == out
    True
    """
    if not points:
        raise ValueError("points must hold at least one point. Received: points=[]")
    families = list(dict.fromkeys(p["family"] for p in points))
    with _figure(path, 8.0, 5.5) as figure:
        axis = figure.subplots()
        for index, family in enumerate(families):
            chosen = [p for p in points if p["family"] == family]
            axis.scatter([p["lag_ms"] for p in chosen], [p["msd_cm"] for p in chosen],
                         color=COLORS[index % len(COLORS)],
                         marker=_MARKERS[index % len(_MARKERS)], s=45, label=family)
            for p in chosen:
                axis.annotate(p["label"], (p["lag_ms"], p["msd_cm"]), fontsize=6,
                              xytext=(3, 3), textcoords="offset points")
        axis.set(xlabel="lag: time to 90% of a dot change (ms)",
                 ylabel="MSD over stare sequences (cm)", title=title)
        axis.legend()
    return os.fspath(path)


def plot_calibration(rows, path):
    """Mean error after per-user calibration against the number of dots k,
    a line per method with its 95% interval, the error before dashed, one
    panel per group of subjects.

    Args:
        rows: list of dicts from `tat_keras.calibration.mean_errors`
            (`method`, `k`, `group`, `num_subjects`, `error_before`,
            `error_after`, `error_after_low`, `error_after_high`).
        path: str or path-like. The PNG file to write (folders are made).

    Returns:
        str. The path written.

    Example:

    >>> import tempfile
    >>> rows = [{"method": "affine", "k": k, "group": "all", "num_subjects": 3,
    ...          "error_before": 2.0, "error_after": 2.0 - k / 10,
    ...          "error_after_low": 1.8 - k / 10, "error_after_high": 2.2 - k / 10}
    ...         for k in (1, 3)]
    >>> out = os.path.join(tempfile.mkdtemp(), "calibration.png")
    >>> plot_calibration(rows, out) == out
    True
    """
    groups = [g for g in ("all", "phone", "tablet") if any(r["group"] == g for r in rows)]
    if not groups:
        raise ValueError("rows must hold rows of the groups 'all', 'phone' or 'tablet'. "
                         f"Received: {len(rows)} rows")
    methods = sorted({r["method"] for r in rows})
    with _figure(path, 4.2 * len(groups), 3.6) as figure:
        axes = figure.subplots(1, len(groups), squeeze=False)[0]
        for axis, group in zip(axes, groups):
            group_rows = [r for r in rows if r["group"] == group]
            for index, method in enumerate(methods):
                mine = sorted((r for r in group_rows if r["method"] == method),
                              key=lambda r: r["k"])
                if not mine:
                    continue
                ks = np.array([r["k"] for r in mine], float) + 0.06 * (index - len(methods) / 2)
                after = np.array([r["error_after"] for r in mine])
                low = np.array([math.nan if r["error_after_low"] is None
                                else r["error_after_low"] for r in mine])
                high = np.array([math.nan if r["error_after_high"] is None
                                 else r["error_after_high"] for r in mine])
                errors = np.nan_to_num(np.stack([after - low, high - after]))
                axis.errorbar(ks, after, yerr=errors, marker="o", capsize=3, label=method)
            before = {}
            for r in group_rows:
                before.setdefault(r["k"], r["error_before"])
            ks = sorted(before)
            axis.plot(ks, [before[k] for k in ks], "k--", label="before")
            counts = {r["k"]: r["num_subjects"] for r in group_rows}
            axis.set_xticks(ks, [f"{k}\n(n={counts[k]})" for k in ks])
            axis.set(title=f"{group} subjects", xlabel="calibration dots k (subjects)",
                     ylabel="mean error (cm), 95% CI")
        axes[0].legend()
    return os.fspath(path)
