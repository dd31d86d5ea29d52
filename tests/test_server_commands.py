"""Each server's command is defined once (shared_model/serving/commands.py), and every place
that starts a server uses it: the Makefile, the image, compose, the manifests, the launcher."""

from __future__ import annotations

import ast
import json
import os
import shlex
import signal
import sys
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from benchmarks import servers
from shared_model.serving import commands

ROOT = Path(__file__).resolve().parent.parent
MODULE = commands.__name__
# How a container starts each server: the image's python, on its PATH.
IN_IMAGE = {name: ["python", "-m", MODULE, name] for name in commands.SERVERS}
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())


def make_recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text()
    return makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]


def dockerfile_cmd() -> list[str]:
    joined = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in joined.splitlines() if line.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))


def test_make_serve_targets_run_the_one_definition() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert f"\nSERVE := $(BIN)/python -m {MODULE}\n" in makefile
    # WORKERS reaches both apps alike: `WORKERS=2 make serve-flask` compares with serve-fastapi.
    assert make_recipe("serve-fastapi").endswith("\t$(SERVE) fastapi --workers $(WORKERS)")
    assert make_recipe("serve-flask").endswith("\t$(SERVE) flask --workers $(WORKERS)")
    assert make_recipe("serve-features").endswith("\t$(SERVE) features")
    # No server's flags are left in the Makefile to drift from the definition.
    assert "uvicorn" not in makefile and "gunicorn" not in makefile.replace("gunicorn.conf", "")


def test_the_image_compose_the_stack_and_the_manifests_run_the_one_definition() -> None:
    assert dockerfile_cmd() == IN_IMAGE["fastapi"]
    services = COMPOSE["services"]
    assert "command" not in services["fastapi"]  # the image's default command
    assert services["flask"]["command"] == IN_IMAGE["flask"]
    assert services["features"]["command"] == IN_IMAGE["features"]
    stack = yaml.safe_load((ROOT / "deploy" / "swarm" / "stack.yaml").read_text())["services"]
    assert "command" not in stack["fastapi"]
    assert stack["flask"]["command"] == IN_IMAGE["flask"]
    assert stack["features"]["command"] == IN_IMAGE["features"]
    for name in commands.SERVERS:
        manifest = (ROOT / "deploy" / "kubernetes" / f"{name}.yaml").read_text()
        deployment = next(d for d in yaml.safe_load_all(manifest) if d["kind"] == "Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == IN_IMAGE[name], name


def test_uvicorn_runs_with_the_lab_s_limits_on_host_and_port_from_the_environment() -> None:
    command = commands.lab_command("fastapi", {"HOST": "0.0.0.0", "FASTAPI_PORT": "8001"})
    assert command.argv[:4] == [sys.executable, "-m", "uvicorn", commands.FASTAPI_APP]
    assert " ".join(commands.UVICORN_LIMITS) in " ".join(command.argv)
    assert command.argv[-1] == "--no-access-log"  # the apps write their own access lines
    assert command.argv[command.argv.index("--host") + 1] == "0.0.0.0"
    assert command.argv[command.argv.index("--port") + 1] == "8001"
    assert command.env == {}


def test_several_uvicorn_workers_share_one_metrics_folder_unless_one_is_named() -> None:
    made = commands.lab_command("fastapi", {}, workers=2).env["PROMETHEUS_MULTIPROC_DIR"]
    assert Path(made).is_dir()
    Path(made).rmdir()
    named = {"PROMETHEUS_MULTIPROC_DIR": "/somewhere"}
    assert commands.lab_command("fastapi", named, workers=2).env == {}


def test_gunicorn_reads_the_flask_app_s_settings_file() -> None:
    argv = commands.lab_command("flask", {}).argv
    assert argv == [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        commands.GUNICORN_CONFIG,
        "flask_app.wsgi:app",
    ]
    assert (ROOT / commands.GUNICORN_CONFIG).is_file()
    assert "--workers" not in argv  # GUNICORN_WORKERS, read by the settings file, decides
    assert commands.lab_command("flask", {}, workers=2).argv[-3:-1] == ["--workers", "2"]


def test_the_printed_command_is_the_one_run() -> None:
    command = commands.Command(["python", "-m", "x", "a b"], {"ENV": "one two"})
    assert shlex.split(command.shown()) == ["ENV=one two", "python", "-m", "x", "a b"]


def test_the_launcher_s_servers_are_built_from_the_same_definition() -> None:
    port = servers.free_port()
    assert servers.fastapi_uvicorn(port).argv == commands.uvicorn(
        commands.FASTAPI_APP, "127.0.0.1", port
    )
    flask = servers.flask_gunicorn(port, workers=2).argv
    assert flask == commands.gunicorn(
        commands.FLASK_APP, servers.GUNICORN_BENCH_CONFIG, f"127.0.0.1:{port}", 2, "sync"
    )
    assert servers.feature_service(port).argv == commands.feature_service(port)


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_definition_imports_only_the_standard_library() -> None:
    # Low in the tree: it names the apps and the feature service, it never imports them.
    imports = imported_modules(ROOT / "shared_model" / "serving" / "commands.py")
    assert {name.split(".")[0] for name in imports} <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_server_layer_imports_neither_the_runner_nor_the_launcher() -> None:
    imports = imported_modules(ROOT / "benchmarks" / "servers.py")
    assert not {m for m in imports if m.startswith(("benchmarks.runner", "benchmarks.lab"))}


@pytest.mark.slow
def test_the_entry_point_prints_the_command_and_becomes_the_server(tmp_path: Path) -> None:
    port = servers.free_port()
    argv = [sys.executable, "-m", MODULE, "fastapi"]
    log = tmp_path / "server.log"
    spec = servers.ServerSpec("fastapi", argv, port, {"FASTAPI_PORT": str(port)})
    server = servers.start(spec, log=log)
    try:
        # exec, not a child: the process started is Uvicorn, so signals reach it directly.
        assert psutil.Process(server.pid).cmdline()[1:3] == ["-m", "uvicorn"]
        assert httpx.get(f"{server.url}/health").status_code == 200
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM)
    environ = {**os.environ, "FASTAPI_PORT": str(port)}
    shown = commands.lab_command("fastapi", environ).shown()
    assert log.read_text().splitlines()[0] == shown
