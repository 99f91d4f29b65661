"""`gprune report`: the paper's views of one sweep, from its MLflow runs only.

Table 1 (benchmarks x configs with the unpruned baseline, the best per ratio and benchmark marked),
Figure 3 (each benchmark's metric and the mean retention against exact TFLOPs, Pareto front marked),
Table 3 (threshold x iterations heatmaps per method and ratio, when both were swept), Figures 5 and 6
(kept tokens and G-Prune's score maps on fixed samples: dashboards/kept_tokens.py) and, for every
trial, a paired bootstrap of each benchmark's primary metric (over its units: sweep/paired.py) against
the baseline and against random selection at the same ratio (when the sweep ran it). Written to a folder
(Markdown, HTML, PNG) and logged as artifacts under `report/` on the sweep's parent run, so the MLflow UI
shows it.
"""

import base64
import html
from pathlib import Path

import pandas as pd

from gprune.benchmarks import PRIMARY
from gprune.measures import COST, Combine, Measure
from sweep.paired import RESAMPLES, paired_difference
from sweep.reachability import shown
from sweep.run_logger import RunLogger
from sweep.tags import ROLE, TRIAL_STATUS, Role, tag_column

from .figures import accuracy_vs_flops, heatmap, label
from .kept_tokens import kept_token_figures
from .runs import Sweep, load_sweep

KEPT_NOTE = ("The first samples of each benchmark, for the best trial of each method and ratio: the visual tokens "
             "its model kept (dark patches were dropped; the grid's row-end newline tokens are always kept), and for "
             "G-Prune's best trial the degree-normalised score after each propagation step (step 0: the L2 norm).")


def table1(sweep: Sweep) -> pd.DataFrame:
    """Rows: the baseline, then each trial; the best trial per ratio and benchmark marked with *."""
    rows = [sweep.baseline, *[row for _, row in sweep.trials.sort_values(
        [f"params.{k}" for k in sweep.swept] or "run_id").iterrows()]]
    ratio = "params.ratio" if "ratio" in sweep.swept else None
    best = {}
    for benchmark in sweep.benchmarks:
        column = sweep.primary(benchmark)
        groups = sweep.trials.groupby(ratio) if ratio else [(None, sweep.trials)]
        for _, group in groups:
            if group[column].notna().any():  # ties are all marked
                best.setdefault(benchmark, set()).update(group.index[group[column] == group[column].max()])
    table = []
    for row in rows:
        baseline = row[tag_column(ROLE)] == Role.BASELINE
        entry = {k: ("unpruned" if baseline and k == "method" else row.get(f"params.{k}", "")) for k in sweep.swept}
        for benchmark in sweep.benchmarks:
            value = row[sweep.primary(benchmark)]
            marked = not baseline and row.name in best.get(benchmark, set())
            entry[benchmark] = "" if value != value else f"{value:.3f}{' *' if marked else ''}"
        for measure in COST:  # the baseline's retention and speedup are 1 by definition
            against = measure.combine == Combine.AGAINST_BASELINE
            entry[measure.label] = measure.show(1.0 if baseline and against else row.get(f"metrics.{measure}"))
        entry["status"] = row.get(tag_column(TRIAL_STATUS), "")
        table.append(entry)
    return pd.DataFrame(table)


def figure3(sweep: Sweep, out: Path) -> list[Path]:
    paths = [accuracy_vs_flops(sweep, sweep.primary(b), f"{b} {sweep.primary(b).split('.', 2)[2]}",
                               out / f"figure3-{b}.png") for b in sweep.benchmarks]
    paths.append(accuracy_vs_flops(sweep, f"metrics.{Measure.MEAN_RETENTION}", "mean retention",
                                   out / "figure3-retention.png"))
    return paths


