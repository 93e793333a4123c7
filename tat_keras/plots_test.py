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
