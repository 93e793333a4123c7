"""The evidence protocol: which runs each table needs, and the report.

The protocol (fixed before any run; `docs/results/README.md` states it):

1. Learning curve: standard training for 36 epochs, validation error after
   every epoch. If it still falls at the end (the slope of the last quarter
   of epochs has a 95% interval below zero) the scale does not over-fit and
   TAT's premise is not met there.
2. Table 1 at equal epochs: standard (one cosine), SD, TAT and an
   iTracker-style regression baseline, paired seeds.
3. Tables 2-4: teacher, pruning and re-initialization variants of TAT, with
   the test error after every mini-generation.
4. Width: standard against TAT at quarter and half width.
5. Table 5: baseline against DwO (8 center bins, T=1, 90% original), and two
   sensitivity rows (T=3; epsilon 8 with step 2).
6. Decision: TAT is reproduced when the paired differences of test error
   against standard and against SD both have a 95% t-interval below zero;
   DwO when the paired MSD difference does, at an error cost of at most 3%.

Beyond the protocol, the sweep `dwo_sweep` reruns every row of the paper's
Table 5 (center bins, PGD steps, share of original data), and the study
`pilot` (`tat_keras/pilot.py`) comes before the protocol's decision runs.
Every suite is planned, run, recorded, tabled and reported the same way.

A row names the overrides of the scale's `TrainConfig` settings it trains
with and a `run` id: rows of different tables with the same settings share
the run (TAT with random teacher, CSP and AOI is one run, listed in Tables
1-4). `plan` checks every run's settings as `TrainConfig` does before it
trains, so a row naming a field `TrainConfig` lacks, or a value it refuses,
fails when the plan is made, not hours into a suite. Nothing here imports
TensorFlow or Keras.

Example:

>>> specs = plan("table1", "bench", seeds=[1, 2, 3, 4])
>>> sorted({s.row for s in specs})
['itracker', 'sd', 'standard', 'tat']
>>> len({(s.run, s.seed) for s in plan("all", "bench", seeds=[1, 2, 3, 4])})
54
"""

import dataclasses
import hashlib
import json
import math
import os

import numpy as np

from tat_keras import plots
from tat_keras import reporting
from tat_keras.data.gaze_capture import layout
from tat_keras.training import config as config_lib

