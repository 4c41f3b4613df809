"""The retraining page through Airflow: nav entry (iframe), DAG tab, direct page, auth, task extra links.

Headless chromium (Debian's) via Playwright against a real api-server with this repository's plugins/;
the events database holds a realistic seeded history (:mod:`.seed`). Screenshots are test artifacts;
``RETRAINING_UPDATE_SCREENSHOT=1`` also writes the README's ``docs/img/retraining_page.png``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.scheduler.conftest import timing
from tests.support import REPO

from . import seed
from .conftest import UIStack

pytestmark = [pytest.mark.browser]
DOCS_SCREENSHOT = REPO / "docs" / "img" / "retraining_page.png"
MAX_SCREENSHOT_BYTES = 300_000


def save_small_png(png: bytes, path: Path) -> None:
    """A screenshot in a 256-colour palette (the page is flat colours): a third of the size, same look."""
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    image.save(path, format="PNG", optimize=True)


def check_page(root: Any, model: str, rows: int) -> None:
    """Rows, an expanded row's details and every chart are rendered in ``root`` (a page or a frame)."""
    root.locator("body[data-loaded=true]").wait_for()
    assert root.locator("#error").is_hidden(), root.locator("#error").inner_text()
    assert root.locator("#model").input_value() == model
    assert root.locator("[data-testid=event-row]").count() == rows
    assert root.locator("[data-testid=chart-timeline] circle[data-kind=decision]").count() == rows
    assert root.locator("[data-testid=chart-drift] circle[data-kind=drift-point]").count() > 0
    assert root.locator("[data-testid=chart-drift] polyline[data-kind=threshold]").count() == 1
    assert root.locator("[data-testid=chart-champions] [data-kind=champion-change]").count() >= 1
    assert root.locator("[data-testid=chart-gate] rect[data-kind=gate-failed]").count() >= 1


def expand(root: Any, text: str) -> Any:
    """Click the history row containing ``text``; the detail row under it, once loaded."""
    root.locator("[data-testid=event-row]", has_text=text).first.click()
    detail = root.locator("[data-testid=detail-body]").first
    detail.wait_for()
    return detail


def test_anonymous_requests_get_401_and_a_token_gets_the_rows(ui_stack: UIStack) -> None:
    for path in ("/retraining/", "/retraining/api/models", "/retraining/api/events?limit=5",
                 "/retraining/api/events/1", "/retraining/api/timeline", "/retraining/report/1",
                 f"/retraining/run?dag_id={seed.CREDIT_DAG}&run_id=x"):
        status, _ = ui_stack.get(path)
        assert status == 401, path
    token = ui_stack.token("viewer")
    status, body = ui_stack.get("/retraining/api/models", token)
    assert status == 200 and {m["model_name"] for m in body["models"]} == {seed.CREDIT, seed.LOAN}
    status, body = ui_stack.get("/retraining/api/events?trigger=often", token)
    assert status == 400 and "not a trigger type" in body["detail"]


def test_page_through_the_nav_entry_and_a_row_expanded(admin_page: Any, ui_stack: UIStack, artifacts: Path) -> None:
    started = time.monotonic()
    page = admin_page
    page.goto(ui_stack.url + "/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Model retraining").click()
    page.wait_for_url("**/plugin/model-retraining")
    frame = page.frame_locator("iframe[title='Model retraining']")
    check_page(frame, seed.CREDIT, rows=9)
    detail = expand(frame, "manual")  # the newest manual run: the gate rejected the simpler model
    assert "does not beat the champion" in detail.inner_text()
    criteria = detail.locator("[data-testid=gate-criteria]")
    assert criteria.locator("tr", has_text="improvement").locator(".b-fail").count() == 1
    assert detail.locator("[data-testid=detail-links] a", has_text="MLflow candidate run").get_attribute(
        "href") == "http://mlflow.example:5000/#/runs/0badc0de77"
    frame.locator("[data-testid=chart-timeline]").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "nav_iframe.png"), full_page=True)
    timing("page through the nav (iframe) checked", time.monotonic() - started)


def test_dag_tab_shows_that_dags_model(admin_page: Any, ui_stack: UIStack, artifacts: Path) -> None:
    page = admin_page
    page.goto(f"{ui_stack.url}/dags/{seed.LOAN_DAG}")
    tab = page.get_by_role("link", name="Retraining", exact=True).or_(
        page.get_by_role("tab", name="Retraining", exact=True)).first
    tab.click()
    page.wait_for_url(f"**/dags/{seed.LOAN_DAG}/plugin/retraining")
    frame = page.frame_locator("iframe[title='Retraining']")
    frame.locator("body[data-loaded=true]").wait_for()
    assert frame.locator("#model").input_value() == seed.LOAN
    assert frame.locator("[data-testid=event-row]").count() == 2
    detail = expand(frame, "data_drift")
    assert "regresses against the champion" in detail.inner_text()
    page.screenshot(path=str(artifacts / "dag_tab.png"))


