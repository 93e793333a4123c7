import json
import os

import numpy as np
import pytest

from tat_keras import plots


def _sequences(count=3, frames=25, seed=0):
    rng = np.random.default_rng(seed)
    sequences = []
    for i in range(count):
        target = rng.uniform((-4, -12), (4, -1))
        sequences.append(
            {
                "target": target,
                "predictions": [
                    rng.normal(target, 0.6, (frames + i, 2)),
                    rng.normal(target, 0.3, (frames + i, 2)),
                ],
                "label": f"subject {i}",
            }
        )
    return sequences


def _is_png(path):
    with open(path, "rb") as f:
        return os.path.getsize(path) > 1000 and f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("screen", [None, (-3.5, -12.0, 3.5, -0.5)])
def test_plot_jitter_writes_a_png(tmp_path, screen):
    path = tmp_path / "figs" / "jitter.png"
    written = plots.plot_jitter(_sequences(), path, screen=screen)
    assert written == str(path)
    assert _is_png(path)


def test_plot_jitter_takes_any_number_of_panels(tmp_path):
    sequence = {"target": (0.0, -5.0), "predictions": [np.zeros((1, 2))] * 3}
    path = tmp_path / "three.png"
    plots.plot_jitter([sequence], path, titles=("a", "b", "c"))
    assert _is_png(path)


@pytest.mark.parametrize(
    "sequences,kwargs,match",
    [
        ([], {}, "non-empty list"),
        ([{"target": (0, 0)}], {}, "keys 'target'"),
        ([{"target": (0, 0, 0), "predictions": [np.zeros((2, 2))] * 2}], {}, "target"),
        ([{"target": (0, 0), "predictions": [np.zeros((2, 2))]}], {}, "one array per panel"),
        ([{"target": (0, 0), "predictions": [np.zeros((2, 3))] * 2}], {}, r"shape \(M, 2\)"),
        ([{"target": (0, 0), "predictions": [np.zeros((0, 2))] * 2}], {}, r"M >= 1"),
        ([{"target": (0, 0), "predictions": [np.full((2, 2), np.nan)] * 2}], {}, "finite"),
        (None, {"screen": (0, 0, -1, 1)}, "screen"),
        (None, {"titles": ()}, "titles"),
    ],
)
def test_plot_jitter_rejects_bad_input(tmp_path, sequences, kwargs, match):
    if sequences is None:
        sequences = _sequences(count=1)
    if "titles" in kwargs:
        for s in sequences:
            s["predictions"] = []
    with pytest.raises(ValueError, match=match):
        plots.plot_jitter(sequences, tmp_path / "x.png", **kwargs)
    assert not (tmp_path / "x.png").exists()


def test_plot_jitter_needs_a_png_path(tmp_path):
    with pytest.raises(ValueError, match=".png"):
        plots.plot_jitter(_sequences(), tmp_path / "x.pdf")


class _FakeHistory:
    def __init__(self, history):
        self.history = history


@pytest.mark.parametrize(
    "history,boundaries",
    [
        ({"error_cm": [3.0, 2.5, 2.2], "val_error_cm": [3.3, 2.9, 2.8]}, None),
        (
            {
                "error_cm": [3.0, 2.5, 2.2, 2.4, 2.1, 2.0],
                "val_error_cm": [3.3, 2.9, 2.8, 2.9, 2.6, float("nan")],
                "loss": [9.0, 8.0, 7.5, 7.6, 7.0, 6.8],
                "val_loss": [9.5, 8.6, 8.2, 8.3, 7.9, 7.8],
            },
            [2, 4],
        ),
        (_FakeHistory({"val_error_cm": [2.0, 1.9]}), None),
        (json.loads(json.dumps({"error_cm": [2.0] * 6, "generation": [1, 1, 2, 2, 3, 3]})), None),
    ],
)
def test_plot_curves_writes_a_png(tmp_path, history, boundaries):
    path = tmp_path / "curves.png"
    assert plots.plot_curves(history, path, generation_boundaries=boundaries,
                             title="run") == str(path)
    assert _is_png(path)