def table3(sweep: Sweep, out: Path) -> tuple[list[pd.DataFrame], list[Path]]:
    """Mean retention over threshold x iterations, one heatmap per (method, ratio)."""
    if not {"threshold", "iterations"} <= set(sweep.swept):
        return [], []
    tables, paths = [], []
    trials = sweep.trials.copy()
    for key in ("threshold", "iterations"):
        trials[f"params.{key}"] = pd.to_numeric(trials[f"params.{key}"])
    fixed = [f"params.{k}" for k in ("method", "ratio") if f"params.{k}" in trials]
    for values, group in trials.groupby(fixed):
        values = values if isinstance(values, tuple) else (values,)
        pivot = group.pivot_table(index="params.threshold", columns="params.iterations",
                                  values=f"metrics.{Measure.MEAN_RETENTION}", aggfunc="mean")
        name = " ".join(f"{k.removeprefix('params.')}={v}" for k, v in zip(fixed, values))
        pivot.attrs["title"] = f"mean retention, {name}"
        tables.append(pivot)
        paths.append(heatmap(pivot, pivot.attrs["title"], out / f"table3-{'-'.join(map(str, values))}.png"))
    return tables, paths


def significance(sweep: Sweep) -> tuple[pd.DataFrame, list[str]]:
    """Every trial against the baseline, and against random selection at its ratio when the sweep has it; and
    a line for each run left out because it holds no records (a trial that failed before its first result)."""
    trials = sweep.trials
    runs = {sweep.baseline["run_id"]: "the baseline", **{t["run_id"]: f"trial {label(t, sweep.swept)} "
                                                          f"({t.get(tag_column(TRIAL_STATUS), '')})"
                                                          for _, t in trials.iterrows()}}
    without = [run_id for run_id in runs if sweep.logged_records(run_id) is None]
    left_out = [f"{runs[run_id]}, run {run_id}: no records, left out of the bootstrap" for run_id in without]
    pairs = []  # (trial, reference name, reference run id)
    for _, trial in trials.iterrows():
        references = [("unpruned", sweep.baseline["run_id"])]
        if "method" in sweep.swept and trial.get("params.method") != "random":
            same = trials[(trials["params.method"] == "random") & (trials["params.ratio"] == trial["params.ratio"])]
            references += [(f"random {trial['params.ratio']}", same.iloc[0]["run_id"])] if len(same) else []
        pairs += [(trial, reference, run_id) for reference, run_id in references
                  if trial["run_id"] not in without and run_id not in without]

    def scores(run_id: str, benchmark: str) -> list[dict]:  # what the bootstrap reads of a run's records
        return sweep.records(run_id, [benchmark], ["score", "results"]).get(benchmark, [])

    found = {}
    for b, benchmark in enumerate(sweep.benchmarks):  # a benchmark at a time: its references are read once for it
        for p, (trial, reference, run_id) in enumerate(pairs):
            d = paired_difference(benchmark, scores(trial["run_id"], benchmark), scores(run_id, benchmark))
            found[p, b] = ({"trial": label(trial, sweep.swept), "versus": reference, "benchmark": benchmark,
                         "metric": PRIMARY[benchmark], "units": f"{d.units} ({d.unit})",
                         "difference": round(d.difference, 4),
                         "95% CI": f"[{d.low:+.3f}, {d.high:+.3f}]", "real": "yes" if d.real else "no",
                         "flipped samples": ", ".join(map(str, d.flips[:20])) + (" ..." * (len(d.flips) > 20))})
    rows = [found[key] for key in sorted(found)]  # by trial, then benchmark
    return pd.DataFrame(rows), left_out


