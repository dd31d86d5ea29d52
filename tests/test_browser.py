"""The pages students use, in a real browser: each app's /docs and /redoc, and the Locust web UI.

Playwright drives the system's Chromium (Debian's `chromium` package); nothing here downloads a
browser. Without Chromium these tests skip and say how to install it; with CI=true they fail.
Screenshots go to a temporary folder, or to LAB_SCREENSHOTS (`make screenshots`: docs/images).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from benchmarks import servers
from fastapi_app.app import TITLE as FASTAPI_TITLE
from flask_app.app import TITLE as FLASK_TITLE
from shared_model.schemas import EXAMPLE_PATIENT

pytestmark = [pytest.mark.slow, pytest.mark.browser]

APPS = ("flask", "fastapi")
TITLES = {"flask": FLASK_TITLE, "fastapi": FASTAPI_TITLE}
LAUNCHERS: dict[str, Callable[[int, dict[str, str]], servers.ServerSpec]] = {
    "flask": lambda port, env: servers.flask_gunicorn(port, workers=1, extra_env=env),
    "fastapi": lambda port, env: servers.fastapi_uvicorn(port, extra_env=env),
}
LOCUSTFILE = servers.ROOT / "benchmarks" / "locustfile.py"
# `make run`'s ports when free, so the docs' screenshots show the URLs a student sees.
LAB_PORTS = {"fastapi": 8000, "flask": 5001, "locust": 8089}

INSTALL_HINT = (
    "Chromium was not found, so the browser tests did not run. Install it (Debian or Ubuntu: "
    "`sudo apt-get install chromium`) or set CHROMIUM to a Chromium or Chrome executable."
)
# Root in a container (--no-sandbox), no calls home, and no host name resolves: a CDN fetch fails.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
# Chromium refuses what the page's CSP forbids; Playwright reports it, failed for this reason.
REFUSED_BY_POLICY = {"csp", "net::ERR_BLOCKED_BY_CSP"}


def find_chromium() -> str | None:
    """CHROMIUM if set, else `chromium` on PATH (Debian's package installs /usr/bin/chromium)."""
    return shutil.which(os.environ.get("CHROMIUM") or "chromium")


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def port_for(name: str) -> int:
    if os.environ.get("LAB_SCREENSHOTS") and servers.port_is_free(LAB_PORTS[name]):
        return LAB_PORTS[name]
    return servers.free_port()


# Module scope: Playwright's open sync API holds an asyncio loop that breaks asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        looked_for = os.environ.get("CHROMIUM") or "chromium on PATH"
        message = f"{INSTALL_HINT} (Looked for: {looked_for}.)"
        if on_ci():
            pytest.fail(f"{message} CI=true, so a missing browser fails.", pytrace=False)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if folder := os.environ.get("LAB_SCREENSHOTS"):
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def lab(
    browser: Browser, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, servers.RunningServer]]:
    """Both apps on their production servers; set up after the browser, so that a machine
    without Chromium starts no server."""
    env = {"MODEL_PATH": str(model_dir / "model.pkl")}
    logs = tmp_path_factory.mktemp("server-logs")
    specs = {name: launch(port_for(name), env) for name, launch in LAUNCHERS.items()}
    with servers.all_running(specs, logs) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)  # a slow page fails in seconds, not in minutes
    yield context.new_page()
    context.close()


