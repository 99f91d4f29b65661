"""Commands of the sweep service: sweep (Ray Tune + MLflow) and presets."""


from pathlib import Path

from sweep.presets import list_presets, preset_description

from .commands import add_command

CONFIRM_ABOVE = 1000  # trials a sweep may run without --yes


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def print_summary(outcome, printer=print) -> None:
    """The baseline, then the trials in parameter order (the Pareto set of retention against exact
    TFLOPs marked), with each benchmark's primary metric, so accuracy against pruning ratio reads
    down the table."""
    from dashboards.pareto import pareto_front
    from gprune.benchmarks import PRIMARY
    from gprune.measures import Combine, Measure
    from sweep.reachability import shown
    from sweep.tracking import FINISHED

    columns = (Measure.MEAN_RETENTION, Measure.ERROR_RATE, Measure.TFLOPS_EXACT, Measure.TFLOPS_FASTV,
                   Measure.SAMPLES_PER_S, Measure.SPEEDUP, Measure.PREFILL_LATENCY_MS, Measure.DECODE_MS_PER_TOKEN)

    nan = float("nan")
    trials = sorted(outcome.trials, key=lambda t: [_sort_key(t["params"].get(k)) for k in outcome.swept])
    standing = [t for t in trials if t["status"] in FINISHED]  # failed trials are listed, never on the front
    cost, gain = Measure.TFLOPS_EXACT, Measure.MEAN_RETENTION
    points = [(t["metrics"].get(cost, nan), t["metrics"].get(gain, nan)) for t in standing]
    front = [standing[i] for i in pareto_front([*points, (outcome.baseline.get(cost, nan), 1.0)])
             if i < len(standing)]
    scored = [(name, f"{name}.{metric}") for name, metric in PRIMARY.items() if f"{name}.{metric}" in outcome.baseline]
    widths = {measure: max(len(measure.label), 9) for measure in columns}
    header = ("".join(f"{k:>11}" for k in outcome.swept) + "".join(f"{name[:9]:>10}" for name, _ in scored)
              + "".join(f" {m.label:>{widths[m]}}" for m in columns) + "  status")
    printer(f"\nsweep {outcome.name}: {len(trials)} trials logged; per benchmark: "
            + ", ".join(f"{name} {key.split('.', 1)[1]}" for name, key in scored))
    printer(header)
    printer("-" * len(header))

    def row(label, m, status):
        printer(label + "".join(f"{m.get(key, nan):>10.3f}" for _, key in scored)
                + "".join(f" {measure.show(m.get(measure)):>{widths[measure]}}" for measure in columns)
                + f"  {status}")

    against = {m: 1.0 for m in columns if m.combine == Combine.AGAINST_BASELINE}  # 1 by definition
    row(f"{'unpruned baseline':>{11 * len(outcome.swept)}}", {**outcome.baseline, **against}, "baseline")
    for trial in trials:
        row("".join(f"{trial['params'].get(k, '-'):>11}" for k in outcome.swept), trial["metrics"],
            trial["status"] + ("  <- pareto" if any(trial is t for t in front) else ""))
    first = outcome.workers[0] if outcome.workers else {}
    printer(f"\nthroughput: {first.get('dtype')}, batch size {outcome.batch_size}, {first.get('decoding')}; compile "
            f"and warm-up before timing: {[round(w['warmup_seconds'], 1) for w in outcome.workers]} s; samples/s: the "
            "median batch's rate, the first batch left out (spread in MLflow: samples_per_s_spread); prefill ms per "
            "batch and decode ms per step (one token per row), means")
    printer(f"workers: {len(outcome.workers)} on {sorted({w['device'] for w in outcome.workers})}, weight loads "
            f"{[w['weight_loads'] + w.get('restarted', False) for w in outcome.workers]} (a restarted worker loads "
            "again), images through the vision tower "
            f"{[w['images_encoded'] for w in outcome.workers]}")
    printer("retention: each benchmark's primary metric over the same-run unpruned baseline, averaged (NaN where "
            "the baseline scored 0); speedup: samples/s over the baseline's, on the same workers; pareto: no other "
            "trial (nor the baseline) has both higher retention and fewer exact TFLOPs")
    if outcome.interrupted:
        printer(f"INTERRUPTED: finished trials are logged; continue with `gprune sweep --resume {outcome.name}`")
    printer(f"MLflow: experiment {outcome.name!r}, parent run {outcome.parent_run_id}. Browse it with:\n"
            f"  gprune ui --tracking-uri {shown(outcome.tracking_uri)} --experiment {outcome.name}")


