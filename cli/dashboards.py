"""Commands that read what sweeps logged: report (the paper's views of one sweep) and ui (MLflow's UI)."""


import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .commands import add_command


def cmd_report(args) -> int:
    from dashboards.report import build_report
    from sweep.reachability import check_tracking_store

    check_tracking_store(args.tracking_uri, must_exist=True)  # a reader would create an empty SQLite file
    out = Path(args.out or Path("reports") / args.experiment)
    files = build_report(args.experiment, args.tracking_uri, out, args.parent_run, log=not args.no_log)
    print(f"wrote {len(files)} files to {out}: {', '.join(f.name for f in files)}")
    if not args.no_log:
        print("and logged them on the sweep's parent run, under report/")
    return 0


def cmd_samples(args) -> int:
    from dashboards.runs import records_path
    from gprune.lmms_samples import samples_file, write_samples
    from gprune.record_files import iter_records, read_records
    from sweep.reachability import check_tracking_store

    check_tracking_store(args.tracking_uri, must_exist=True)  # a reader would create an empty SQLite file
    path = records_path(args.tracking_uri, args.run)
    for benchmark in dict.fromkeys(name for name, _ in iter_records(path, columns=[])):  # one at a time
        rows = read_records(path, [benchmark])[benchmark]
        print(f"wrote {write_samples(samples_file(args.out, benchmark), rows)}")
    return 0


def ui_link(host: str, port: int, experiment_id: str | None) -> str:
    """The MLflow UI's address; with an experiment, its runs table in the "machine learning" view (MLflow 3
    opens experiments on its GenAI overview otherwise)."""
    base = f"http://{host}:{port}/"
    return base + (f"#/experiments/{experiment_id}/runs?workflowType=machine_learning" if experiment_id else "")


def port_number(text: str) -> int:
    """An argparse type: a TCP port."""
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ValueError(f"cannot listen on {host}:{port} ({error.strerror}); pick another --port or --host") \
                from None


def cmd_ui(args) -> int:
    from mlflow.tracking import MlflowClient

    from sweep.reachability import check_tracking_store, shown

    check_tracking_store(args.tracking_uri, must_exist=True)  # a reader would create an empty SQLite file
    if not ipaddress.ip_address(socket.gethostbyname(args.host)).is_loopback:
        print(f"gprune: warning: the MLflow UI has no authentication: on {args.host} anyone who reaches port "
              f"{args.port} can read, change and delete every run; keep --host 127.0.0.1 (and an SSH tunnel), or "
              "put an authenticating proxy in front", file=sys.stderr, flush=True)
    check_port_free(args.host, args.port)
    experiment_id = None
    if args.experiment:
        experiment = MlflowClient(args.tracking_uri).get_experiment_by_name(args.experiment)
        if experiment is None:
            raise ValueError(f"no experiment {args.experiment!r} in {shown(args.tracking_uri)}")
        experiment_id = experiment.experiment_id
    print(f"MLflow UI on {shown(args.tracking_uri)}: {ui_link(args.host, args.port, experiment_id)}  (Ctrl-C stops it)",
          flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", args.tracking_uri, "--host", args.host,
               "--port", str(args.port), "--workers", "1"]  # one user: one worker starts faster on a small machine
    # mlflow ui starts uvicorn and job runners of its own: run them as one process group and stop the
    # whole group when this command stops (Ctrl-C or SIGTERM), so no server outlives it
    server = subprocess.Popen(command, start_new_session=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def register(commands) -> None:
    report = add_command(
        commands, "report", description="Reads the sweep's runs from MLflow; writes Markdown, HTML and PNG and "
                                        "logs them on the sweep's parent run (report/).")
    report.add_argument("--experiment", required=True, help="the sweep's name (its MLflow experiment)")
    report.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="the MLflow store the sweep logged to")
    report.add_argument("--out", help="folder to write (default: reports/EXPERIMENT)")
    report.add_argument("--parent-run", help="a sweep's parent run id (default: the experiment's newest sweep)")
    report.add_argument("--no-log", action="store_true", help="write the files only, log nothing to MLflow")
    report.set_defaults(func=cmd_report)

    samples = add_command(
        commands, "samples", description="The files lmms-eval's --log_samples writes, keyed by doc_id: pair a "
                                         "sweep's trial with an lmms-eval run (`python -m lmms_eval ... --baseline "
                                         "FILE`) or use one as a regression reference.")
    samples.add_argument("run", help="the MLflow run id of a sweep's trial or baseline (any run holding records.json)")
    samples.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="the MLflow store holding the run")
    samples.add_argument("--out", default=".", help="folder to write the files into")
    samples.set_defaults(func=cmd_samples)

    ui = add_command(commands, "ui")
    ui.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="the MLflow store to browse")
    ui.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0 opens it to the network)")
    ui.add_argument("--port", type=port_number, default=5000, help="the port to listen on")
    ui.add_argument("--experiment", help="print the link to this experiment's runs table")
    ui.set_defaults(func=cmd_ui)
