"""The Docker files keep the lab's promises, read without an engine: loopback ports, CPU limits."""

from __future__ import annotations

import importlib.util
import itertools
import json

import yaml

from benchmarks.servers import ROOT
from shared_model.serving import commands

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())


def dockerfile_instruction(keyword: str) -> str:
    """The last instruction with this keyword, its continuation lines joined."""
    joined = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line for line in joined.splitlines() if line.startswith(keyword + " ")]
    return lines[-1].removeprefix(keyword + " ").strip()


def test_the_image_s_default_command_is_the_fastapi_app_on_all_interfaces() -> None:
    command = json.loads(dockerfile_instruction("CMD"))
    assert command == ["python", "-m", commands.__name__, "fastapi"]
    # Inside a container loopback is the container's own: the image's HOST opens the server.
    assert "HOST=0.0.0.0" in dockerfile_instruction("ENV").split()


def test_the_image_runs_as_an_unprivileged_user_with_a_health_check() -> None:
    assert dockerfile_instruction("USER") == "lab"
    assert "HEALTH_URL" in dockerfile_instruction("HEALTHCHECK")


def test_every_compose_port_is_published_on_loopback_only() -> None:
    ports = [port for service in COMPOSE["services"].values() for port in service.get("ports", [])]
    assert ports
    assert all(port.startswith("127.0.0.1:") for port in ports), ports


def test_every_compose_service_has_a_cpu_limit() -> None:
    for name, service in COMPOSE["services"].items():
        assert float(service["deploy"]["resources"]["limits"]["cpus"]) > 0, name


def test_every_module_and_file_a_service_starts_exists() -> None:
    # A module or locustfile that moved would only show when a container failed to start.
    for name, service in COMPOSE["services"].items():
        command = service.get("command") or []
        for flag, value in itertools.pairwise(command):
            if flag == "-m":
                assert importlib.util.find_spec(value) is not None, (name, value)
            if flag == "-f":
                assert (ROOT / value).is_file(), (name, value)


def test_the_apps_publish_no_port_and_the_balancer_publishes_theirs() -> None:
    # `--scale fastapi=2` needs replicas that hold no host port: the balancer is the way in.
    services = COMPOSE["services"]
    for app in ("fastapi", "flask"):
        assert "ports" not in services[app], app
    published = [port.rsplit(":", 1)[1] for port in services["balancer"]["ports"]]
    assert {"8000", "5001"} <= set(published)


def test_the_balancer_checks_readiness_and_follows_docker_s_dns() -> None:
    config = (ROOT / "deploy" / "balancer" / "haproxy.cfg").read_text()
    assert "nameserver docker 127.0.0.11:53" in config
    for app, port in (("fastapi", 8000), ("flask", 5001)):
        backend = config.split(f"\nbackend {app}\n", 1)[1].split("\n\n", 1)[0]
        assert "option httpchk GET /v2/health/ready" in backend, app
        assert f" {app}:{port}" in backend and "server-template" in backend, app
        assert "resolvers docker" in backend, app


def test_locust_starts_on_the_balancer_s_fastapi_frontend() -> None:
    command = COMPOSE["services"]["locust-master"]["command"]
    assert command[command.index("--host") + 1] == "http://balancer:8000"


def test_the_balancer_is_installed_from_debian_s_packages() -> None:
    dockerfile = (ROOT / "deploy" / "balancer" / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends haproxy" in dockerfile
    assert COMPOSE["services"]["balancer"]["build"] == "deploy/balancer"


STACK = yaml.safe_load((ROOT / "deploy" / "swarm" / "stack.yaml").read_text())


def test_the_swarm_stack_runs_compose_s_services_and_images() -> None:
    services = STACK["services"]
    assert set(services) == set(COMPOSE["services"])
    for name, service in services.items():
        assert service["image"] == COMPOSE["services"][name]["image"], name
        assert service.get("command") == COMPOSE["services"][name].get("command"), name


def test_the_swarm_stack_resolves_tasks_by_dns_and_updates_apps_start_first() -> None:
    for name, service in STACK["services"].items():
        # A service's virtual IP would be a second balancer, and it does not route everywhere.
        assert service["deploy"]["endpoint_mode"] == "dnsrr", name
        assert float(service["deploy"]["resources"]["limits"]["cpus"]) > 0, name
    for app, port in (("fastapi", 8000), ("flask", 5001)):
        service = STACK["services"][app]
        assert service["deploy"]["replicas"] > 1, app
        assert service["deploy"]["update_config"]["order"] == "start-first", app
        # Healthy means ready, so an update stops an old task only once the new one answers.
        ready = f"http://127.0.0.1:{port}/v2/health/ready"
        assert service["environment"]["HEALTH_URL"] == ready, app