# Training settings of each scale (TrainConfig fields), before a row's own.
SCALES = {
    # A few steps on a tiny prepared set, to test the suite end to end (32
    # bins: as many as the widest center-bin row of Table 5 needs).
    "smoke": {
        "width_multiplier": 0.125, "x_bins": 32, "y_bins": 32, "batch_size": 16,
        "learning_rate": 2e-3, "mini_generations": 2, "epochs_per_generation": 1,
        "warmup_epochs": 1, "max_train_examples": 64, "dwo_center_bins": 4,
    },
    # The bench synthetic set at the paper's shape: K=5, L=7, one warm-up
    # epoch (36 epochs), one-eighth width.
    "bench": {
        "width_multiplier": 0.125, "x_bins": 64, "y_bins": 64, "batch_size": 32,
        "learning_rate": 2e-3, "mini_generations": 5, "epochs_per_generation": 7,
        "warmup_epochs": 1, "max_train_examples": 4000,
    },
    # GazeCapture at the paper's settings (Sec. 4.1): for accelerators.
    "paper": {
        "width_multiplier": 1.0, "x_bins": 133, "y_bins": 133, "batch_size": 64,
        "learning_rate": 1e-3, "mini_generations": 5, "epochs_per_generation": 7,
        "warmup_epochs": 1, "max_train_examples": None,
    },
}
# Protocol step 1 found the bench scale's validation error still falling at
# 36 epochs (3 seeds); a scale that over-fits is looked for with fewer
# training frames: the bench settings on the first 2,000 frames.
SCALES["bench_small"] = {**SCALES["bench"], "max_train_examples": 2000}
# The pilot (`tat_keras/pilot.py`): bench_small with mini-generations of 14
# epochs (K=5 after one warm-up epoch: 71 epochs), to find where a
# mini-generation converges and standard training saturates.
SCALES["pilot"] = {**SCALES["bench_small"], "epochs_per_generation": 14}
# The pilot at the paper's width, for a GPU (trained on exported arrays:
# `recipes/export_arrays.py`; BUILD_NOTES.md, "Training on JAX").
SCALES["pilot_full"] = {**SCALES["pilot"], "width_multiplier": 1.0}
# The pilot's next candidate after L = 14 (docs/results/README.md, "The
# pilot's next candidate"): mini-generations of 28 epochs (141 epochs).
SCALES["pilot_l28"] = {**SCALES["pilot"], "epochs_per_generation": 28}
# The candidate after L = 28 (docs/results/README.md, "The pilot's next
# candidate: every training frame"): L = 28 on all 8,108 training frames of
# the bench set.
SCALES["pilot_frames"] = {**SCALES["pilot_l28"], "max_train_examples": None}
# The pilot's scales (`tat_keras/pilot.py`) and the candidates of each,
# shortest L first, then more frames. A candidate that the pilot study ran at
# has its own doubled standard run; the first, L = 7, is `bench_small`'s
# records, doubled by the next candidate's standard run.
PILOT_CANDIDATES = {
    "pilot": ("bench_small", "pilot"),
    "pilot_l28": ("bench_small", "pilot", "pilot_l28"),
    "pilot_frames": ("bench_small", "pilot", "pilot_l28", "pilot_frames"),
    "pilot_full": ("pilot_full",),
}
# A pilot scale's `<scale>_report.md` is the pilot's report, so the protocol's
# report there takes another name (`report_name`).
PILOT_SCALES = tuple(PILOT_CANDIDATES)
DEFAULT_DATA_DIRS = {"bench": "data/bench/tfds", "bench_small": "data/bench/tfds",
                     "pilot": "data/bench/tfds", "pilot_l28": "data/bench/tfds",
                     "pilot_frames": "data/bench/tfds",
                     "paper": "data/gazecapture/tfds"}


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a table.

    Args:
        name: str. The row's label.
        run: str. Run id; rows with equal settings share it.
        overrides: dict. `TrainConfig` fields this row sets, over the scale's.
        max_seeds: int or None. Seeds this row needs at most (None: all).
        paper: dict or None. The paper's numbers for this row, shown in a
            column of their own.
        doubled: bool. Twice the scale's epochs: twice its warm-up and its
            mini-generations' length (the pilot's saturation rows).
    """

    name: str
    run: str
    overrides: dict
    max_seeds: int | None = None
    paper: dict | None = None
    doubled: bool = False


_STANDARD = {"scheme": "standard"}
_TAT = {"scheme": "tat"}
_DWO = {"dwo": True, "dwo_center_bins": 8, "dwo_steps": 1, "dwo_epsilon": 3.0,
        "dwo_step": 1.0, "dwo_original_fraction": 0.9}

SUITES = {
    "learning_curve": [Row("standard", "standard", _STANDARD)],
    "table1": [
        Row("standard", "standard", _STANDARD),
        Row("itracker", "itracker", {"scheme": "standard", "head": "regression"},
            paper={"total": 2.05, "phone": 1.86, "tablet": 2.81}),
        Row("sd", "sd", {"scheme": "sd"},
            paper={"total": 1.97, "phone": 1.81, "tablet": 2.61}),
        Row("tat", "tat", _TAT, paper={"total": 1.95, "phone": 1.77, "tablet": 2.66}),
    ],
    "table2": [
        Row("finetune (none)", "tat-teacher_none", {**_TAT, "teacher": "none"}, 2,
            paper={"mg": [1.81, 1.80, 1.78, 1.79, 1.79]}),
        Row("last", "tat-teacher_last", {**_TAT, "teacher": "last"}, 2,
            paper={"mg": [1.80, 1.77, 1.76, 1.75, 1.77]}),
        Row("mean", "tat-teacher_mean", {**_TAT, "teacher": "mean"}, 2,
            paper={"mg": [1.80, 1.77, 1.76, 1.75, 1.75]}),
        Row("best", "tat-teacher_best", {**_TAT, "teacher": "best"}, 2,
            paper={"mg": [1.79, 1.77, 1.77, 1.76, 1.77]}),
        Row("random", "tat", _TAT, 2, paper={"mg": [1.79, 1.77, 1.75, 1.74, 1.73]}),
    ],
    "table3": [
        Row("repr", "tat-pruning_repr", {**_TAT, "pruning": "repr"}, 2,
            paper={"mg": [1.80, 1.78, 1.77, 1.78, 1.77]}),
        Row("scratch", "tat-pruning_scratch", {**_TAT, "pruning": "scratch"}, 2,
            paper={"mg": [1.79, 1.82, 1.80, 1.80, 1.80]}),
        Row("none", "tat-pruning_none", {**_TAT, "pruning": "none"}, 2),
        Row("csp", "tat", _TAT, 2, paper={"mg": [1.79, 1.77, 1.75, 1.74, 1.73]}),
        # Beyond the paper (silent on optimizer state): re-born weights get
        # Adam moments restarted as for new weights (docs/interpretation.md).
        Row("scratch, fresh moments (variant)", "tat-pruning_scratch-moments_fresh",
            {**_TAT, "pruning": "scratch", "rebirth_moments": "fresh"}, 2),
        Row("csp, fresh moments (variant)", "tat-moments_fresh",
            {**_TAT, "rebirth_moments": "fresh"}, 2),
    ],
    "table4": [
        Row("orthogonal", "tat-reinit_orthogonal", {**_TAT, "reinit": "orthogonal"}, 2,
            paper={"mg": [1.79, None, None, None, None]}),
        Row("uniform", "tat-reinit_uniform", {**_TAT, "reinit": "uniform"}, 2,
            paper={"mg": [1.81, 1.77, 1.78, 1.77, 1.77]}),
        Row("aoi", "tat", _TAT, 2, paper={"mg": [1.79, 1.77, 1.75, 1.74, 1.73]}),
    ],
    "width": [
        Row("standard, width 1/4", "standard-width0.25",
            {**_STANDARD, "width_multiplier": 0.25}, 2),
        Row("tat, width 1/4", "tat-width0.25", {**_TAT, "width_multiplier": 0.25}, 2),
        Row("standard, width 1/2", "standard-width0.5",
            {**_STANDARD, "width_multiplier": 0.5}, 2),
        Row("tat, width 1/2", "tat-width0.5", {**_TAT, "width_multiplier": 0.5}, 2),
    ],
    "table5": [
        Row("baseline", "standard", _STANDARD, paper={"error": 1.15, "msd": 0.42}),
        Row("dwo (8 bins, T=1, 90%)", "standard-dwo", {**_STANDARD, **_DWO},
            paper={"error": 1.18, "msd": 0.34}),
        Row("dwo, T=3", "standard-dwo_t3", {**_STANDARD, **_DWO, "dwo_steps": 3}, 2,
            paper={"error": 1.28, "msd": 0.29}),
        Row("dwo, epsilon 8, step 2", "standard-dwo_eps8",
            {**_STANDARD, **_DWO, "dwo_epsilon": 8.0, "dwo_step": 2.0}, 2),
    ],
}
# Sweeps: tables beyond the protocol's decisions, not part of "all"; the
# report lists a sweep's table once it has records. `dwo_sweep` is the whole
# of Table 5 (gamma = 1 and epsilon = 3 pixels in every row, as in the
# paper); its baseline, its recommended row and its T=3 row are runs of the
# protocol's Table 5.
SWEEPS = {
    "dwo_sweep": [
        Row("baseline", "standard", _STANDARD, paper={"error": 1.15, "msd": 0.42}),
        Row("dwo, all center bins", "standard-dwo_ctr_all",
            {**_STANDARD, **_DWO, "dwo_center_bins": None}, 2,
            paper={"error": 1.20, "msd": 0.36}),
        Row("dwo, 32 center bins", "standard-dwo_ctr32",
            {**_STANDARD, **_DWO, "dwo_center_bins": 32}, 2,
            paper={"error": 1.22, "msd": 0.35}),
        Row("dwo, 16 center bins", "standard-dwo_ctr16",
            {**_STANDARD, **_DWO, "dwo_center_bins": 16}, 2,
            paper={"error": 1.20, "msd": 0.34}),
        Row("dwo (8 bins, T=1, 90%)", "standard-dwo", {**_STANDARD, **_DWO},
            paper={"error": 1.18, "msd": 0.34}),
        Row("dwo, T=2", "standard-dwo_t2", {**_STANDARD, **_DWO, "dwo_steps": 2}, 2,
            paper={"error": 1.25, "msd": 0.30}),
        Row("dwo, T=3", "standard-dwo_t3", {**_STANDARD, **_DWO, "dwo_steps": 3}, 2,
            paper={"error": 1.28, "msd": 0.29}),
        Row("dwo, 80% original", "standard-dwo_org80",
            {**_STANDARD, **_DWO, "dwo_original_fraction": 0.8}, 2,
            paper={"error": 1.22, "msd": 0.30}),
        Row("dwo, 50% original", "standard-dwo_org50",
            {**_STANDARD, **_DWO, "dwo_original_fraction": 0.5}, 2,
            paper={"error": 1.30, "msd": 0.29}),
        Row("dwo, no original", "standard-dwo_org0",
            {**_STANDARD, **_DWO, "dwo_original_fraction": 0.0}, 2,
            paper={"error": 1.44, "msd": 0.27}),
    ],
    # TAT where its premise holds (docs/results/README.md, "Decision runs
    # where TAT's premise holds"): run at the pilot's regime. The chain from
    # SD through mixup and re-birth to the random teacher, TAT under the
    # teacher thresholds the paper leaves open, and DwO's two main rows.
    "premise": [
        Row("standard", "standard", _STANDARD),
        Row("standard + mixup", "standard-mixup", {**_STANDARD, "mixup": True}, 4),
        Row("sd", "sd", {"scheme": "sd"}),
        Row("sd + mixup", "sd-mixup", {"scheme": "sd", "mixup": True}, 4),
        Row("sd + mixup + re-birth, newest teacher", "tat-teacher_last",
            {**_TAT, "teacher": "last"}, 4),
        Row("tat", "tat", _TAT),
        Row("tat, teacher threshold 1.10", "tat-threshold_1.10",
            {**_TAT, "teacher_threshold": 1.10}, 4),
        Row("tat, every teacher kept", "tat-threshold_none",
            {**_TAT, "teacher_threshold": None}, 4),
        Row("standard + dwo", "standard-dwo", {**_STANDARD, **_DWO}, 4),
    ],
}
# The premise table's paired differences: (treatment, control).
PREMISE_DIFFERENCES = (
    ("tat", "standard"), ("tat", "sd"),
    ("standard + mixup", "standard"), ("sd + mixup", "sd"),
    ("sd + mixup + re-birth, newest teacher", "sd + mixup"),
    ("tat", "sd + mixup + re-birth, newest teacher"),
    ("tat, teacher threshold 1.10", "sd"), ("tat, every teacher kept", "sd"),
)
# Studies run before a protocol's decision runs; not part of "all", each
# with its own report (the pilot: `tat_keras/pilot.py`).
STUDIES = {
    "pilot": [
        Row("sd", "sd", {"scheme": "sd"}),
        Row("standard", "standard", _STANDARD),
        Row("standard, twice the epochs", "standard-double", _STANDARD, doubled=True),
        Row("tat", "tat", _TAT),
    ],
}
SUITE_NAMES = tuple(SUITES) + tuple(SWEEPS) + tuple(STUDIES) + ("all",)
_ROWS = {**SUITES, **SWEEPS, **STUDIES}
# Tables whose rows are compared after every mini-generation.
GENERATION_TABLES = ("table2", "table3", "table4")
# Tables whose rows are compared with their first, the baseline, on error
# and on MSD, which they also measure on the nuisance-free stare set.
STARE_TABLES = ("table5", "dwo_sweep")
MAX_ERROR_COST = 0.03  # DwO's largest relative error cost (decision rule).


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of one row: `settings` are the TrainConfig fields to set."""

    table: str
    row: str
    run: str
    seed: int
    settings: dict


