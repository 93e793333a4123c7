"""End-to-end training on a tiny synthetic set: standard and TAT runs.

The standard run must beat the constant predictor on held-out subjects; the
TAT run (K=3, one epoch per mini-generation after one warm-up epoch) is
checked against its own record (`generations.json`, `metrics.json`), and the
command-line entry points are checked for their errors and for evaluation
that recomputes the run's numbers.
"""

import json
import math
import os

import numpy as np
import pytest

METRICS_KEYS = (
    "train_error_cm", "val_error_cm", "test_error_cm", "test_error_cm_phone",
    "test_error_cm_tablet", "test_msd_cm", "test_msd_sequences", "epochs",
    "train_seconds", "scheme", "dwo", "seed",
)


def _read_json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


# Standard training ------------------------------------------------------


def _constant_predictor_error(data_dir):
    """Test error (cm) of always predicting the mean training label."""
    from tat_keras.data import pipeline

    train = pipeline.load_labels(data_dir, "train")
    test = pipeline.load_labels(data_dir, "test")
    return float(np.mean(np.linalg.norm(test - train.mean(axis=0), axis=1)))


STANDARD_RUN = dict(
    scheme="standard", width_multiplier=0.125, x_bins=16, y_bins=16,
    batch_size=16, learning_rate=3e-3, mini_generations=1,
    epochs_per_generation=7, warmup_epochs=1, augment=True,
)


# A minute and a half of training per seed: slow. The default suite checks
# the train step against NumPy (trainer_test) and the whole training path on
# a tiny set (tat_keras/training/experiment_test.py).
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_standard_training_beats_constant_predictor(tmp_path, learnable_synthetic_dir,
                                                    seed):
    from tat_keras.training import experiment

    config = experiment.TrainConfig(**{
        **STANDARD_RUN, "data_dir": learnable_synthetic_dir, "seed": seed})
    results = experiment.train(config, str(tmp_path / "run"), verbose=0)

    # Held-out subjects: the test split shares no subject with training.
    assert results["test_error_cm"] < _constant_predictor_error(
        learnable_synthetic_dir), results
    assert results == _read_json(tmp_path, "run", "metrics.json")


# TAT run through the command line ---------------------------------------