def cmd_sweep(args) -> int:
    from sweep.spec import grid_size, load_spec, preset_path

    if sum(x is not None for x in (args.file, args.preset, args.resume)) != 1:
        raise ValueError("give exactly one of SWEEP.yaml, --preset NAME or --resume NAME")
    if args.resume:
        from sweep.runner import load_saved_spec

        if args.tracking_uri:
            raise ValueError("--resume logs to the tracking store the sweep started with; drop --tracking-uri")
        spec = load_saved_spec(args.resume, args.storage or ".sweeps")
    else:
        spec = load_spec(args.file or preset_path(args.preset))  # every problem, before Ray starts
        spec = spec.with_changes(storage=args.storage or spec.storage)
        trials = grid_size(spec) if spec.search.algorithm == "grid" else spec.search.num_samples
        if trials > CONFIRM_ABOVE and not args.yes:
            raise ValueError(f"this sweep runs {trials:,} trials (over {CONFIRM_ABOVE:,}); pass --yes to run them, "
                             "or shrink search_space")
    from sweep.runner import run_sweep

    outcome = run_sweep(spec, tracking_uri=args.tracking_uri, address=args.address, resume=bool(args.resume))
    print_summary(outcome)
    if outcome.trials and not outcome.interrupted:  # (an interrupted sweep's report: `gprune report`)
        from dashboards.report import build_report

        out = Path(outcome.experiment_path) / "report"
        try:
            build_report(outcome.name, outcome.tracking_uri, out, outcome.parent_run_id)
            print(f"report: {out / 'report.html'} (also on the parent run in MLflow, under report/)")
        except OSError as error:  # the sweep is whole in MLflow; only its report could not be written here
            print(f"report: not written to {out} ({error.strerror}); `gprune report --experiment {outcome.name}` "
                  "writes it from MLflow later")
    return 130 if outcome.interrupted else 0


def cmd_presets(args) -> int:
    for name in list_presets():
        print(f"{name}: {preset_description(name)}")
    print("\nrun one with: gprune sweep --preset NAME")
    return 0


def cmd_doctor(args) -> int:
    from sweep.doctor import diagnose
    from sweep.spec import Tracking

    findings = diagnose(args.address, args.tracking_uri or Tracking().uri)
    for finding in findings:
        print(("ok   " if finding.ok else "FIX  ") + finding.line)
    return 0 if all(f.ok for f in findings) else 1


def register(commands) -> None:
    sweep = add_command(commands, "sweep", description="Give exactly one of SWEEP.yaml, --preset or --resume.")
    sweep.add_argument("file", nargs="?", help="a sweep YAML file (keys: README 'Sweeps')")
    sweep.add_argument("--preset", help=f"an embedded sweep: {', '.join(list_presets())} (see `gprune presets`)")
    sweep.add_argument("--resume", metavar="NAME", help="continue the interrupted sweep NAME")
    sweep.add_argument("--tracking-uri", help="overrides the file's tracking.uri: sqlite:///FILE, "
                                              "postgresql+psycopg://..., http(s)://...")
    sweep.add_argument("--address", help="an existing Ray cluster (auto, or HEAD_IP:6379); default: start one")
    sweep.add_argument("--storage", help="where Ray Tune keeps sweep state for --resume (default: the file's "
                                         "storage, .sweeps)")
    sweep.add_argument("--yes", action="store_true", help=f"run sweeps of over {CONFIRM_ABOVE:,} trials")
    sweep.set_defaults(func=cmd_sweep)

    presets = add_command(commands, "presets")
    presets.set_defaults(func=cmd_presets)

    doctor = add_command(commands, "doctor", description="Exit 0 when everything a sweep needs answers, 1 when "
                                                          "something needs fixing (each FIX line says what).")
    doctor.add_argument("--address", help="the Ray cluster a sweep would join (HEAD:6379); default: a private one")
    doctor.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    doctor.set_defaults(func=cmd_doctor)