_FIELDS = tuple(field.name for field in dataclasses.fields(config_lib.TrainConfig))


def checked_settings(table, row, scale):
    """The `TrainConfig` settings of a row at a scale (without the seed),
    checked as `TrainConfig.resolved()` checks them.

    Args:
        table: str. The suite the row belongs to (named in errors).
        row: `Row`.
        scale: str. A name of `SCALES`.

    Returns:
        dict of `TrainConfig` fields.

    Raises:
        ValueError: the row or the scale sets a field `TrainConfig` does not
            have, or a value it refuses; the message names the row.

    Example:

    >>> checked_settings("table5", SUITES["table5"][1], "bench")["dwo_center_bins"]
    8
    >>> checked_settings("table5", Row("typo", "typo", {"dwo_centre_bins": 8}), "bench")
    Traceback (most recent call last):
    ...
    ValueError: Row 'typo' of table5 sets ['dwo_centre_bins'], which TrainConfig does not have. Fix the row's overrides in tat_keras/reproduction.py; TrainConfig's fields are those of recipes/train_tat.py's flags.
    """
    settings = {**SCALES[scale], **row.overrides}
    if row.doubled:
        settings.update(warmup_epochs=2 * settings["warmup_epochs"],
                        epochs_per_generation=2 * settings["epochs_per_generation"])
    unknown = sorted(set(settings) - set(_FIELDS))
    if unknown:
        raise ValueError(
            f"Row {row.name!r} of {table} sets {unknown}, which TrainConfig does not "
            "have. Fix the row's overrides in tat_keras/reproduction.py; "
            "TrainConfig's fields are those of recipes/train_tat.py's flags.")
    try:
        config_lib.TrainConfig(**settings).resolved()
    except ValueError as error:
        raise ValueError(f"Row {row.name!r} of {table} at scale {scale!r}: {error}") from None
    return settings


