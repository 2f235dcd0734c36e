"""Helpers shared by the browser tests: Chromium settings, screenshots, page actions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "screenshots"
AGENT_USER, AGENT_PASSWORD = "alice", "wonderland-42"


def expect(target: Any) -> Any:
    """Playwright's auto-waiting assertions (imported late: Playwright is optional)."""
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot for the docs and the closing note (benchmarks/results is gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def ask(page: Any, question: str) -> Any:
    """Type `question` in the widget and send it with Enter; returns the message box."""
    box = page.get_by_role("textbox", name="Message")
    box.fill(question)
    box.press("Enter")
    return box


def open_widget(page: Any, server: str) -> str:
    """Load the demo page, open the chat; returns the conversation id once there is one."""
    page.goto(f"{server}/widget-demo")
    page.get_by_role("button", name="Open support chat").click()
    expect(page.locator(".msg.bot").first).to_be_visible()  # the greeting
    page.wait_for_function("window.glmSupport.conversationId")
    return str(page.evaluate("window.glmSupport.conversationId"))


def console_login(page: Any, server: str) -> None:
    """Sign in to the console as the test agent."""
    page.goto(f"{server}/console")
    page.get_by_label("Username").fill(AGENT_USER)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("tab", name=re.compile(r"^Queue"))).to_be_visible()