@pytest.fixture(scope="module")
def tat_run(tmp_path_factory, tiny_synthetic_dir, write_flagfile, run_recipe):
    """A finished `train_tat.py --scheme=tat` run: (model_dir, flagfile)."""
    root = tmp_path_factory.mktemp("tat_cli")
    flagfile = write_flagfile(root / "tiny_tat.flags", **tat_flags(tiny_synthetic_dir))
    model_dir = str(root / "run")
    result = run_recipe("train_tat.py", f"--flagfile={flagfile}",
                        f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir, flagfile


def tat_flags(data_dir, **overrides):
    """Flags of the tiny TAT run: K=3 mini-generations, L=1, one warm-up."""
    return {
        "data_dir": data_dir, "scheme": "tat", "width_multiplier": 0.125,
        "x_bins": 16, "y_bins": 16, "batch_size": 8, "learning_rate": 0.003,
        "mini_generations": 3, "epochs_per_generation": 1, "warmup_epochs": 1,
        "augment": False, "seed": 0, "max_train_examples": 48, **overrides,
    }


def test_tat_record_teachers(tat_run):
    model_dir, _ = tat_run
    generations = _read_json(model_dir, "generations.json")["generations"]
    assert [g["generation"] for g in generations] == [0, 1, 2]
    assert [g["epochs"] for g in generations] == [[0, 1], [2], [3]]

    # No teacher in the first mini-generation.
    assert generations[0]["teachers"] == [[], []]
    teacher_list = []
    for g in generations:
        # Each later epoch draws one teacher from the list kept so far.
        if g["generation"] > 0:
            assert len(g["teachers"]) == len(g["epochs"])
            for drawn in g["teachers"]:
                assert len(drawn) == 1 and drawn[0] in teacher_list
        if g["generation"] == len(generations) - 1:
            assert "teacher_list" not in g  # The last model is the result.
            break
        # The list after the generation: the previous list plus this
        # generation, without teachers above 1.05 x the best val error.
        candidates = teacher_list + [g["generation"]]
        errors = {c: generations[c]["val_error_cm"] for c in candidates}
        best = min(errors.values())
        teacher_list = [c for c in candidates if errors[c] <= 1.05 * best]
        assert g["teacher_list"] == teacher_list
        assert sorted(g["dropped"]) == sorted(set(candidates) - set(teacher_list))


def test_tat_record_rebirth(tat_run):
    import keras

    import tat_keras  # noqa: F401  Registers the custom objects.

    model_dir, _ = tat_run
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    filters = {name: model.get_layer(name).kernel.shape[-1]
               for name in model.conv_layer_names}
    generations = _read_json(model_dir, "generations.json")["generations"]
    for g in generations[:-1]:
        rebirth = g["rebirth"]
        assert set(rebirth) <= set(filters)
        assert sum(r["pruned"] for r in rebirth.values()) == math.floor(
            0.2 * sum(filters.values()))
        for name, r in rebirth.items():
            assert r["filters"] == filters[name]
            assert 1 <= r["pruned"] <= math.floor(0.5 * filters[name]), name
            # Eq. 7: new norms drawn between the pruned filters' folded norms.
            tolerance = 1e-5 * r["pruned_norm_max"]
            assert r["pruned_norm_min"] <= r["pruned_norm_max"]
            assert r["new_norm_min"] >= r["pruned_norm_min"] - tolerance, name
            assert r["new_norm_max"] <= r["pruned_norm_max"] + tolerance, name


def test_tat_metrics_and_history(tat_run):
    model_dir, _ = tat_run
    metrics = _read_json(model_dir, "metrics.json")
    assert set(METRICS_KEYS) <= set(metrics)
    assert metrics["epochs"] == 4 and metrics["scheme"] == "tat"
    assert metrics["test_msd_sequences"] > 0
    assert np.isfinite(metrics["test_msd_cm"])
    # The test error after every mini-generation (Tables 2-4); the last
    # mini-generation's model is the final one.
    generations = _read_json(model_dir, "generations.json")["generations"]
    assert all(g["test_error_cm"] > 0 for g in generations)
    assert generations[-1]["test_error_cm"] == pytest.approx(metrics["test_error_cm"],
                                                              rel=1e-6)
    history = _read_json(model_dir, "history.json")
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert os.path.exists(os.path.join(model_dir, "flags.json"))
    assert _read_json(model_dir, "config.json")["scheme"] == "tat"


def test_evaluate_recomputes_metrics(tat_run, tmp_path, run_recipe):
    model_dir, _ = tat_run
    output = str(tmp_path / "recomputed.json")
    result = run_recipe("evaluate.py", f"--model_dir={model_dir}", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    recomputed = _read_json(output)
    metrics = _read_json(model_dir, "metrics.json")
    for key in ("test_error_cm", "train_error_cm", "val_error_cm", "test_msd_cm"):
        assert recomputed[key] == pytest.approx(metrics[key], abs=1e-6), key


@pytest.mark.slow  # The same refusal is checked in-process by experiment_test.
def test_finished_run_is_refused_without_overwrite(tat_run, run_recipe):
    model_dir, flagfile = tat_run
    before = _read_json(model_dir, "metrics.json")
    result = run_recipe("train_tat.py", f"--flagfile={flagfile}",
                        f"--model_dir={model_dir}")
    assert result.returncode != 0
    assert "finished run" in result.stderr and "--overwrite" in result.stderr
    assert _read_json(model_dir, "metrics.json") == before


@pytest.mark.parametrize("flag, choices", [
    ("--scheme=tta", "standard|sd|tat"),
    ("--teacher=oldest", "random|last|mean|best|none"),
    ("--pruning=l1", "csp|repr|scratch|none"),
    ("--reinit=zeros", "aoi|orthogonal|uniform"),
])
def test_unknown_flag_value_lists_choices(tmp_path, run_recipe, flag, choices):
    result = run_recipe("train_tat.py", f"--model_dir={tmp_path / 'run'}", flag)
    assert result.returncode != 0
    assert choices in result.stderr
    assert not os.path.exists(tmp_path / "run")


def test_missing_data_dir_names_the_command_that_prepares_it(tmp_path, run_recipe,
                                                            write_flagfile):
    flagfile = write_flagfile(tmp_path / "f.flags",
                              **tat_flags(str(tmp_path / "no_data")))
    result = run_recipe("train_tat.py", f"--flagfile={flagfile}",
                        f"--model_dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert "recipes/prepare_gazecapture.py" in result.stderr
    assert "recipes/make_synthetic.py" in result.stderr