def plan(suite, scale, seeds, results_dir=None):
    """The runs of a suite, in the order to train them, their settings checked.

    Seed-major (every row's first seed before any second seed), so that an
    interrupted suite has the widest table it can.

    Args:
        suite: str. A name of `SUITE_NAMES`: a table of the protocol, a
            sweep, a study, or "all" (the protocol's tables).
        scale: str. A name of `SCALES`.
        seeds: list of int. Rows with `max_seeds` take the first ones.
        results_dir: str or None. The records so far. For the `premise`
            sweep, the TAT row that its first seeds chose
            (`premise.choose_tat_row`) then takes every seed, as
            pre-registered; without records, rows keep their `max_seeds`.

    Returns:
        list of `RunSpec` (a run shared by several rows appears once per row).

    Raises:
        ValueError: an unknown suite or scale, no seed, or a row whose
            settings `TrainConfig` refuses (see `checked_settings`).
    """
    if suite not in SUITE_NAMES:
        raise ValueError(f"suite must be one of {SUITE_NAMES}. Received: suite={suite!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {tuple(SCALES)}. Received: scale={scale!r}")
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not seeds:
        raise ValueError("seeds must name at least one seed. Received: seeds=[]")
    tables = list(SUITES) if suite == "all" else [suite]
    settings = {(table, row.name): checked_settings(table, row, scale)
                for table in tables for row in _ROWS[table]}
    every_seed = set()
    if results_dir is not None and "premise" in tables:
        from tat_keras import premise  # It reads this module's records.

        chosen, _ = premise.choose_tat_row(results_dir, scale, seeds)
        every_seed = {("premise", chosen)} if chosen else set()
    specs = []
    for index, seed in enumerate(seeds):
        for table in tables:
            for row in _ROWS[table]:
                if (row.max_seeds is not None and index >= row.max_seeds
                        and (table, row.name) not in every_seed):
                    continue
                specs.append(RunSpec(table, row.name, row.run, seed,
                                     {**settings[table, row.name], "seed": seed}))
    return specs


def total_epochs(settings):
    """Epochs of a run: the warm-up plus K mini-generations of L epochs.

    >>> total_epochs(SCALES["bench"]), total_epochs(SCALES["pilot"])
    (36, 71)
    """
    return sum(_generation_epochs(settings))


def _generation_epochs(settings):
    """Epochs of each mini-generation of a run's settings."""
    return config_lib.generation_epochs(settings["mini_generations"],
                                        settings["epochs_per_generation"],
                                        settings["warmup_epochs"])


def unique_runs(specs):
    """One spec per `(run, seed)`, first occurrence kept, order kept."""
    seen, runs = set(), []
    for spec in specs:
        if (spec.run, spec.seed) not in seen:
            seen.add((spec.run, spec.seed))
            runs.append(spec)
    return runs


def record_dir(results_dir, scale, run, seed):
    """Where the small JSON records of a run are kept (committed)."""
    return os.path.join(results_dir, "runs", scale, run, f"seed{seed}")


RECORD_FILES = ("metrics.json", "history.json", "generations.json", "config.json")


def file_prefix(scale):
    """Prefix of a scale's tables, figures and report in the results folder
    (none for `bench`, the protocol's first scale).

    >>> file_prefix("bench"), file_prefix("bench_small")
    ('', 'bench_small_')
    """
    return "" if scale == "bench" else f"{scale}_"


def report_name(scale):
    """The file name of the protocol's report at `scale`: `report.md` after
    the scale's prefix, or `protocol_report.md` at a pilot's scale, where
    `report.md` is the pilot's own report.

    >>> report_name("bench"), report_name("bench_small"), report_name("pilot_frames")
    ('report.md', 'bench_small_report.md', 'pilot_frames_protocol_report.md')
    """
    return file_prefix(scale) + ("protocol_report.md" if scale in PILOT_SCALES
                                 else "report.md")


def data_fingerprint(data_dir, image_size=64):
    """A short hash of the prepared data a run trains on, or None.

    It hashes the split sizes of the prepared `gaze_capture/size<N>` dataset
    (bytes and examples per shard, from TFDS's `dataset_info.json`), which
    change whenever the data is rendered or prepared differently. A run
    records it in `metrics.json` (`data_fingerprint`); the suite refuses to
    count a record made on other data than the data it trains on now.

    >>> import tempfile
    >>> data_fingerprint(tempfile.mkdtemp()) is None
    True
    """
    prepared = layout.prepared_dataset_info(data_dir, image_size)
    if prepared is None:
        return None
    version, info = prepared
    splits = sorted(
        (split["name"], str(split.get("numBytes", "0")),
         [str(n) for n in split.get("shardLengths", [])])
        for split in info.get("splits", []))
    text = json.dumps([version, splits])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def foreign_records(specs, results_dir, scale, fingerprint):
    """The finished runs among `specs` whose records name another data
    fingerprint than `fingerprint` (runs without one are not listed)."""
    foreign = []
    for spec in unique_runs(specs):
        run = load_run(results_dir, scale, spec.run, spec.seed)
        recorded = run and run["metrics"].get("data_fingerprint")
        if recorded and fingerprint and recorded != fingerprint:
            foreign.append((spec.run, spec.seed, recorded))
    return foreign


def _load_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def load_run(results_dir, scale, run, seed):
    """The records of a finished run (`metrics`, `history`, `generations`,
    `config`), or None when it has no `metrics.json` yet."""
    directory = record_dir(results_dir, scale, run, seed)
    metrics = _load_json(os.path.join(directory, "metrics.json"))
    if metrics is None:
        return None
    return {
        "metrics": metrics,
        "history": _load_json(os.path.join(directory, "history.json")) or [],
        "generations": (_load_json(os.path.join(directory, "generations.json"))
                        or {}).get("generations", []),
        "config": _load_json(os.path.join(directory, "config.json")) or {},
    }


CSV_COLUMNS = (
    "table", "row", "run", "seed", "epochs", "width", "train_error_cm",
    "val_error_cm", "test_error_cm", "test_error_cm_phone", "test_error_cm_tablet",
    "test_msd_cm", "clean_test_msd_cm", "train_seconds", "generation_test_error_cm",
)


