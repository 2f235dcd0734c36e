"""The human-agent console and the widget together, in headless Chromium, on the real bot."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from web_browser import (
    AGENT_PASSWORD,
    AGENT_USER,
    ask,
    console_login,
    expect,
    open_widget,
    screenshot,
)

pytestmark = pytest.mark.browser


def test_console_requires_sign_in(server: str, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{server}/console")
    expect(page.get_by_role("heading", name="Agent sign in")).to_be_visible()
    expect(page.get_by_role("tab", name=re.compile(r"^Queue"))).to_be_hidden()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    expect(page.get_by_role("tab", name=re.compile(r"^Queue"))).to_be_hidden()


def test_handoff_take_reply_release_in_real_time(server: str, new_page: Any) -> None:
    widget = new_page()
    conversation = open_widget(widget, server)
    ask(widget, "My parcel arrived damaged")
    expect(widget.locator(".msg.bot[data-source=model]")).to_have_count(1)
    widget.get_by_role("button", name="Talk to a human").click()
    status = widget.get_by_role("status")
    expect(status).to_have_text("Waiting for a human agent…")
    expect(widget.get_by_role("button", name="Talk to a human")).to_be_hidden()
    widget.evaluate("window.__sameDocument = true")  # gone if the page reloads

    console = new_page(viewport={"width": 1280, "height": 860})
    console_login(console, server)
    row = console.locator(f'#queue button[data-id="{conversation}"]')
    expect(row).to_contain_text("waiting")
    expect(row).to_contain_text("My parcel arrived damaged")
    wait = row.locator(".wait")
    expect(wait).to_have_text(re.compile(r"^\d+m \d\ds$"))
    first = wait.inner_text()
    expect(wait).not_to_have_text(first, timeout=3000)  # the wait time counts up live

    row.click()
    transcript = console.get_by_role("log", name="Transcript")
    expect(transcript).to_contain_text("My parcel arrived damaged")
    expect(transcript).to_contain_text("3 to 5 business days")
    expect(console.locator("#ticket")).to_contain_text("talk to a human")
    screenshot(console, "console-queue")
    console.get_by_role("button", name="Take").click()
    expect(row).to_contain_text("with agent")
    expect(status).to_have_text("Chatting with alice")  # pushed to the widget

    reply = "Sorry about that! I have sent a replacement, it ships today."
    box = console.get_by_role("textbox", name="Reply to the customer")
    box.fill(reply)
    box.press("Enter")
    expect(widget.locator(".msg.human")).to_contain_text(reply)
    assert widget.evaluate("window.__sameDocument") is True
    screenshot(widget, "widget-with-human")
    expect(transcript).to_contain_text(reply)

    # The customer answers while with the human: it reaches the console live, no bot answer.
    ask(widget, "Thank you, that is great")
    expect(transcript).to_contain_text("Thank you, that is great")
    assert widget.locator(".msg.bot[data-source=model]").count() == 1
    screenshot(console, "console")

    # With the panel closed, a reply badges the launcher.
    widget.keyboard.press("Escape")
    box.fill("Anything else I can do?")
    box.press("Enter")
    expect(widget.get_by_role("button", name="Open support chat (1 new message)")).to_be_visible()
    # The customer leaves; the agent writes; the customer comes back in a new tab (same
    # browser profile): the session resumes with the reply and the agent still there.
    transcript_before = widget.locator(".msg .text").all_inner_texts()
    widget.close()
    box.fill("Your tracking number is in your email.")
    box.press("Enter")
    expect(transcript).to_contain_text("Your tracking number is in your email.")
    widget = widget.context.new_page()
    widget.goto(f"{server}/widget-demo")
    widget.get_by_role("button", name=re.compile("^Open support chat")).click()
    status = widget.get_by_role("status")
    expect(status).to_have_text("Chatting with alice")
    expect(widget.locator(".msg.human").last).to_have_text(
        re.compile("Your tracking number is in your email.")
    )
    assert widget.locator(".msg .text").all_inner_texts() == [
        *transcript_before,
        "Your tracking number is in your email.",
    ]

    console.get_by_role("button", name="Return to bot").click()
    expect(status).to_have_text("Virtual assistant")
    expect(row).to_be_hidden()  # no longer in the human queue
    expect(widget.get_by_role("button", name="Talk to a human")).to_be_visible()
    ask(widget, "When does it arrive?")
    expect(widget.locator(".msg.bot[data-source=model]")).to_have_count(2)


def test_thumbs_down_reaches_the_review_queue_and_becomes_curated(
    server: str, new_page: Any
) -> None:
    widget = new_page()
    conversation = open_widget(widget, server)
    question = "Can I pay with a gift card?"
    ask(widget, question)
    answer = widget.locator(".msg.bot[data-source=model]")
    down = answer.get_by_role("button", name="Not helpful")
    down.click()
    expect(answer).to_contain_text("Thanks for your feedback.")
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(down).to_be_disabled()

    console = new_page()
    console_login(console, server)
    console.get_by_role("tab", name="Review queue").click()
    item = console.locator(f'#review-list li[data-conversation="{conversation}"]')
    expect(item).to_have_attribute("data-kind", "thumbs_down")
    expect(item).to_contain_text(question)
    expect(item).to_contain_text("3 to 5 business days")

    screenshot(console, "console-review")
    curated = "Yes: gift cards are accepted at checkout, together with any other payment method."
    item.get_by_role("button", name="Promote to curated answer").click()
    item.get_by_role("textbox", name="Answer").fill(curated)
    item.get_by_role("button", name="Save as curated answer").click()
    expect(item).to_be_hidden()  # promoted items leave the open queue
    console.get_by_role("tab", name="Curated answers").click()
    expect(console.locator("#curated-list")).to_contain_text(curated)

    # The same question now gets the approved answer, without a model call.
    ask(widget, question)
    expect(widget.locator(".msg.bot[data-source=curated]")).to_have_text(re.compile(curated))


def test_widget_reconnects_when_the_event_stream_fails(
    server: str, new_page: Any, request: pytest.FixtureRequest
) -> None:
    widget = new_page()
    conversation = open_widget(widget, server)
    widget.get_by_role("button", name="Talk to a human").click()
    expect(widget.get_by_role("status")).to_have_text("Waiting for a human agent…")
    agent = httpx.Client(base_url=server, timeout=10)
    request.addfinalizer(agent.close)
    token = agent.post(
        "/v1/console/login", json={"username": AGENT_USER, "password": AGENT_PASSWORD}
    ).json()["token"]
    agent.headers["Authorization"] = f"Bearer {token}"
    assert agent.post(f"/v1/console/conversations/{conversation}/take").status_code == 200
    expect(widget.get_by_role("status")).to_have_text("Chatting with alice")

    # The event stream answers 503 (a proxy restarting): the browser's EventSource gives up,
    # the widget says so and keeps retrying on its own.
    failing = "**/v1/support/conversations/*/events?*"
    widget.route(failing, lambda route: route.fulfill(status=503, body="restarting"))
    widget.reload()
    launcher = widget.get_by_role("button", name="Open support chat", exact=True)
    expect(launcher).to_be_visible()  # what the reload showed again is not "new"
    launcher.click()
    expect(widget.get_by_role("status")).to_have_text("Reconnecting…")
    reply = "Found it: your parcel is at the depot."
    assert (
        agent.post(
            f"/v1/console/conversations/{conversation}/reply", json={"text": reply}
        ).status_code
        == 200
    )
    widget.unroute(failing)
    expect(widget.locator(".msg.human")).to_have_text(re.compile(reply), timeout=8000)
    expect(widget.get_by_role("status")).to_have_text("Chatting with alice")
    # The stream works again: the next reply arrives live.
    agent.post(f"/v1/console/conversations/{conversation}/reply", json={"text": "Anything else?"})
    expect(widget.locator(".msg.human").last).to_contain_text("Anything else?")


def test_console_curated_answers_and_summary(server: str, new_page: Any) -> None:
    console = new_page()
    console_login(console, server)
    console.get_by_role("tab", name="Curated answers").click()
    form = console.locator("#curated-form")
    form.get_by_label("Question").fill("What are your opening hours?")
    form.get_by_label("Answer").fill("We are open 9:00-18:00, Monday to Saturday.")
    form.get_by_label("Other ways to ask it").fill("When are you open?\nopening times")
    form.get_by_role("button", name="Save").click()
    item = console.locator("#curated-list li", has_text="What are your opening hours?")
    expect(item).to_contain_text("When are you open? · opening times")

    item.get_by_role("button", name="Edit answer to: What are your opening hours?").click()
    expect(form.get_by_label("Question")).to_be_focused()
    form.get_by_label("Answer").fill("We are open 9:00-20:00 every day.")
    form.get_by_role("button", name="Save").click()
    expect(item).to_contain_text("9:00-20:00 every day")
    expect(console.locator("#curated-list li", has_text="opening hours")).to_have_count(1)

    # The widget answers from the curated set at once.
    widget = new_page()
    open_widget(widget, server)
    ask(widget, "When are you open?")
    expect(widget.locator(".msg.bot[data-source=curated]")).to_contain_text("9:00-20:00")

    console.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name="Delete answer to: What are your opening hours?").click()
    expect(item).to_have_count(0)

    console.get_by_role("tab", name="Summary").click()
    conversations = console.locator("#summary div", has_text="conversations").first
    expect(conversations.locator("dd")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(console.locator("#summary")).to_contain_text("curated rate")


def test_closed_conversation_reopens_or_starts_over(
    server: str, new_page: Any, request: pytest.FixtureRequest
) -> None:
    widget = new_page()
    conversation = open_widget(widget, server)
    widget.get_by_role("button", name="Talk to a human").click()
    agent = httpx.Client(base_url=server, timeout=10)
    request.addfinalizer(agent.close)
    login = {"username": AGENT_USER, "password": AGENT_PASSWORD}
    agent.headers["Authorization"] = (
        "Bearer " + agent.post("/v1/console/login", json=login).json()["token"]
    )
    assert agent.post(f"/v1/console/conversations/{conversation}/close").status_code == 200
    status = widget.get_by_role("status")
    expect(status).to_have_text("This conversation is closed.")
    restart = widget.get_by_role("button", name="Start a new conversation")
    expect(restart).to_be_visible()

    # Writing again reopens the same conversation with the bot.
    ask(widget, "One more question")
    expect(status).to_have_text("Virtual assistant")
    expect(widget.locator(".msg.bot[data-source=model]")).to_contain_text("One more question")
    assert widget.evaluate("window.glmSupport.conversationId") == conversation
    expect(restart).to_be_hidden()

    agent.post(f"/v1/console/conversations/{conversation}/close")
    restart.click()
    widget.wait_for_function(f"window.glmSupport.conversationId !== {conversation!r}")
    expect(widget.locator(".msg")).to_have_count(1)  # just the new greeting
    expect(widget.get_by_role("textbox", name="Message")).to_be_focused()
