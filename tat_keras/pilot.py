"""The pilot: a regime where TAT's premise holds, looked for before any
decision run (`docs/results/README.md`, "The pilot").

TAT restarts and re-births a network after every mini-generation, which can
only pay where a mini-generation has converged and standard training has
stopped improving. The pilot measures both, with rules fixed before its runs:

- **Convergence** (of a mini-generation of L epochs): in SD runs, the
  relative gain in validation error of mini-generation k over k - 1,
  `(v[k-1] - v[k]) / v[k-1]`, averaged over seeds, is at most
  `MAX_GENERATION_GAIN` (3%) for every k after the second.
- **Saturation** (of standard training at E epochs): doubling the epochs does
  not lower the final validation error, paired over seeds; a mean paired
  gain under `MIN_DOUBLING_GAIN` (1% of the error at E epochs) counts as not
  lower.
- **Teachers that run** (TAT under the scale's teacher threshold): the
  teacher list's mean size over mini-generations 2-4, and the share of
  taught epochs whose teacher was not the newest.

The chosen regime is the first candidate (shortest L first, then more
training frames: `CANDIDATES`) at which SD converges and standard training
at the same total epochs is saturated. The resolvable effect of a
decision row is the 95% half-width that the pilot's paired spread of TAT
against SD implies at the planned number of seeds.

Every function reads the small records of finished runs, so this module
imports neither TensorFlow nor Keras.

Example:

>>> [round(g, 4) for g in relative_gains([4.0, 3.6, 3.5, 3.45])]
[0.1, 0.0278, 0.0143]
"""

import math
import os

import numpy as np

from tat_keras import reporting
from tat_keras import reproduction

MAX_GENERATION_GAIN = 0.03
MIN_DOUBLING_GAIN = 0.01
# Seeds planned for the decision rows that the resolvable effect is given for.
PLANNED_SEEDS = 6
# The candidates of each pilot scale, shortest L first, then more frames
# (defined beside the scales themselves).
CANDIDATES = reproduction.PILOT_CANDIDATES
# Pilot scales after which the study stops (docs/results/README.md, "The
# pilot's next candidate: every training frame"): if no candidate meets both
# rules, the decision runs go at the candidate whose SD runs converged and
# whose doubled standard training gained least.
LAST_CANDIDATES = ("pilot_frames",)


def relative_gains(errors):
    """Relative gain of every mini-generation over the one before:
    `(errors[k-1] - errors[k]) / errors[k-1]` for k = 1 .. len - 1.

    Args:
        errors: list of float. Validation error after each mini-generation.
    """
    return [(float(a) - float(b)) / float(a) for a, b in zip(errors[:-1], errors[1:])]


def generation_val_errors(run):
    """Validation error after each mini-generation of a finished run."""
    return [g.get("val_error_cm") for g in run["generations"]]


def convergence(runs, max_gain=MAX_GENERATION_GAIN):
    """Whether the mini-generations of SD runs have converged.

    Args:
        runs: list of `reproduction.load_run` results (one per seed).
        max_gain: float. Largest mean relative gain allowed after the second
            mini-generation.

    Returns:
        dict or None without runs: `seeds`, `val_error_cm` (mean per
        mini-generation), `gains` (mean relative gain of mini-generation k
        over k - 1, k = 2 .. K), `converged`.

    >>> run = {"generations": [{"val_error_cm": v} for v in (4.0, 3.6, 3.5, 3.45)]}
    >>> convergence([run])["converged"]
    True
    """
    series = [generation_val_errors(r) for r in runs]
    series = [s for s in series if s and all(v is not None for v in s)]
    if not series:
        return None
    length = min(len(s) for s in series)
    errors = np.array([s[:length] for s in series], dtype=float)
    gains = np.array([relative_gains(s) for s in errors]).mean(axis=0)
    after_second = gains[1:]
    return {
        "seeds": len(series),
        "val_error_cm": errors.mean(axis=0).tolist(),
        "gains": gains.tolist(),
        "converged": bool(len(after_second) > 0 and np.all(after_second <= max_gain)),
    }