def run_record(spec, run):
    """One CSV line of a finished run."""
    metrics = run["metrics"]
    generations = run["generations"]
    return {
        "table": spec.table, "row": spec.row, "run": spec.run, "seed": spec.seed,
        "epochs": metrics.get("epochs"),
        "width": run["config"].get("width_multiplier",
                                   spec.settings.get("width_multiplier")),
        **{key: metrics.get(key) for key in CSV_COLUMNS[6:14]},
        "generation_test_error_cm": [g.get("test_error_cm") for g in generations],
    }


def collect(specs, results_dir, scale):
    """CSV records of the finished runs among `specs`."""
    records = []
    for spec in specs:
        run = load_run(results_dir, scale, spec.run, spec.seed)
        if run is not None:
            records.append(run_record(spec, run))
    return records


def _by_row(records, key):
    """{row: {seed: value}} for one column."""
    rows = {}
    for record in records:
        rows.setdefault(record["row"], {})[record["seed"]] = record.get(key)
    return rows


def _summary_cell(values):
    summary = reporting.mean_std(values)
    text = reporting.format_mean_std(summary)
    return text if summary.count == 0 else f"{text} ({summary.count})"


def _difference_line(what, key, records, treatment, control):
    rows = _by_row(records, key)
    difference = reporting.paired_difference(rows.get(treatment, {}),
                                             rows.get(control, {}))
    return difference, (f"- {what}: {treatment} − {control}, paired over seeds "
                        f"{difference.seeds or '–'}: "
                        f"{reporting.format_interval(difference.interval)} cm "
                        f"{_interval_label(difference.interval)}")


def _interval_label(interval):
    """What a difference line's figures are: one seed gives no interval."""
    if interval.count and not math.isfinite(interval.low):
        return "(one paired seed: mean, no interval)"
    return "(mean [95% interval])"


def table_markdown(table, records, scale):
    """The Markdown of one table from its CSV records (see `collect`)."""
    rows = _ROWS[table]
    lines = [f"# {TITLES[table]}", "", f"Scale: `{scale}`. Mean ± sample standard "
             "deviation over seeds (number of seeds in brackets), in cm.", ""]
    paper_note = ("The paper's column holds the paper's own figures on its own "
                  "data (GazeCapture; Table 5: its GazeCN and GazeStare sets), "
                  "for orientation only: they are not results of this project.")
    if table in GENERATION_TABLES:
        generations = max([len(r["generation_test_error_cm"]) for r in records
                           if r["table"] == table] + [SCALES[scale]["mini_generations"]])
        headers = (["row"] + [f"MG.{g}" for g in range(generations)]
                   + ["test error", "paper MG.0-4"])
        body = []
        for row in rows:
            mine = [r for r in records if r["table"] == table and r["row"] == row.name]
            cells = [row.name]
            for g in range(generations):
                cells.append(_summary_cell(
                    [r["generation_test_error_cm"][g] if g < len(
                        r["generation_test_error_cm"]) else None for r in mine]))
            cells.append(_summary_cell([r["test_error_cm"] for r in mine]))
            paper = (row.paper or {}).get("mg")
            cells.append(" / ".join("N/A" if v is None else f"{v:.2f}" for v in paper)
                         if paper else "–")
            body.append(cells)
        lines += [reporting.markdown_table(headers, body), "", paper_note]
        return "\n".join(lines) + "\n"

    mine = [r for r in records if r["table"] == table]
    headers = ["row", "train error", "val error", "test error", "phone", "tablet",
               "test MSD"]
    if table in STARE_TABLES:
        headers.append("MSD, sensor noise only")
    headers += ["train s", "paper"]
    body = []
    for row in rows:
        chosen = [r for r in mine if r["row"] == row.name]
        cells = [row.name] + [_summary_cell([r[k] for r in chosen]) for k in (
            "train_error_cm", "val_error_cm", "test_error_cm", "test_error_cm_phone",
            "test_error_cm_tablet", "test_msd_cm")]
        if table in STARE_TABLES:
            cells.append(_summary_cell([r["clean_test_msd_cm"] for r in chosen]))
        seconds = reporting.mean_std([r["train_seconds"] for r in chosen])
        cells.append(reporting.format_number(seconds.mean, 0))
        cells.append(", ".join(f"{k} {v}" for k, v in (row.paper or {}).items()) or "–")
        body.append(cells)
    lines += [reporting.markdown_table(headers, body), ""]
    if table == "table1":
        lines += ["Paired differences of test error:", ""]
        for control in ("standard", "sd", "itracker"):
            lines.append(_difference_line("test error", "test_error_cm", mine, "tat",
                                          control)[1])
        lines.append("")
    if table in STARE_TABLES:
        lines += ["Paired differences:", ""]
        for row in rows[1:]:
            lines.append(_difference_line("test MSD", "test_msd_cm", mine, row.name,
                                          "baseline")[1])
            lines.append(_difference_line("test error", "test_error_cm", mine,
                                          row.name, "baseline")[1])
            lines.append(_difference_line("MSD, sensor noise only", "clean_test_msd_cm",
                                          mine, row.name, "baseline")[1])
        lines.append("")
    if table == "premise":
        lines += ["Paired differences of test error:", ""]
        for treatment, control in PREMISE_DIFFERENCES:
            lines.append(_difference_line("test error", "test_error_cm", mine,
                                          treatment, control)[1])
        lines.append(_difference_line("test MSD", "test_msd_cm", mine,
                                      "standard + dwo", "standard")[1])
        lines.append(_difference_line("test error", "test_error_cm", mine,
                                      "standard + dwo", "standard")[1])
        lines.append("")
    if table == "width":
        lines += ["Paired differences of test error:", ""]
        for width in ("1/4", "1/2"):
            lines.append(_difference_line("test error", "test_error_cm", mine,
                                          f"tat, width {width}",
                                          f"standard, width {width}")[1])
        lines.append("")
    lines.append(paper_note)
    return "\n".join(lines) + "\n"


