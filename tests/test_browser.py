"""The MLflow UI as a user sees it, in a real headless Chromium (Debian's, driven by Playwright): after a sweep,
`gprune ui`'s link opens the runs table with the trials nested under the sweep's run, and the report opens
inside the UI with every figure loaded. Screenshots go to test-artifacts/browser/ (or $GPRUNE_TEST_ARTIFACTS)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import start_gprune_ui
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium on a machine with no internet: no background connections, no sandbox as root
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, fixtures_dir):
    """A two-trial sweep, run as a user runs it: the CLI, its own Ray cluster, a SQLite store."""
    root = tmp_path_factory.mktemp("browse")
    sweep_file = root / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "name": "browse", "model": "tiny", "benchmarks": ["pope", "textvqa"], "limit": 3,
        "data_dir": str(fixtures_dir), "batch_size": 3, "max_new_tokens": 4, "concurrency": 1,
        "search_space": {"method": ["gprune", "random"], "ratio": 0.7}, "workers": {"cpus_per_worker": 1}}))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-m", "cli.main", "sweep", str(sweep_file), "--tracking-uri", uri],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return uri


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "headless Chromium is missing: `make test` installs it (testbed/system_packages.sh)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def screenshots() -> Path:
    folder = Path(os.environ.get("GPRUNE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def close_assistant(page) -> None:
    """MLflow's chat panel opens beside every page; closed, the screenshots show the table and the report."""
    close = page.locator("button[data-component-id='mlflow.assistant.chat_panel.close']")
    if close.count():
        close.first.click()


def test_the_ui_shows_the_runs_nested_and_the_report_with_its_figures(swept, browser, servers):
    free_port, wait_until_healthy = servers
    client = MlflowClient(swept)
    experiment = client.get_experiment_by_name("browse")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("gprune.role") == "parent")
    children = sorted(r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId"))
    assert children == ["baseline", "gprune", "random"]  # named by what the trials vary in

    port = free_port()
    ui = start_gprune_ui(swept, port, "browse")
    try:
        link = ui.stdout.readline().split(": ", 1)[1].split()[0]
        wait_until_healthy(f"http://127.0.0.1:{port}/health", ui, "the UI")
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(link)
        parent_link = page.get_by_role("link", name="browse", exact=True).first
        parent_link.wait_for(timeout=120_000)
        close_assistant(page)
        for name in children:  # nested: hidden until the sweep's row is expanded
            assert page.get_by_role("link", name=name, exact=True).count() == 0
        row = page.locator("[role=row]").filter(has=parent_link).first
        row.locator("button[data-component-id*='runnamecellrenderer']").click()
        for name in children:
            page.get_by_role("link", name=name, exact=True).first.wait_for(timeout=30_000)
        page.get_by_text("pope (", exact=False).first.wait_for(timeout=30_000)  # the Dataset column
        page.screenshot(path=screenshots() / "runs-table.png")

        page.goto(f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs/{parent.info.run_id}"
                  "/artifacts/report/report.html")
        report = page.frame_locator("iframe").first
        report.get_by_role("heading", name="Sweep report: browse").wait_for(timeout=60_000)
        close_assistant(page)
        images = report.locator("img")
        assert images.count() >= 3 + 4 + 4  # Figure 3 (two benchmarks, retention), Figures 5 and 6
        for i in range(images.count()):  # each figure really drawn, not a broken link
            assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), i
        page.screenshot(path=screenshots() / "report.png")
    finally:
        ui.terminate()
        ui.wait(timeout=30)