def saturation(single, double, min_gain=MIN_DOUBLING_GAIN):
    """Whether doubling the epochs of standard training lowers its final
    validation error, paired over seeds.

    Args:
        single: dict seed -> `load_run` result at E epochs.
        double: dict seed -> `load_run` result at 2E epochs.
        min_gain: float. Mean paired gain, relative to the error at E epochs,
            below which doubling counts as not lowering the error.

    Returns:
        dict or None without a pair: `seeds`, `single_cm`, `double_cm`
        (means over the paired seeds), `difference` (`PairedDifference` of
        double minus single), `relative` (mean difference over the mean at E
        epochs), `saturated`.

    >>> make = lambda v: {"metrics": {"val_error_cm": v}}
    >>> saturation({1: make(3.0), 2: make(3.2)}, {1: make(3.01), 2: make(3.15)})["saturated"]
    True
    """
    single_errors = {s: r["metrics"].get("val_error_cm") for s, r in single.items() if r}
    double_errors = {s: r["metrics"].get("val_error_cm") for s, r in double.items() if r}
    difference = reporting.paired_difference(double_errors, single_errors)
    if not difference.seeds:
        return None
    single_mean = float(np.mean([single_errors[s] for s in difference.seeds]))
    relative = difference.interval.mean / single_mean
    return {
        "seeds": difference.seeds,
        "single_cm": single_mean,
        "double_cm": float(np.mean([double_errors[s] for s in difference.seeds])),
        "difference": difference,
        "relative": relative,
        "saturated": bool(relative > -min_gain),
    }


def teacher_use(runs, generations=(1, 2, 3)):
    """How much the random teacher had to choose from.

    Args:
        runs: list of `load_run` results of TAT runs.
        generations: 0-based mini-generations whose taught epochs count (the
            paper's mini-generations 2-4 are 1, 2, 3).

    Returns:
        dict or None without runs: `list_sizes` (mean size of the teacher
        list each of `generations` drew from), `mean_list_size`, and
        `earlier_share` (share of their taught epochs whose teacher was not
        the newest).

    >>> gens = [{"teacher_list": [0]}, {"teacher_list": [0, 1], "teachers": [[0], [0]]},
    ...         {"teacher_list": [0, 1, 2], "teachers": [[1], [0]]},
    ...         {"teachers": [[2], [0]]}]
    >>> use = teacher_use([{"generations": gens}])
    >>> use["list_sizes"], round(use["earlier_share"], 3)
    ([1.0, 2.0, 3.0], 0.333)
    """
    runs = [r for r in runs if r and len(r["generations"]) > max(generations)]
    if not runs:
        return None
    sizes, taught, earlier = [], 0, 0
    for generation in generations:
        sizes.append(float(np.mean([
            len(r["generations"][generation - 1].get("teacher_list") or [])
            for r in runs])))
        newest = generation - 1
        for r in runs:
            for drawn in r["generations"][generation].get("teachers", []):
                if drawn:
                    taught += 1
                    earlier += any(t != newest for t in drawn)
    return {
        "list_sizes": sizes,
        "mean_list_size": float(np.mean(sizes)),
        "earlier_share": earlier / taught if taught else math.nan,
    }


def resolvable_half_width(differences, seeds=PLANNED_SEEDS):
    """95% half-width of a paired mean over `seeds` seeds, given the pilot's
    paired differences (their sample standard deviation).

    >>> round(resolvable_half_width([0.1, 0.2, 0.15], seeds=6), 4)
    0.0525
    """
    if len(differences) < 2:
        return math.nan
    return reporting.t_half_width(reporting.mean_std(differences).std, seeds)


def _runs(results_dir, scale, run, seeds):
    return {s: reproduction.load_run(results_dir, scale, run, s) for s in seeds}


def _training_frames(scale, runs):
    """Training frames of a candidate: as its records counted them, else its
    scale's cap (None: every frame, not yet counted)."""
    return next((r["metrics"]["train_examples"] for r in runs.values()
                 if r and r["metrics"].get("train_examples")),
                reproduction.SCALES[scale]["max_train_examples"])


def _complete(candidate, seeds):
    """Whether a candidate's SD and standard runs have finished on every seed."""
    sd, standard = candidate["sd"], candidate["standard"]
    return bool(sd and standard and sd["seeds"] == len(seeds)
                and list(standard["seeds"]) == list(seeds))