TITLES = {
    "learning_curve": "Learning curve of standard training",
    "table1": "Table 1: standard, iTracker-style regression, SD and TAT at equal epochs",
    "table2": "Table 2: teachers (test error after every mini-generation)",
    "table3": "Table 3: pruning methods (test error after every mini-generation)",
    "table4": "Table 4: re-initialization methods (test error after every mini-generation)",
    "width": "Width: standard against TAT at quarter and half width",
    "table5": "Table 5: DwO against the baseline",
    "dwo_sweep": "Table 5 in full: DwO's center bins, PGD steps and share of original data",
    "premise": "TAT where its premise holds: the chain from SD to TAT, teacher "
               "thresholds, and DwO",
}


def _verdict(reproduced, seeds, planned):
    """("reproduced" or "not reproduced at this scale", the note that opens
    its parenthesis): while fewer than the `planned` seeds are in, the
    verdict reads "so far ..." and the note says it is provisional."""
    verdict = "reproduced" if reproduced else "not reproduced at this scale"
    if seeds < planned:
        return f"so far {verdict}", f"provisional: {seeds} of {planned} planned seeds; "
    return verdict, ""


def decide_tat(records, planned=4):
    """The decision for TAT from Table 1's records: (reproduced, sentence).

    With fewer than `planned` paired seeds the sentence says the verdict is
    provisional."""
    mine = [r for r in records if r["table"] == "table1"]
    against = {}
    for control in ("standard", "sd"):
        against[control] = _difference_line("", "test_error_cm", mine, "tat",
                                            control)[0]
    counts = [len(d.seeds) for d in against.values()]
    if min(counts) < 2:
        return None, (f"TAT: undecided, paired seeds against standard and SD: "
                      f"{counts[0]} and {counts[1]} (at least 2 needed, {planned} planned).")
    reproduced = all(d.interval.below_zero for d in against.values())
    detail = "; ".join(
        f"against {name}: {reporting.format_interval(d.interval)} cm over {len(d.seeds)} seeds"
        for name, d in against.items())
    verdict, note = _verdict(reproduced, min(counts), planned)
    return reproduced, (f"TAT: {verdict} ({note}paired test-error difference, 95% "
                        f"interval, {detail}).")


def decide_dwo(records, planned=4):
    """The decision for DwO from Table 5's records: (reproduced, sentence),
    provisional with fewer than `planned` paired seeds."""
    mine = [r for r in records if r["table"] == "table5"]
    treatment = SUITES["table5"][1].name
    msd = _difference_line("", "test_msd_cm", mine, treatment, "baseline")[0]
    error = _difference_line("", "test_error_cm", mine, treatment, "baseline")[0]
    count = len(msd.seeds)
    if count < 2:
        return None, (f"DwO: undecided, {count} paired seed{'' if count == 1 else 's'} "
                      f"(at least 2 needed, {planned} planned).")
    baseline = reporting.mean_std([r["test_error_cm"] for r in mine
                                    if r["row"] == "baseline" and r["seed"] in error.seeds])
    cost = error.interval.mean / baseline.mean if baseline.count else math.nan
    reproduced = msd.interval.below_zero and cost <= MAX_ERROR_COST
    verdict, note = _verdict(reproduced, count, planned)
    return reproduced, (
        f"DwO: {verdict} ({note}paired MSD difference {reporting.format_interval(msd.interval)} cm, "
        f"error cost {100 * cost:+.1f}% against at most {100 * MAX_ERROR_COST:.0f}%, "
        f"{count} seeds).")