class Traffic:
    """Every request a page makes and every script error it throws, from Playwright's events."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[Request] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def off_machine(self, settle: bool = True) -> list[str]:
        """Requests to any host but 127.0.0.1, except those the browser refused to send."""
        if settle:
            self.page.wait_for_load_state("networkidle")  # every request finished or failed
        return [f"{r.url} ({r.failure or 'sent'})" for r in self.requests if leaves_machine(r)]


def leaves_machine(request: Request) -> bool:
    url = urlsplit(request.url)
    if url.scheme not in {"http", "https", "ws", "wss"} or url.hostname == "127.0.0.1":
        return False  # blob: and data: URLs, and this machine's servers
    return request.failure not in REFUSED_BY_POLICY


@pytest.fixture
def traffic(page: Page) -> Iterator[Traffic]:
    watched = Traffic(page)
    yield watched
    # Printed with a failing test's output: a blank docs page is most often a CDN out of reach.
    if off := watched.off_machine(settle=False):
        print("Requests to other hosts:", *off, sep="\n  ")


@pytest.mark.parametrize("app", APPS)
def test_swagger_ui_try_it_out_shows_the_prediction_offline(
    app: str,
    lab: dict[str, servers.RunningServer],
    page: Page,
    traffic: Traffic,
    screenshots: Path,
) -> None:
    server = lab[app]
    page.goto(f"{server.url}/docs")
    predict = page.locator(".opblock-post").filter(has=page.locator('[data-path="/predict"]'))
    expect(predict).to_be_visible()
    page.screenshot(path=screenshots / f"{app}-docs.png")

    predict.locator(".opblock-summary").click()
    predict.get_by_role("button", name="Try it out").click()
    example = predict.locator("textarea.body-param__text").input_value()
    assert json.loads(example) == EXAMPLE_PATIENT  # the schema's example, pre-filled
    predict.get_by_role("button", name="Execute").click()

    response = predict.locator(".live-responses-table .response")
    expect(response.locator(".response-col_status")).to_have_text("200")
    shown = json.loads(response.locator(".microlight").first.inner_text())
    assert shown == httpx.post(f"{server.url}/predict", json=EXAMPLE_PATIENT).json()
    response.evaluate("row => row.scrollIntoView({block: 'center'})")
    page.screenshot(path=screenshots / f"{app}-docs-try-it-out.png")

    assert traffic.off_machine() == []
    assert traffic.errors == []


@pytest.mark.parametrize("app", APPS)
def test_redoc_renders_the_api_offline(
    app: str,
    lab: dict[str, servers.RunningServer],
    page: Page,
    traffic: Traffic,
    screenshots: Path,
) -> None:
    page.goto(f"{lab[app].url}/redoc")
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLES[app])
    page.screenshot(path=screenshots / f"{app}-redoc.png")

    assert traffic.off_machine() == []
    assert traffic.errors == []


def aggregated_stats(page: Page) -> dict[str, str]:
    """The Locust statistics table's Aggregated row by column; empty until the first update."""
    row = page.get_by_role("row").filter(has_text="Aggregated")
    if row.count() != 1:
        return {}
    headers = page.get_by_role("columnheader").all_inner_texts()
    return dict(zip(headers, row.get_by_role("cell").all_inner_texts(), strict=False))


def wait_for_stats(page: Page, ready: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while not ((stats := aggregated_stats(page)) and ready(stats)):
        assert time.monotonic() < deadline, f"Locust's statistics never got there: {stats}"
        page.wait_for_timeout(250)
    return stats


@pytest.fixture
def locust_ui(
    lab: dict[str, servers.RunningServer], tmp_path: Path
) -> Iterator[servers.RunningServer]:
    """The Locust web UI for benchmarks/locustfile.py, aimed at the FastAPI app."""
    if not LOCUSTFILE.exists():
        message = "benchmarks/locustfile.py does not exist yet; the Locust UI test needs it"
        if on_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    port = port_for("locust")
    # As a student starts it: no class named, so the start form's default scenario runs.
    argv = [servers.PYTHON, "-m", "locust", "-f", str(LOCUSTFILE), "--web-host", "127.0.0.1",
            "--web-port", str(port), "--host", lab["fastapi"].url]  # fmt: skip
    locust = servers.start(
        servers.ServerSpec("locust", argv, port, ready_path="/"), log=tmp_path / "locust.log"
    )
    yield locust
    locust.stop()


def test_locust_web_ui_runs_a_swarm_without_failures(
    lab: dict[str, servers.RunningServer],
    locust_ui: servers.RunningServer,
    page: Page,
    traffic: Traffic,
    screenshots: Path,
) -> None:
    page.goto(locust_ui.url)
    expect(page.get_by_label("Host")).to_have_value(lab["fastapi"].url)
    page.get_by_label("Number of users").fill("2")
    page.get_by_label("Ramp up").fill("2")
    # The scenario field, under Custom parameters: single predictions unless you pick another.
    page.get_by_text("Custom parameters").click()
    expect(page.locator("select[name=scenario]")).to_have_value("single")
    page.locator(".MuiCollapse-entered").first.wait_for()  # unfolded, for the screenshot
    page.screenshot(path=screenshots / "locust-start.png", full_page=True)
    page.get_by_role("button", name="Start").click()

    # Locust's current RPS leaves 0 only after a few seconds of traffic: a truthful screenshot.
    stats = wait_for_stats(page, lambda row: float(row.get("Current RPS") or 0) > 0)
    page.screenshot(path=screenshots / "locust-running.png")
    assert int(stats["# Requests"]) > 0
    assert stats["# Fails"] == "0"

    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile(r"^stopped$", re.IGNORECASE))).to_be_visible()
    report = httpx.get(f"{locust_ui.url}/stats/requests").json()
    assert report["state"] == "stopped"
    assert report["fail_ratio"] == 0
    # One scenario by default: single predictions, nothing else mixed into the number.
    assert {row["name"] for row in report["stats"]} == {"/predict", "Aggregated"}

    assert traffic.off_machine() == []
    assert traffic.errors == []
