"""Decisions of the runs where TAT's premise holds (the sweep `premise`).

Pre-registered in `docs/results/README.md` ("Decision runs where TAT's
premise holds"), before any of its runs:

- **Which TAT row is TAT**: the first of `TAT_ROWS` (teacher threshold
  1.05, 1.10, every teacher kept) whose first `JUDGED_SEEDS` seeds show
  random knowledge distillation running: a teacher list of at least
  `MIN_LIST_SIZE` on average over mini-generations 2-4, and at least
  `MIN_EARLIER_SHARE` of taught epochs from an earlier teacher. If none
  does, TAT stays at 1.05 and the report says that none qualified.
- **TAT** and **DwO**: the protocol's own rules (`reproduction.decide_tat`,
  `reproduction.decide_dwo`), applied to the chosen row against standard
  and SD, and to standard + DwO against standard.

Every function reads the small records of finished runs, so this module
imports neither TensorFlow nor Keras.
"""

import os

from tat_keras import pilot
from tat_keras import reporting
from tat_keras import reproduction
from tat_keras.training.config import TrainConfig

TAT_ROWS = ("tat", "tat, teacher threshold 1.10", "tat, every teacher kept")
JUDGED_SEEDS = 4
MIN_LIST_SIZE = 2.0
MIN_EARLIER_SHARE = 0.25
PLANNED_SEEDS = 6


def _rows():
    return {row.name: row for row in reproduction.SWEEPS["premise"]}


def choose_tat_row(results_dir, scale, seeds):
    """The TAT row whose teachers run, by the pre-registered rule.

    Args:
        results_dir: str. Where the records are (`reproduction.record_dir`).
        scale: str. The scale of the runs.
        seeds: list of int. The suite's seeds; the first `JUDGED_SEEDS` judge.

    Returns:
        `(row, judged)`: the chosen row's name, or None while a row that
        must be judged lacks its seeds; and per judged row a dict of its
        `threshold`, `seeds`, `teachers` (`pilot.teacher_use`) and
        `qualifies`.
    """
    rows = _rows()
    judged_seeds = list(seeds)[:JUDGED_SEEDS]
    judged = []
    for name in TAT_ROWS:
        runs = [reproduction.load_run(results_dir, scale, rows[name].run, seed)
                for seed in judged_seeds]
        runs = [run for run in runs if run]
        use = pilot.teacher_use(runs)
        qualifies = bool(use and use["mean_list_size"] >= MIN_LIST_SIZE
                         and use["earlier_share"] >= MIN_EARLIER_SHARE)
        judged.append({
            "row": name, "seeds": len(runs), "teachers": use, "qualifies": qualifies,
            "threshold": rows[name].overrides.get(
                "teacher_threshold", TrainConfig.teacher_threshold)})
        if len(runs) < len(judged_seeds):
            return None, judged
        if qualifies:
            return name, judged
    return TAT_ROWS[0], judged


def _as_protocol_records(records, tat_row):
    """The premise records as Table 1's and Table 5's, so that the
    protocol's own decisions apply to them unchanged."""
    table1 = {tat_row: "tat", "standard": "standard", "sd": "sd"}
    table5 = {"standard": "baseline",
              "standard + dwo": reproduction.SUITES["table5"][1].name}
    mapped = []
    for record in records:
        if record["row"] in table1:
            mapped.append({**record, "table": "table1", "row": table1[record["row"]]})
        if record["row"] in table5:
            mapped.append({**record, "table": "table5", "row": table5[record["row"]]})
    return mapped


def _records(results_dir, scale, seeds):
    """The suite's plan and the records of its finished runs."""
    specs = reproduction.plan("premise", scale, seeds, results_dir)
    return specs, reproduction.collect(specs, results_dir, scale)


def decide(results_dir, scale, seeds):
    """The premise suite's decisions from its records, as a dict."""
    _, records = _records(results_dir, scale, seeds)
    return _decide(records, *choose_tat_row(results_dir, scale, seeds))


def _decide(records, tat_row, judged):
    """`decide` on the suite's records and `choose_tat_row`'s answer."""
    if tat_row is None:
        tat = (None, "TAT: undecided, its teacher threshold is not chosen yet (the "
               f"first {JUDGED_SEEDS} seeds of every row judged so far are needed).")
    else:
        tat = reproduction.decide_tat(_as_protocol_records(records, tat_row),
                                      PLANNED_SEEDS)
    dwo = reproduction.decide_dwo(_as_protocol_records(records, TAT_ROWS[0]),
                                  JUDGED_SEEDS)
    return {"tat_row": tat_row, "judged": judged, "tat": tat[0], "tat_sentence": tat[1],
            "dwo": dwo[0], "dwo_sentence": dwo[1] + _dwo_cost_sentence(records)}


