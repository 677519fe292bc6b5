"""Grafana in a real browser (Debian's Chromium through Playwright), after the demo workload: every
dashboard renders every panel with data, and the links from a log line to its trace and from that
trace to its logs work. A screenshot of every dashboard is saved in $OBSLAB_SCREENSHOTS (default: a
temporary folder, printed)."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from grafana import DASHBOARDS

pytestmark = pytest.mark.official_images("grafana", "tempo", "loki")  # Grafana over all three

# As the machines here run Chromium: no sandbox as root, and no background calls to Google.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
PROBLEMS = ("No data", "Panel plugin not found")  # texts Grafana draws inside a panel


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("OBSLAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def page(lab, workload) -> Page:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: tools/bootstrap.sh --browser installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1300})
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        user, password = lab.grafana_auth
        page.goto(f"{lab.grafana}/login")
        page.get_by_label("Username input field").fill(user)
        page.get_by_label("Password input field").fill(password)
        page.get_by_label("Login button").click()
        page.wait_for_url(lambda url: "/login" not in url)
        yield page
        browser.close()


def _panel_problems(page: Page) -> dict[str, str]:
    """Panel title -> what is wrong with it ('' when it shows data): still loading, an error
    (the red status corner Grafana draws on a failed query), or one of PROBLEMS."""
    return page.evaluate("""(problems) => Object.fromEntries(
        [...document.querySelectorAll('[data-panelid]')].map((panel) => {
            const header = panel.querySelector('[data-testid^="data-testid Panel header"]');
            const title = header ? header.getAttribute('data-testid').replace('data-testid Panel header ', '') : '?';
            const loading = panel.querySelector('[aria-label="Panel loading bar"]');
            const error = panel.querySelector('[aria-label="Panel status"], [data-testid="data-testid Panel status error"]');
            const found = problems.find((p) => panel.innerText.includes(p));
            return [title, loading ? 'loading' : error ? 'query error' : found || ''];
        }))""", list(PROBLEMS))


@pytest.mark.parametrize("uid", DASHBOARDS, ids=[uid.removeprefix("obslab-") for uid in DASHBOARDS])
def test_dashboard_shows_every_panel_with_data(page, lab, screenshots, uid):
    page.goto(f"{lab.grafana}/d/{uid}?orgId=1")  # the dashboard's own time range
    panels = len(DASHBOARDS[uid]["panels"])
    deadline, problems = time.monotonic() + 90, {}
    while time.monotonic() < deadline:
        problems = _panel_problems(page)
        if len(problems) == panels and not any(problems.values()):
            break
        page.wait_for_timeout(1000)
    page.screenshot(path=str(screenshots / f"{uid.removeprefix('obslab-')}.png"), full_page=True)
    assert len(problems) == panels and not any(problems.values()), problems
    assert not page.errors, page.errors


def test_log_line_links_to_its_trace_and_the_trace_back_to_its_logs(page, lab, workload, screenshots):
    board = DASHBOARDS["obslab-service-overview"]
    logs_panel = next(p for p in board["panels"] if p["type"] == "logs")
    page.goto(f"{lab.grafana}/d/{board['uid']}?orgId=1&var-service={workload.agent}")
    logs = page.locator(f'[data-panelid="{logs_panel["id"]}"]')
    line = logs.get_by_text("request received").first
    line.wait_for(timeout=90_000)
    line.click()  # the log details: fields (trace_id, structured metadata), and the link derived from it
    expect(logs.get_by_text("View trace")).to_have_count(1)  # one trace link per line
    trace_id = re.search(r"\b[0-9a-f]{32}\b", logs.inner_text()).group(0)
    logs.get_by_text("View trace").click()
    page.wait_for_url(lambda url: "/explore" in url)
    expect(page.get_by_text(f"{workload.agent}: agent.iteration")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(trace_id).first).to_be_visible()
    page.get_by_test_id("SpanLinksMenu").first.click()
    page.get_by_text("Logs for this span").click()
    # The split pane runs the trace-to-logs query: the logs of this trace, and only those.
    expect(page.get_by_text("request received")).to_be_visible(timeout=60_000)
    editors = [re.sub(r"\s+", "", text) for text in page.locator(".monaco-editor .view-lines").all_inner_texts()]
    assert any(f'trace_id="{trace_id}"' in text and "service_name=" in text for text in editors), editors
    page.screenshot(path=str(screenshots / "trace-to-logs.png"))
    assert not page.errors, page.errors