@pytest.mark.parametrize(
    "history,kwargs,match",
    [
        ([1.0, 2.0], {}, "dict of per-epoch lists"),
        ({"loss": [1.0]}, {}, "no per-epoch values for 'error_cm'"),
        ({"error_cm": [1.0, 2.0]}, {"generation_boundaries": [5]}, "generation_boundaries"),
        ({"error_cm": [1.0, 2.0]}, {"generation_boundaries": [0]}, "generation_boundaries"),
        ({"error_cm": [1.0, 2.0]}, {"generation_boundaries": [1.5]}, "generation_boundaries"),
    ],
)
def test_plot_curves_rejects_bad_input(tmp_path, history, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_curves(history, tmp_path / "curves.png", **kwargs)


def _rebirth():
    return {"face_conv11": {"pruned_norm_min": 0.1, "pruned_norm_max": 0.4,
                            "new_norm_min": 0.9, "new_norm_max": 1.1}}


def _history(epochs=6):
    return [{"error_cm": 3.0 - e / 10, "val_error_cm": 3.3 - e / 12} for e in range(epochs)]


def _calibration_rows():
    return [{"method": method, "k": k, "group": group, "num_subjects": 3,
             "error_before": 2.0, "error_after": 2.0 - k / 10,
             "error_after_low": None if group == "tablet" else 1.8 - k / 10,
             "error_after_high": None if group == "tablet" else 2.2 - k / 10}
            for method in ("affine", "ridge") for k in (1, 5)
            for group in ("all", "phone", "tablet")]


# Every figure of the project, with small valid inputs.
FIGURES = {
    "jitter": lambda path: plots.plot_jitter(_sequences(count=2), path),
    "curves": lambda path: plots.plot_curves(
        {"error_cm": [3.0, 2.5, 2.2], "val_error_cm": [3.3, 2.9, 3.0]}, path,
        mark_best=True, title="run"),
    "scheme_curves": lambda path: plots.plot_scheme_curves(
        {"standard": _history(), "TAT": _history()}, path, generation_boundaries=[2, 4]),
    "generation_errors": lambda path: plots.plot_generation_errors(
        {"Table 2": {"last": [2.0, 1.9, 1.8]}, "Table 3": {"csp": [2.1, None, 1.7]}}, path),
    "norm_ranges": lambda path: plots.plot_norm_ranges(
        {"aoi": _rebirth(), "uniform": {}}, ["face_conv11", "face_conv52"], path),
    "contact_sheet": lambda path: plots.plot_contact_sheet(
        [{"frame": np.full((48, 64, 3), 90, np.uint8), "title": "frame",
          "boxes": [((8, 8, 24, 24), "yellow")],
          "crops": {"face": np.zeros((16, 16, 3), np.uint8),
                    "left_eye": np.ones((16, 16, 3), np.uint8)}},
         {"frame": np.zeros((48, 64, 3), np.uint8), "title": "no crops", "boxes": [],
          "crops": None}], path),
    "jitter_against_lag": lambda path: plots.plot_jitter_against_lag(
        [{"family": "raw", "label": "raw", "lag_ms": 40.0, "msd_cm": 0.5},
         {"family": "ema", "label": "tau=0.1s", "lag_ms": 160.0, "msd_cm": 0.3}], path),
    "calibration": lambda path: plots.plot_calibration(_calibration_rows(), path),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_is_drawn_in_the_one_style(tmp_path, monkeypatch, name):
    drawn = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.append(figure)
                        or save(figure, path))
    path = tmp_path / "figures" / f"{name}.png"
    assert FIGURES[name](path) == str(path)
    assert _is_png(path)
    (figure,) = drawn
    # Drawn headless (Agg) at the style's resolution ...
    assert type(figure.canvas).__name__ == "FigureCanvasAgg"
    assert figure.get_dpi() == plots.STYLE["figure.dpi"]
    with open(path, "rb") as f:
        f.seek(16)
        width = int.from_bytes(f.read(4), "big")
    assert width == round(figure.get_figwidth() * plots.STYLE["savefig.dpi"])
    # ... with the style's text sizes and spines wherever an axis is shown.
    shown = [axis for axis in figure.axes if axis.axison]
    assert shown or name == "contact_sheet"
    for axis in shown:
        assert not axis.spines["top"].get_visible()
        for label in axis.get_xticklabels():
            assert label.get_fontsize() == plots.STYLE["xtick.labelsize"]
        if axis.get_xlabel():
            assert axis.xaxis.label.get_fontsize() == plots.STYLE["axes.labelsize"]


@pytest.mark.parametrize("call, match", [
    (lambda p: plots.plot_scheme_curves({}, p), "histories must be a non-empty dict"),
    (lambda p: plots.plot_generation_errors([], p), "panels must be a non-empty dict"),
    (lambda p: plots.plot_norm_ranges({"aoi": _rebirth()}, [], p), "at least one layer"),
    (lambda p: plots.plot_contact_sheet([], p), "at least one frame"),
    (lambda p: plots.plot_jitter_against_lag([], p), "at least one point"),
    (lambda p: plots.plot_calibration([], p), "groups 'all', 'phone' or 'tablet'"),
    (lambda p: plots.plot_calibration(_calibration_rows(), p.with_suffix(".jpg")), ".png"),
])
def test_figures_reject_bad_input(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_curves_mark_the_best_validation_epoch(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.append(figure))
    plots.plot_curves({"error_cm": [3.0, 2.5, 2.2, 2.0],
                       "val_error_cm": [3.3, 2.7, 2.9, 3.1]}, tmp_path / "c.png",
                      mark_best=True)
    labels = [line.get_label() for line in drawn[0].axes[0].get_lines()]
    assert "best validation (epoch 2)" in labels