def _dwo_cost_sentence(records):
    """DwO's error cost with its interval, relative to standard's mean error,
    and "not resolved" where the interval reaches past the allowed cost."""
    def errors(row):
        return {r["seed"]: r["test_error_cm"] for r in records if r["row"] == row}

    standard = errors("standard")
    error = reporting.paired_difference(errors("standard + dwo"), standard)
    if len(error.seeds) < 2:
        return ""
    baseline = reporting.mean_std([standard[seed] for seed in error.seeds])
    low, high = (100 * v / baseline.mean for v in (error.interval.low,
                                                    error.interval.high))
    resolved = high <= 100 * reproduction.MAX_ERROR_COST
    return (f" Error cost 95% interval {low:+.1f}% to {high:+.1f}%"
            + ("." if resolved else
               f": cost not resolved (it includes +{100 * reproduction.MAX_ERROR_COST:.0f}%)."))


def inside_the_runs(results_dir, scale, specs):
    """`reproduction.scheme_diagnostics` of every premise row over the seeds
    the suite plans for it (`specs`: `reproduction.plan("premise", ...)`):
    {row name: diagnostics or None}."""
    return {row.name: reproduction.scheme_diagnostics([
        reproduction.load_run(results_dir, scale, spec.run, spec.seed)
        for spec in specs if spec.row == row.name])
        for row in reproduction.SWEEPS["premise"]}


def decisions_markdown(decisions, scale, inside=None):
    """The decisions as Markdown (`{scale}_premise_decisions.md`), with
    what happens inside every row's runs (`inside`: `inside_the_runs`) and a
    link to the rows' table and its paired differences."""
    lines = [f"# Decisions where TAT's premise holds (scale `{scale}`)", "",
             "Which TAT row is TAT (pre-registered: the first whose random teachers "
             f"run, a list of at least {MIN_LIST_SIZE:g} over mini-generations 2-4 and "
             f"at least {100 * MIN_EARLIER_SHARE:.0f}% of taught epochs from an earlier "
             f"teacher, over its first {JUDGED_SEEDS} seeds):", ""]
    for row in decisions["judged"]:
        use = row["teachers"]
        measured = (f"mean list size {use['mean_list_size']:.2f}, share of taught "
                    f"epochs from an earlier teacher "
                    f"{pilot.earlier_share_words(use['earlier_share'])}" if use else
                    "no records yet" if not row["seeds"] else
                    "its runs have no mini-generations 2-4")
        threshold = "none" if row["threshold"] is None else row["threshold"]
        lines.append(f"- {row['row']} (threshold {threshold}): {measured}, "
                     f"seeds: {row['seeds']}; "
                     + ("qualifies." if row["qualifies"] else "does not qualify."))
    chosen = decisions["tat_row"]
    lines += ["", f"TAT is the row `{chosen}`." if chosen else
              "TAT's row is not chosen yet.", "",
              decisions["tat_sentence"], "", decisions["dwo_sentence"], ""]
    table = reproduction.file_prefix(scale) + "premise"
    lines += [f"Every row's errors over its seeds, and the paired differences of the "
              f"chain from SD to TAT and of DwO: [{table}.md]({table}.md) "
              f"([CSV]({table}.csv)).", ""]
    if inside:
        lines += [
            "Below, *earlier teacher* counts every taught mini-generation (2-5), "
            "while the rule above reads mini-generations 2-4 only, so the two "
            "shares differ.", ""]
        lines += reproduction.diagnostics_markdown(inside, "every row")
    return "\n".join(lines)


def write_decisions(results_dir, scale, seeds):
    """Writes the premise suite's report and returns its decisions (a dict).

    The report is `{scale}_premise_decisions.md` and `.json` (the decisions,
    and what happens inside every row's runs), beside the rows' table
    (`<prefix>premise.md` and `.csv`, `reproduction.file_prefix`) with the
    chain's paired differences. The protocol's own report at the scale is
    left alone.
    """
    specs, records = _records(results_dir, scale, seeds)
    decisions = _decide(records, *choose_tat_row(results_dir, scale, seeds))
    table = os.path.join(results_dir, reproduction.file_prefix(scale) + "premise")
    with open(table + ".md", "w") as f:
        f.write(reproduction.table_markdown("premise", records, scale))
    reporting.write_csv(table + ".csv", records, reproduction.CSV_COLUMNS)
    path = os.path.join(results_dir, f"{scale}_premise_decisions")
    with open(path + ".md", "w") as f:
        f.write(decisions_markdown(decisions, scale,
                                   inside_the_runs(results_dir, scale, specs)))
    reporting.write_json(path + ".json", decisions)
    return decisions

