"""`gprune regress` (a suite against its pinned reference; the exit code is the verdict) and `gprune schedule`."""

from .commands import add_command


def cmd_regress(args) -> int:
    from sweep.regress import load_suite, run_suite

    suite = load_suite(args.suite)
    if args.tracking_uri:
        suite = suite.with_changes(tracking__uri=args.tracking_uri)
    suite = suite.with_changes(compare_across=sorted({*suite.compare_across, *(args.across or [])}))
    if args.pin and args.lmms_eval_reference:
        raise ValueError("--pin records this run as the reference; --lmms-eval-reference compares with lmms-eval's: "
                         "give one")
    return int(run_suite(suite, pin=args.pin, lmms_eval_reference=args.lmms_eval_reference).verdict)


def register(commands) -> None:
    regress = add_command(
        commands, "regress", description="Runs a fixed set of configs on fixed samples and compares each "
                                         "benchmark's metric, sample by sample, with the pinned reference (README "
                                         "'Regression suites').")
    regress.add_argument("suite", help="the suite YAML")
    regress.add_argument("--pin", action="store_true", help="record this run as the reference")
    regress.add_argument("--across", nargs="+", choices=["code", "model"],
                         help="compare with a reference of another code revision or model (else: not comparable); "
                              "a suite's compare_across says the same")
    regress.add_argument("--tracking-uri", help="overrides the suite's tracking.uri")
    regress.add_argument("--lmms-eval-reference", nargs="+", metavar="FILE",
                         help="compare with lmms-eval's own samples files (its --log_samples output, one per "
                              "benchmark) instead of the pinned reference; the suite must have one config")
    regress.set_defaults(func=cmd_regress)
    register_schedule(commands)


def cmd_schedule(args) -> int:
    from sweep.schedule import schedule_suite

    try:
        schedule_suite(args.suite, args.cron)
    except KeyboardInterrupt:
        pass
    return 0


def register_schedule(commands) -> None:
    schedule = add_command(
        commands, "schedule", description="Runs never overlap; a crashed run is recorded and the schedule "
                                          "carries on; the next run time is printed after each run.")
    schedule.add_argument("suite", help="the suite YAML (pinned once with `gprune regress SUITE --pin`)")
    schedule.add_argument("--cron", required=True, help='five cron fields, e.g. "0 3 * * *" (03:00 every day)')
    schedule.set_defaults(func=cmd_schedule)