def _least_unsaturated(candidates):
    """The pre-registered fallback: of the candidates whose SD runs converged,
    the one whose doubled standard training gained least (relative mean over
    seeds); None if none converged."""
    converged = [c for c in candidates
                 if c["sd"] and c["sd"]["converged"] and c["standard"]]
    return max(converged, key=lambda c: c["standard"]["relative"], default=None)


def summarize_pilot(results_dir, seeds, scale="pilot"):
    """The pilot's findings at `scale` (a name of `reproduction.SCALES`)
    from its records and those of its shorter candidates (`CANDIDATES`), as
    a JSON-ready dict; TAT's teachers and TAT - SD are those of `scale`."""
    if scale not in reproduction.SCALES:
        raise ValueError(f"Unknown scale {scale!r}: the scales are "
                         f"{sorted(reproduction.SCALES)}.")
    pilot = lambda run: _runs(results_dir, scale, run, seeds)  # noqa: E731
    chain = CANDIDATES.get(scale, (scale,))
    candidates = []
    for index, candidate in enumerate(chain):
        runs = lambda run, at=candidate: _runs(results_dir, at, run, seeds)  # noqa: E731
        doubled = (runs("standard-double") if candidate != "bench_small" else
                   _runs(results_dir, chain[index + 1], "standard", seeds))
        sd_runs = runs("sd")
        candidates.append(
            {"scale": candidate,
             "L": reproduction.SCALES[candidate]["epochs_per_generation"],
             "frames": _training_frames(candidate, sd_runs),
             "epochs": reproduction.total_epochs(reproduction.SCALES[candidate]),
             "sd": convergence([r for r in sd_runs.values() if r]),
             "standard": saturation(runs("standard"), doubled)})
    for candidate in candidates:
        candidate["holds"] = bool(candidate["sd"] and candidate["sd"]["converged"]
                                  and candidate["standard"]
                                  and candidate["standard"]["saturated"])
    tat = pilot("tat")
    sd = pilot("sd")
    tat_minus_sd = reporting.paired_difference(
        {s: r["metrics"]["test_error_cm"] for s, r in tat.items() if r},
        {s: r["metrics"]["test_error_cm"] for s, r in sd.items() if r})
    chosen = next((c for c in candidates if c["holds"]), None)
    fallback = None
    if chosen is None and scale in LAST_CANDIDATES and _complete(candidates[-1], seeds):
        fallback = _least_unsaturated(candidates)
    return {
        "scale": scale,
        "width_multiplier": reproduction.SCALES[scale]["width_multiplier"],
        "L": reproduction.SCALES[scale]["epochs_per_generation"],
        "candidates": candidates,
        "chosen_L": chosen["L"] if chosen else None,
        "chosen_scale": chosen["scale"] if chosen else None,
        "fallback_scale": fallback["scale"] if fallback else None,
        "teachers": teacher_use([r for r in tat.values() if r]),
        "tat_minus_sd": tat_minus_sd,
        "resolvable_half_width_cm": resolvable_half_width(tat_minus_sd.differences),
    }


def _percent(value):
    return reporting.MISSING if value is None or not math.isfinite(value) else \
        f"{100 * value:+.1f}%"


def earlier_share_words(share):
    """The share of taught epochs from an earlier teacher, in words.

    >>> earlier_share_words(0.41), earlier_share_words(math.nan)
    ('41%', 'not known (no taught epochs recorded)')
    """
    return (f"{100 * share:.0f}%" if math.isfinite(share)
            else "not known (no taught epochs recorded)")