def _markdown(sweep, t1, heatmaps, boot, figures, heatmap_files, kept, left_out) -> str:
    parts = [f"# Sweep report: {sweep.name}", "",
             f"Parent run `{sweep.parent_id}` in {shown(sweep.tracking_uri)}. Retention: each benchmark's primary "
             "metric over the same-run unpruned baseline; TFLOPs: exact, 2 x multiply-adds of the whole model per "
             "sample; samples/s: processor + generate() wall time (see the runs' tags for device and dtype). "
             "`*`: the best trial at its ratio on that benchmark.", "", "## Table 1", "",
             t1.to_markdown(index=False, disable_numparse=True), "", "## Figure 3: accuracy against cost", ""]
    parts += [f"![{p.stem}]({p.name})" for p in figures]
    if heatmaps:
        parts += ["", "## Table 3: threshold x iterations", ""]
        for table, path in zip(heatmaps, heatmap_files):
            parts += [f"### {table.attrs['title']}", "", table.round(3).to_markdown(), "",
                      f"![{path.stem}]({path.name})"]
    if kept:
        parts += ["", "## Figures 5 and 6: kept tokens and G-Prune's scores on fixed samples", "", KEPT_NOTE, ""]
        parts += [f"![{p.stem}]({p.name})" for p in kept]
    parts += ["", "## Is it real? Paired bootstrap of each benchmark's primary metric", "",
              "Each resample draws the benchmark's units (a question; an MME image with its two questions; an MMBench "
              "item with its rotated copies) with replacement, the same for both runs, and recomputes the primary "
              "metric (POPE F1, the MME score, MMBench circular accuracy, ANLS, VQA accuracy, ...) for each; the "
              f"interval is of trial minus reference, {RESAMPLES:,} resamples, percentile; `real`: it excludes 0. "
              "Failed samples count as wrong, as in the metrics.",
              "", boot.to_markdown(index=False, disable_numparse=True) if len(boot) else "(no trials)"]
    parts += ["", *[f"- {line}" for line in left_out]] if left_out else []
    return "\n".join(parts) + "\n"


def _img(path: Path) -> str:
    """The figure inside the page: MLflow's artifact viewer shows HTML from a blob, where relative links break."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{path.stem}">'


def _html(sweep, t1, heatmaps, boot, figures, heatmap_files, kept, left_out) -> str:
    body = [f"<h1>Sweep report: {html.escape(sweep.name)}</h1>",
            f"<p>Parent run <code>{sweep.parent_id}</code>. * marks the best trial at its ratio per benchmark.</p>",
            "<h2>Table 1</h2>", t1.to_html(index=False), "<h2>Figure 3</h2>"]
    body += [_img(p) for p in figures]
    for table, path in zip(heatmaps, heatmap_files):
        body += [f"<h3>{html.escape(table.attrs['title'])}</h3>", table.round(3).to_html(), _img(path)]
    if kept:
        body += ["<h2>Figures 5 and 6: kept tokens and G-Prune's scores</h2>", f"<p>{html.escape(KEPT_NOTE)}</p>"]
        body += [_img(p) for p in kept]
    body += ["<h2>Is it real? Paired bootstrap</h2>", boot.to_html(index=False) if len(boot) else "<p>no trials</p>"]
    body += [f"<p>{html.escape(line)}</p>" for line in left_out]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(sweep.name) +
            "</title><style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:13px}"
            "td,th{border:1px solid #ccc;padding:3px 6px} img{max-width:48%;margin:4px}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def build_report(name: str, tracking_uri: str, out, parent_id: str | None = None, log: bool = True,
                 printer=print) -> list[Path]:
    """Write the report for sweep `name` to `out` (and log it on the parent run); returns the files. Runs left
    out for want of records are said through `printer` and in the report."""
    sweep = load_sweep(name, tracking_uri, parent_id)
    if sweep.trials.empty:
        raise ValueError(f"sweep {name!r} (parent run {sweep.parent_id}) has no trials to report on yet")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t1, figures = table1(sweep), figure3(sweep, out)
    heatmaps, heatmap_files = table3(sweep, out)
    boot, left_out = significance(sweep)
    for line in left_out:
        printer(f"report: {line}")
    kept = kept_token_figures(sweep, out)
    (out / "report.md").write_text(_markdown(sweep, t1, heatmaps, boot, figures, heatmap_files, kept, left_out))
    (out / "report.html").write_text(_html(sweep, t1, heatmaps, boot, figures, heatmap_files, kept, left_out))
    t1.to_csv(out / "table1.csv", index=False)
    boot.to_csv(out / "significance.csv", index=False)
    files = sorted(p for p in out.iterdir() if p.is_file())
    if log:
        RunLogger(tracking_uri, sweep.name).log_folder(sweep.parent_id, str(out), "report")
    return files