def test_direct_page_filters_drift_report_and_screenshot(admin_page: Any, ui_stack: UIStack, artifacts: Path) -> None:
    started = time.monotonic()
    page = admin_page
    page.goto(f"{ui_stack.url}/retraining/?model={seed.CREDIT}")
    check_page(page, seed.CREDIT, rows=9)
    # the drift retraining's row: drifted features, the gate's pass, and its drift report
    detail = expand(page, "critical")
    drifted = detail.locator("[data-testid=drift-features] tr", has_text="drifted")
    assert drifted.count() == len(seed.DRIFTING)
    with page.expect_popup() as popup:
        detail.locator("[data-testid=drift-report-link]").click()
    report = popup.value
    report.wait_for_load_state()
    assert "Drift report: credit_risk" in report.content()
    report.close()
    # a filter narrows the table (and the charts); reset widens it again
    page.select_option("#filters select[name=decision]", "retrain")
    page.click("#filters button[type=submit]")
    page.locator("body[data-loaded=true]").wait_for()
    assert page.locator("[data-testid=event-row]").count() == 3
    assert page.locator("[data-testid=chart-timeline] circle[data-kind=decision]").count() == 3
    page.click("#reset-filters")
    page.locator("body[data-loaded=true]").wait_for()
    assert page.locator("[data-testid=event-row]").count() == 9
    # a feature picked in the drift chart redraws it: income was checked in 7 windows, drifted in 2
    page.select_option("#feature", "income")
    page.locator("body[data-loaded=true]").wait_for()
    assert page.locator("[data-testid=chart-drift] circle[data-kind=drift-point]").count() == 7
    assert page.locator("[data-testid=chart-drift] circle[fill='#e03131']").count() == 2
    page.select_option("#feature", "credit_score")
    page.locator("body[data-loaded=true]").wait_for()
    expand(page, "critical")
    page.locator("header").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "retraining_page.png"), full_page=True)
    if os.environ.get("RETRAINING_UPDATE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1360, "height": 900})
        save_small_png(page.screenshot(full_page=True, type="png"), DOCS_SCREENSHOT)
        assert DOCS_SCREENSHOT.stat().st_size < MAX_SCREENSHOT_BYTES, DOCS_SCREENSHOT.stat().st_size
    timing("direct page checked", time.monotonic() - started)


def test_task_extra_links_and_the_run_note(admin_page: Any, ui_stack: UIStack) -> None:
    """A run of model_retraining (the DAG paused, so it never starts) has the two buttons on its tasks; the
    decision button opens the page on that run's row; marking the run successful sets its note."""
    stack = ui_stack.stack
    stack.api("PATCH", f"/dags/{seed.CREDIT_DAG}", {"is_paused": True})
    run = stack.api("POST", f"/dags/{seed.CREDIT_DAG}/dagRuns", {"dag_run_id": "manual__ui_check",
                                                                  "logical_date": None})
    links = stack.api("GET", f"/dags/{seed.CREDIT_DAG}/dagRuns/{run['dag_run_id']}/taskInstances/decide/links")
    decision = links["extra_links"]["Retraining decision"]
    assert decision == f"/retraining/run?dag_id={seed.CREDIT_DAG}&run_id=manual__ui_check"
    assert links["extra_links"]["Drift report"] == decision + "&to=report"
    from include.retraining.record import events

    events.upsert_event(ui_stack.seeded.dsn, events.RunKey(seed.CREDIT, seed.CREDIT_DAG, "manual__ui_check"),
                        {"decision": "skip", "status": "skipped", "trigger_type": "none", "window_end": seed.T0,
                         "trigger_reason": "no drift: checked from the UI test"})
    # marked successful by a person: the plugin's listener writes the decision as the run's note
    stack.api("PATCH", f"/dags/{seed.CREDIT_DAG}/dagRuns/manual__ui_check", {"state": "success"})
    note = stack.api("GET", f"/dags/{seed.CREDIT_DAG}/dagRuns/manual__ui_check")["note"]
    assert note.startswith("**skip** (none) → **skipped**") and "checked from the UI test" in note
    assert f"[Retraining page]({decision})" in note
    page = admin_page
    page.goto(ui_stack.url + decision)
    page.locator("body[data-loaded=true]").wait_for()
    assert "event=" in page.url
    detail = page.locator("[data-testid=detail-body]").first
    detail.wait_for()
    assert "checked from the UI test" in detail.inner_text()
    # a run with no drift report: the report button lands on the page instead
    page.goto(ui_stack.url + links["extra_links"]["Drift report"])
    page.locator("body[data-loaded=true]").wait_for()
    assert "/retraining/?model=" in page.url and quote(seed.CREDIT) in page.url