def pilot_markdown(summary, commands):
    """The pilot's report (`pilot_report.md`)."""
    lines = [
        "# Pilot: where TAT's premise holds (pilot runs, not decision runs)", "",
        f"Scale `{summary['scale']}` (width multiplier "
        f"{summary['width_multiplier']:g}).", "",
        "Rules, fixed before the pilot ran (`tat_keras/pilot.py`): a "
        f"mini-generation of L epochs has converged when SD's mean relative gain "
        f"in validation error is at most {100 * MAX_GENERATION_GAIN:.0f}% for every "
        "mini-generation after the second; standard training at the same total "
        "epochs is saturated when doubling its epochs lowers its final validation "
        f"error by less than {100 * MIN_DOUBLING_GAIN:.0f}%, paired over seeds.", "",
        "| L | training frames | total epochs | SD seeds | SD validation error after each "
        "mini-generation (cm) | gain of mini-generation k over k-1 | converged | "
        "standard: validation error at E / 2E epochs (cm) | doubling, paired "
        "[95% interval] | saturated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in summary["candidates"]:
        sd, std = c["sd"], c["standard"]
        sd_cells = ([str(sd["seeds"]), ", ".join(f"{v:.3f}" for v in sd["val_error_cm"]),
                     ", ".join(_percent(-g) for g in sd["gains"]),
                     "yes" if sd["converged"] else "no"] if sd else
                    [reporting.MISSING] * 4)
        std_cells = ([f"{std['single_cm']:.3f} / {std['double_cm']:.3f} "
                      f"(seeds {std['seeds']})",
                      f"{reporting.format_interval(std['difference'].interval)} cm "
                      f"({_percent(std['relative'])})",
                      "yes" if std["saturated"] else "no"] if std else
                     [reporting.MISSING] * 3)
        frames = "all" if c["frames"] is None else f"{c['frames']:,}"
        lines.append("| " + " | ".join([str(c["L"]), frames, str(c["epochs"]), *sd_cells,
                                        *std_cells]) + " |")
    lines += ["", "Gains are shown as changes of the error (negative: lower).", ""]
    chosen = summary["chosen_L"]
    fallback = next((c for c in summary["candidates"]
                     if c["scale"] == summary.get("fallback_scale")), None)
    if chosen:
        lines.append(f"Regime where both hold: L = {chosen} (scale "
                     f"`{summary['chosen_scale']}`).")
    elif fallback:
        std = fallback["standard"]
        lines.append(
            "No candidate meets both rules, and the pilot stops here, as "
            "pre-registered. The decision runs go at the candidate whose SD "
            "runs converged and whose doubled standard training gained least: "
            f"scale `{fallback['scale']}` (L = {fallback['L']}). Standard "
            "training had not saturated there: doubling its epochs changed its "
            f"validation error by {_percent(std['relative'])} "
            f"({reporting.format_interval(std['difference'].interval)} cm).")
    else:
        lines.append("No candidate regime meets both rules yet.")
    teachers = summary["teachers"]
    if teachers:
        lines += ["", f"Teachers under the scale's threshold (TAT, L = {summary['L']}): "
                  "mean list "
                  "size drawn from in mini-generations 2-4 "
                  + ", ".join(f"{v:.2f}" for v in teachers["list_sizes"])
                  + f" (mean {teachers['mean_list_size']:.2f}); share of taught epochs "
                  f"from an earlier teacher {earlier_share_words(teachers['earlier_share'])}."]
    difference = summary["tat_minus_sd"]
    if difference.seeds:
        half_width = summary["resolvable_half_width_cm"]
        implied = (f"{half_width:.3f} cm" if not math.isnan(half_width)
                   else "not known until 2 seeds are paired")
        lines += ["", f"TAT − SD test error at L = {summary['L']}, paired over seeds "
                  f"{difference.seeds}: {reporting.format_interval(difference.interval)} "
                  f"cm; the 95% half-width this spread implies at {PLANNED_SEEDS} "
                  f"seeds: {implied}."]
    lines += ["", "## Commands", "", "```bash", *commands, "```", ""]
    return "\n".join(lines)


def write_pilot_report(results_dir, seeds, commands, scale="pilot"):
    """Writes the report and summary of the pilot at `scale` from the records:
    `pilot_report.md` and `pilot_summary.json` (scale `pilot`), else
    `{scale}_report.md` and `{scale}_summary.json`."""
    summary = summarize_pilot(results_dir, seeds, scale)
    with open(os.path.join(results_dir, f"{scale}_report.md"), "w") as f:
        f.write(pilot_markdown(summary, commands))
    reporting.write_json(os.path.join(results_dir, f"{scale}_summary.json"), summary)
    return summary