def learning_curve(runs):
    """Mean train and validation error per epoch over seeds, and whether the
    validation error still falls at the end.

    Args:
        runs: list of histories (lists of per-epoch dicts with `error_cm` and
            `val_error_cm`).

    Returns:
        dict: `train` and `val` (per epoch means), `best_epoch` (1-based),
        `slope` (cm per epoch over the last quarter of epochs, at least 3,
        or every epoch of a shorter history) with its 95% interval
        `slope_low`, `slope_high` (NaN where there are too few epochs for
        them), and `still_falling`.
    """
    histories = [h for h in runs if h]
    if not histories:
        return None
    epochs = min(len(h) for h in histories)
    train = np.array([[h[e]["error_cm"] for e in range(epochs)] for h in histories])
    val = np.array([[h[e].get("val_error_cm", np.nan) for e in range(epochs)]
                    for h in histories], dtype=float)
    val_mean = np.nanmean(val, axis=0)
    tail = min(epochs, max(3, epochs // 4))
    if tail >= 2:
        slope = reporting.slope_interval(np.arange(epochs - tail, epochs), val_mean[-tail:])
    else:
        slope = reporting.Interval(math.nan, math.nan, math.nan, tail, 0.95)
    return {
        "epochs": epochs, "seeds": len(histories),
        "train": train.mean(axis=0).tolist(), "val": val_mean.tolist(),
        "best_epoch": int(np.nanargmin(val_mean)) + 1,
        "best_val_error_cm": float(np.nanmin(val_mean)),
        "final_train_error_cm": float(train.mean(axis=0)[-1]),
        "final_val_error_cm": float(val_mean[-1]),
        "slope": slope.mean, "slope_low": slope.low, "slope_high": slope.high,
        "still_falling": slope.below_zero,
    }


def _slope_verdict(curve):
    """The learning-curve report's sentence on the final slope."""
    if not math.isfinite(curve["slope_high"]):
        return (f"{curve['slope']:+.4f} cm/epoch over {curve['epochs']} epoch(s), too "
                "few for an interval, so the rule cannot judge it.")
    return (f"{curve['slope']:+.4f} cm/epoch [{curve['slope_low']:+.4f}, "
            f"{curve['slope_high']:+.4f}]: "
            + ("still falling, so this scale does not over-fit and TAT's premise "
               "is not met." if curve["still_falling"] else
               "no longer falling by the rule (its interval includes zero), which "
               "does not show that this scale over-fits."))


def scheme_diagnostics(runs):
    """What happens inside one row's runs, averaged over seeds: where TAT
    (or SD) gains or loses against standard training.

    Args:
        runs: list of `load_run` results of one row (one per seed).

    Returns:
        dict, or None without runs: `seeds`; the final `train_error_cm`
        (inference mode), `val_error_cm`, `test_error_cm` and `gap_cm`
        (validation minus training error), means over seeds; and per
        mini-generation, where the run has them: `generation_test_error_cm`
        (test error after each), `restart_change_cm` (for each mini-generation
        after the first: its first epoch's training error minus the previous
        epoch's, the cost of a re-birth and a restarted learning rate),
        `teachers_kept` (teachers in the list after each one, the model just
        finished included, once the threshold has dropped those it drops)
        and `earlier_teacher_epochs` (the fraction of taught epochs whose
        teacher was not the newest one).
    """
    runs = [r for r in runs if r]
    if not runs:
        return None

    def final(key):
        return _mean([r["metrics"].get(key) for r in runs])

    result = {"seeds": len(runs), "train_error_cm": final("train_error_cm"),
              "val_error_cm": final("val_error_cm"),
              "test_error_cm": final("test_error_cm")}
    result["gap_cm"] = (result["val_error_cm"] - result["train_error_cm"]
                        if None not in (result["val_error_cm"], result["train_error_cm"])
                        else None)
    count = min(len(r["generations"]) for r in runs)
    if count < 1:
        return result
    per_seed = {"generation_test_error_cm": [], "restart_change_cm": [],
                "teachers_kept": [], "earlier_teacher_epochs": []}
    for run in runs:
        generations, history = run["generations"][:count], run["history"]
        per_seed["generation_test_error_cm"].append(
            [g.get("test_error_cm") for g in generations])
        changes = []
        for generation in generations[1:]:
            first = (generation.get("epochs") or [0])[0]
            changes.append(history[first]["error_cm"] - history[first - 1]["error_cm"]
                           if 0 < first < len(history) else None)
        per_seed["restart_change_cm"].append(changes)
        per_seed["teachers_kept"].append(
            [len(g["teacher_list"]) if g.get("teacher_list") is not None else None
             for g in generations])
        taught = earlier = 0
        for index, generation in enumerate(generations):
            for drawn in generation.get("teachers", []):
                if drawn:
                    taught += 1
                    earlier += any(t != index - 1 for t in drawn)
        per_seed["earlier_teacher_epochs"].append(earlier / taught if taught else None)
    for key, values in per_seed.items():
        if key == "earlier_teacher_epochs":
            result[key] = _mean(values)
        else:
            result[key] = [_mean(column) for column in zip(*values)]
    return result


def _cells(values, digits=2):
    return ", ".join("–" if v is None else f"{v:.{digits}f}" for v in values) or "–"


def diagnostics_markdown(diagnostics, rows_of="Table 1's rows"):
    """A report section on what happens inside the runs of some rows, such as
    where TAT and SD stand against standard training (`diagnostics`: row ->
    `scheme_diagnostics`; `rows_of` names the rows in the heading)."""
    present = {row: d for row, d in diagnostics.items() if d}
    if not present:
        return []
    lines = [
        f"## Inside the runs: {rows_of}", "",
        "Means over seeds, in cm. Training error in inference mode at the end.", "",
        "| row | seeds | train error | val error | val − train | test error |",
        "|---|---|---|---|---|---|",
    ]
    for row, d in present.items():
        lines.append(f"| {row} | {d['seeds']} | {_cells([d['train_error_cm']])} | "
                     f"{_cells([d['val_error_cm']])} | {_cells([d['gap_cm']])} | "
                     f"{_cells([d['test_error_cm']])} |")
    staged = {row: d for row, d in present.items()
              if len(d.get("generation_test_error_cm") or []) > 1}
    if staged:
        lines += [
            "", "Per mini-generation. *Restart*: the training error (augmented, mean "
            "over the epoch) of each mini-generation's first epoch minus that of "
            "the epoch before: the cost of the restarted learning rate, and in TAT "
            "of the re-birth. *Teachers kept*: the list after each mini-generation, "
            "once the threshold has dropped the teachers it drops. *Earlier "
            "teacher*: the share of taught epochs whose teacher was not the newest.",
            "",
            "| row | test error after each | restart | teachers kept | earlier teacher |",
            "|---|---|---|---|---|",
        ]
        for row, d in staged.items():
            earlier = d["earlier_teacher_epochs"]
            lines.append(
                f"| {row} | {_cells(d['generation_test_error_cm'])} | "
                f"{_cells(d['restart_change_cm'])} | "
                f"{_cells([v for v in d['teachers_kept'] if v is not None], 1)} | "
                f"{'–' if earlier is None else f'{100 * earlier:.0f}%'} |")
    return lines + [""]


# Figures -------------------------------------------------------------------


def generation_panels(records):
    """The mean test error after every mini-generation per row of Tables 2-4,
    for `plots.plot_generation_errors`: {table title: {"row (seeds)": means}}."""
    panels = {}
    for table in GENERATION_TABLES:
        lines = {}
        for row in SUITES[table]:
            mine = [r["generation_test_error_cm"] for r in records
                    if r["table"] == table and r["row"] == row.name]
            if not mine:
                continue
            length = max(len(m) for m in mine)
            lines[f"{row.name} ({len(mine)})"] = [
                _mean([m[g] if g < len(m) else None for m in mine]) for g in range(length)]
        panels[TITLES[table].split(":")[0]] = lines
    return panels


def _mean(values):
    """The mean of the finite values, None without any."""
    summary = reporting.mean_std(values)
    return summary.mean if summary.count else None


# The report ----------------------------------------------------------------

FIRST_AND_LAST_CONVOLUTION = ("face_conv11", "face_conv52")


def write_report(results_dir, scale, seeds, commands):
    """Writes every table (`tableN.md`, `tableN.csv`), the learning curve
    (`learning_curve.json`), the figures and the report (`report_name`)
    from the records under `results_dir/runs/<scale>/`; runs not finished
    yet are left out.
    A sweep's table (`dwo_sweep.md`, `.csv`) is written, and listed, once
    the sweep has records of its own runs.

    Args:
        results_dir: str. Folder of the report (e.g. `docs/results`).
        scale: str. A name of `SCALES`.
        seeds: list of int. The seeds of the plan.
        commands: list of str. The commands that produced the runs, shown
            in the report.

    Returns:
        dict: `runs` (finished, planned), `tat` and `dwo` decisions.
    """
    specs = plan("all", scale, seeds)
    records = collect(specs, results_dir, scale)
    prefix = file_prefix(scale)
    out = lambda name: os.path.join(results_dir, prefix + name)  # noqa: E731
    tables = [table for table in SUITES if table != "learning_curve"]
    tabled = list(records)
    protocol_runs = {(s.run, s.seed) for s in specs}
    for sweep in SWEEPS:
        sweep_records = collect(plan(sweep, scale, seeds, results_dir), results_dir,
                                scale)
        if any((r["run"], r["seed"]) not in protocol_runs for r in sweep_records):
            tabled += sweep_records
            tables.append(sweep)
    for table in tables:
        with open(out(f"{table}.md"), "w") as f:
            f.write(table_markdown(table, tabled, scale))
        reporting.write_csv(out(f"{table}.csv"),
                            [r for r in tabled if r["table"] == table], CSV_COLUMNS)

    def histories(run, max_seeds=None):
        return [h for h in (load_run(results_dir, scale, run, s)
                            for s in seeds[:max_seeds]) if h]

    figures = []
    curve = learning_curve([h["history"] for h in histories("standard")])
    if curve:
        reporting.write_json(out("learning_curve.json"), curve)
        plots.plot_curves({"error_cm": curve["train"], "val_error_cm": curve["val"]},
                          out("learning_curve.png"), mark_best=True,
                          title=f"Standard training, mean of {curve['seeds']} seed(s)")
        figures.append(("Learning curve of standard training", "learning_curve.png"))
    first = {label: load_run(results_dir, scale, run, seeds[0])
             for label, run in (("standard", "standard"), ("TAT", "tat"))}
    if all(first.values()):
        epochs = _generation_epochs(SCALES[scale])
        plots.plot_scheme_curves({k: v["history"] for k, v in first.items()},
                                 out("fig1a_curves.png"),
                                 generation_boundaries=list(np.cumsum(epochs)[:-1]))
        figures.append((f"Fig. 1(a): standard against TAT, seed {seeds[0]}",
                        "fig1a_curves.png"))
    if any(r["table"] in GENERATION_TABLES for r in records):
        plots.plot_generation_errors(generation_panels(records),
                                     out("generation_errors.png"))
        figures.append(("Tables 2-4: test error after every mini-generation",
                        "generation_errors.png"))
    rebirths = {}
    for method, run in (("aoi", "tat"), ("orthogonal", "tat-reinit_orthogonal"),
                        ("uniform", "tat-reinit_uniform")):
        loaded = load_run(results_dir, scale, run, seeds[0])
        if loaded and loaded["generations"] and loaded["generations"][0].get("rebirth"):
            rebirths[method] = loaded["generations"][0]["rebirth"]
    if rebirths:
        plots.plot_norm_ranges(rebirths, FIRST_AND_LAST_CONVOLUTION,
                               out("fig3_norms.png"))
        figures.append(("Fig. 3: norm ranges of pruned and re-born filters, first "
                        "re-birth", "fig3_norms.png"))
    if os.path.exists(out("fig1b_jitter.png")):
        figures.append(("Fig. 1(b): stare predictions, baseline against DwO",
                        "fig1b_jitter.png"))

    def planned_seeds(table, row_run):
        return len({s.seed for s in specs if s.table == table and s.run == row_run})

    tat, tat_sentence = decide_tat(records, planned_seeds("table1", "tat"))
    dwo, dwo_sentence = decide_dwo(
        records, planned_seeds("table5", SUITES["table5"][1].run))
    finished = len({(r["run"], r["seed"]) for r in records})
    planned = len(unique_runs(specs))
    lines = [
        f"# Reproduction report ({scale} scale)", "",
        f"{finished} of {planned} planned runs finished (seeds {seeds}).", "",
        "## Decisions", "", f"- {tat_sentence}", f"- {dwo_sentence}", "",
        "Decision rule (fixed before any run): TAT is reproduced when the paired "
        "test-error differences against standard training and against SD both "
        "have a 95% t-interval below zero; DwO when the paired MSD difference "
        f"does, at a relative error cost of at most {100 * MAX_ERROR_COST:.0f}%.", "",
    ]
    if curve:
        lines += [
            "## Learning curve", "",
            f"Standard training, {curve['epochs']} epochs, {curve['seeds']} seed(s): "
            f"best validation error {curve['best_val_error_cm']:.3f} cm at epoch "
            f"{curve['best_epoch']}; at the end train {curve['final_train_error_cm']:.3f} "
            f"and validation {curve['final_val_error_cm']:.3f} cm. Slope of the "
            f"validation error over the last quarter of epochs: "
            + _slope_verdict(curve),
            "",
        ]
    lines += diagnostics_markdown({
        row: scheme_diagnostics(histories(row))
        for row in ("standard", "itracker", "sd", "tat")})
    for table, rows_of in (
            ("table3", "Table 3's rows (pruning, and the Adam moments of re-born weights)"),
            ("width", "the width rows (does a re-birth cost less with filters to spare?)")):
        lines += diagnostics_markdown(
            {row.name: scheme_diagnostics(histories(row.run, row.max_seeds))
             for row in SUITES[table]}, rows_of)
    lines += ["## Tables", ""]
    for table in tables:
        lines.append(f"- [{TITLES[table]}]({prefix}{table}.md) "
                     f"([CSV]({prefix}{table}.csv))")
    lines += ["", "## Figures", ""]
    for title, name in figures:
        lines += [f"### {title}", "", f"![{title}]({prefix}{name})", ""]
    lines += ["## Commands", "", "```bash", *commands, "```", ""]
    with open(os.path.join(results_dir, report_name(scale)), "w") as f:
        f.write("\n".join(lines))
    return {"runs": (finished, planned), "tat": tat, "dwo": dwo}
