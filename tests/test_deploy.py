"""The deployable stack as files: the compose file against the Compose specification, its services,
health checks, restart policies, volumes and published ports; the image's pins. (No Docker engine on
these machines: the stack itself is not started here.)"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_the_compose_file_follows_the_compose_specification():
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run([str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_service_is_healthchecked_restarted_and_published_on_loopback_only():
    found = services()
    assert set(found) == {"postgres", "mlflow", "ray-head", "ray-worker", "scheduler"}
    for name, service in found.items():
        assert service.get("healthcheck", {}).get("test"), name
        assert service.get("restart") == "unless-stopped", name
        for port in service.get("ports", []):
            assert str(port).startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
    assert "ports" not in found["postgres"]  # the database is reached inside the stack only


def test_secrets_come_from_env_and_state_lives_in_volumes():
    text = COMPOSE.read_text()
    found = services()
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text and "pip install" not in text
    assert any("/var/lib/postgresql/data" in v for v in found["postgres"]["volumes"])
    assert any("/mlartifacts" in v for v in found["mlflow"]["volumes"])
    assert "--serve-artifacts" in found["mlflow"]["command"]
    assert any(arg.startswith("--allowed-hosts=${MLFLOW_ALLOWED_HOSTS") for arg in found["mlflow"]["command"])
    devices = found["ray-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    example = (REPO / ".env.example").read_text()
    for variable in set(re.findall(r"\$\{([A-Z_]+)", text)):
        assert re.search(rf"^{variable}=", example, re.M), f"{variable} is not in .env.example"
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_the_image_bakes_in_pinned_dependencies():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile and "USER 1000" in dockerfile


def test_the_stack_refuses_to_start_on_the_example_secrets():
    """Compose's `${VAR:?message}` refuses an unset or empty variable: the example leaves both secrets empty, so
    a copied .env starts nothing until each is set (a shared example value would start a stack anyone can enter)."""
    text = COMPOSE.read_text()
    example = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    for secret in ("POSTGRES_PASSWORD", "RAY_AUTH_TOKEN"):
        assert example[secret] == "", f".env.example ships a value for {secret}"
        assert f"${{{secret}:?" in text, f"the compose file does not refuse an empty {secret}"


def test_make_test_installs_the_system_packages_before_any_test_or_says_why_it_cannot():
    """`make test` runs testbed/system_packages.sh before pytest; where it cannot install (not root, or no apt),
    it fails in one line naming the packages. (Here, as nobody, with a PATH where none of them is found.)"""
    import tempfile

    planned = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert planned.index("testbed/system_packages.sh") < planned.index("pytest")
    bare = Path(tempfile.mkdtemp(prefix="gprune-bare-path-", dir="/var/tmp"))  # nobody can read it
    try:
        bare.chmod(0o755)
        for tool in ("ls", "id"):  # what the script itself calls, without the packages' commands
            (bare / tool).symlink_to(shutil.which(tool))
        script = shutil.copy(REPO / "testbed" / "system_packages.sh", bare)  # a checkout may be private to root
        done = subprocess.run([shutil.which("runuser"), "-u", "nobody", "--", shutil.which("bash"), script],
                              env={"PATH": str(bare)}, capture_output=True, text=True)
    finally:
        shutil.rmtree(bare)
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert "the tests need chromium slurm-wlm munge (Debian packages); install them as root" in done.stderr
