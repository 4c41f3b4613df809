"""The retraining page in a real headless browser, against a real Airflow api-server.

``ui_stack`` (module scope) seeds an events schema with a realistic history (:mod:`.seed`) and starts
:class:`tests.scheduler.conftest.AirflowStack` with the REST API and UI (``api_apps="all"``), this
repository's ``plugins/`` and two simple-auth-manager users (``admin``, ``viewer``). ``browser`` is
Debian's chromium driven by Playwright (its own browser download is never used: there is no network at
run time). Without chromium the tests skip with a message locally and **fail under CI** (``CI=true``):
``.ci/run`` installs it. Screenshots go to ``$RETRAINING_TEST_ARTIFACTS`` (default ``tests/browser/.artifacts/``, ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.scheduler.conftest import (
    AirflowStack,
    pytest_runtest_makereport,  # noqa: F401  (stack logs in a failing report)
    pytest_terminal_summary,  # noqa: F401  (timings)
    timing,
)
from tests.support import REPO, isolated_schema

from . import seed

ARTIFACTS_ENV = "RETRAINING_TEST_ARTIFACTS"
CHROMIUM_ENV = "RETRAINING_CHROMIUM"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
USERS = {"admin": "admin", "viewer": "viewer"}


def chromium_path() -> str | None:
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured
    return next((found for name in CHROMIUM_CANDIDATES if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        message = ("no chromium found (tried " + ", ".join(CHROMIUM_CANDIDATES) + f", ${CHROMIUM_ENV}): "
                   "install it with `apt-get install -y chromium` (.ci/run does)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; under CI the browser tests must run", pytrace=False)
        pytest.skip(message)
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed: `make install` (requirements-dev.txt pins it)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get(ARTIFACTS_ENV) or REPO / "tests" / "browser" / ".artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class UIStack:
    stack: AirflowStack
    seeded: seed.Seeded

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.stack.port}"

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        """A GET on the api-server (optionally with a bearer token): status and decoded JSON (or text)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def token(self, user: str) -> str:
        request = urllib.request.Request(
            self.url + "/auth/token", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"username": user, "password": USERS[user]}).encode())
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())["access_token"]


@pytest.fixture(scope="module")
def ui_stack(chromium: str, pg_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIStack]:
    root = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as mp, isolated_schema(pg_server, mp) as dsn:
        from include.retraining.record import champion_history, events

        mp.setattr(events, "_ready", set())
        mp.setattr(champion_history, "_ready", set())
        stack = AirflowStack(
            root / "stack", pg_server,
            {"AIRFLOW_CONN_RETRAINING_DB": os.environ["AIRFLOW_CONN_RETRAINING_DB"],
             "RETRAINING_HOME": str(root / "home")},
            api_apps="all",
            extra_env={
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{u}" for u in USERS),
                "RETRAINING_MLFLOW_UI_URL": "http://mlflow.example:5000",
            })
        # the passwords file the simple auth manager keeps: known passwords for both users
        stack.home.mkdir(parents=True, exist_ok=True)
        (stack.home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps(USERS) + "\n")
        try:
            stack.start()
            seeded = seed.seed(dsn, root / "reports")  # while Airflow starts
            stack.wait_ready()
            yield UIStack(stack=stack, seeded=seeded)
        finally:
            stack.stop()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        timing("chromium launched", time.monotonic() - started)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def admin_page(browser: Any, ui_stack: UIStack) -> Iterator[Any]:
    """A page logged in as ``admin`` through Airflow's login form."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    started = time.monotonic()
    page.goto(ui_stack.url + "/")
    page.wait_for_url("**/auth/login**")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", USERS["admin"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    timing("logged in through the form", time.monotonic() - started)
    try:
        yield page
    finally:
        context.close()
