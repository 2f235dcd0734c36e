"""The embeddable widget in headless Chromium against the real support bot."""

from __future__ import annotations

import re
from typing import Any

import pytest
from web_browser import ask, console_login, expect, open_widget, screenshot
from web_shop import RETURNS

pytestmark = pytest.mark.browser

# Records the last bot bubble's text on every change inside the widget's shadow root, so the
# test can tell that the answer grew while it streamed.
OBSERVE_BOT_TEXT = """() => {
  const root = document.querySelector('#glm-support-widget').shadowRoot;
  window.__snaps = [];
  new MutationObserver(() => {
    const bots = root.querySelectorAll('.msg.bot');
    const last = bots[bots.length - 1];
    if (last) window.__snaps.push({
      text: last.querySelector('.text').textContent,
      streaming: last.classList.contains('streaming'),
    });
  }).observe(root, {subtree: true, childList: true, characterData: true, attributes: true});
}"""

UNLABELLED_BUTTONS = """() => [...document.querySelector('#glm-support-widget').shadowRoot
  .querySelectorAll('button')].filter(b => !(b.getAttribute('aria-label') || b.textContent.trim()))
  .map(b => b.outerHTML)"""


def test_widget_streams_an_answer_and_resumes_after_reload(server: str, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{server}/widget-demo")
    launcher = page.get_by_role("button", name="Open support chat")
    launcher.click()
    panel = page.get_by_role("dialog", name="Acme Support")
    expect(panel).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_focused()
    expect(page.locator(".msg.bot").first).to_contain_text("Hello")  # the greeting, in English
    assert page.evaluate(UNLABELLED_BUTTONS) == []

    # Shift+Enter is a new line, not a send.
    box.fill("first line")
    box.press("Shift+Enter")
    expect(box).to_have_value("first line\n")
    assert page.locator(".msg.customer").count() == 0
    page.evaluate(OBSERVE_BOT_TEXT)
    question = "How long does shipping take?"
    ask(page, question)
    answer = page.locator(".msg.bot[data-source=model]")
    expect(answer.get_by_role("button", name="Not helpful")).to_be_visible()
    final = answer.locator(".text").inner_text()
    assert question in final
    assert "3 to 5 business days" in final
    snaps = page.evaluate("window.__snaps")
    partial = {s["text"] for s in snaps if s["streaming"] and s["text"] and s["text"] != final}
    assert len(partial) >= 3, snaps  # several deltas were on screen before the answer was done
    assert all(final.startswith(p) for p in partial)
    expect(box).to_have_value("")
    expect(box).to_be_focused()
    screenshot(page, "widget-desktop")

    transcript = page.locator(".msg .text").all_inner_texts()
    assert transcript[-2:] == [question, final]
    conversation = page.evaluate("window.glmSupport.conversationId")
    page.reload()
    page.get_by_role("button", name="Open support chat").click()
    expect(page.locator(".msg")).to_have_count(len(transcript))
    assert page.locator(".msg .text").all_inner_texts() == transcript
    assert page.evaluate("window.glmSupport.conversationId") == conversation
    # The resumed session goes on: a second question is answered in the same conversation.
    ask(page, "And to Canada?")
    expect(page.locator(".msg.bot[data-source=model]")).to_have_count(2)
    assert page.evaluate("window.glmSupport.conversationId") == conversation

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Open support chat")).to_be_focused()


def test_widget_fills_a_phone_screen_without_horizontal_scroll(server: str, new_page: Any) -> None:
    page = new_page(
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page.goto(f"{server}/widget-demo")
    page.get_by_role("button", name="Open support chat").click()
    panel = page.get_by_role("dialog", name="Acme Support")
    expect(panel).to_be_visible()
    assert panel.bounding_box() == {"x": 0, "y": 0, "width": 375, "height": 667}
    # A long unbroken word (a pasted link) must wrap, not widen the panel or the page.
    link = "https://shop.example/orders/" + "A1B2C3" * 20
    ask(page, f"Where is {link}")
    expect(page.locator(".msg.bot[data-source=model] .rate")).to_be_visible()
    # Asked at once, before the conversation existed: still greeting, question, answer.
    kinds = page.locator(".msg").evaluate_all("ms => ms.map(m => m.className)")
    assert kinds == ["msg bot", "msg customer", "msg bot"], kinds
    widths = page.evaluate("""() => {
      const log = document.querySelector('#glm-support-widget').shadowRoot.querySelector('.log');
      return {page: document.documentElement.scrollWidth, log: log.scrollWidth,
              logClient: log.clientWidth};
    }""")
    assert widths["page"] <= 375, widths
    assert widths["log"] <= widths["logClient"], widths
    for bubble in page.locator(".msg").all():
        box = bubble.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    form_box = page.get_by_role("button", name="Send").bounding_box()
    assert form_box is not None and form_box["y"] + form_box["height"] <= 667
    screenshot(page, "widget-phone")
    # The panel covers the page, so Tab and Shift+Tab keep focus inside it.
    expect(panel).to_have_attribute("aria-modal", "true")
    focused = "document.querySelector('#glm-support-widget').shadowRoot.activeElement?.tagName"
    for key in ["Tab"] * 10 + ["Shift+Tab"] * 10:
        page.keyboard.press(key)
        assert page.evaluate(focused) in ("BUTTON", "TEXTAREA", "DIV", "A"), key
    page.get_by_role("button", name="Close chat").first.click()
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Open support chat")).to_be_visible()


def test_widget_statics_keep_no_external_requests(server: str, new_page: Any) -> None:
    page = new_page()
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(re.sub(r"^(\w+://[^/]+).*$", r"\1", r.url)))
    page.goto(f"{server}/widget-demo")
    page.get_by_role("button", name="Open support chat").click()
    ask(page, "Hi there")
    expect(page.locator(".msg.bot[data-source=model]")).to_have_count(1)
    assert hosts == {server}


def test_widget_speaks_chinese_to_a_chinese_browser(server: str, new_page: Any) -> None:
    page = new_page(locale="zh-CN")
    page.goto(f"{server}/widget-demo")
    page.get_by_role("button", name="打开客服对话").click()
    expect(page.get_by_role("status")).to_have_text("智能助手")
    expect(page.locator(".msg.bot").first).to_contain_text("您好")
    box = page.get_by_role("textbox", name="消息")
    box.fill("运费多少？")
    page.get_by_role("button", name="发送").click()
    answer = page.locator(".msg.bot[data-source=model]")
    expect(answer).to_contain_text("运费多少？")
    expect(answer.get_by_role("button", name="没有帮助")).to_be_visible()


def test_widget_works_embedded_in_another_origin(server: str, new_page: Any) -> None:
    """A shop at another origin (`localhost` vs `127.0.0.1`) embeds the widget with the one
    tag; every API call is then cross-origin (CORS preflight for X-Customer-Token)."""
    page = new_page()
    page.goto(server.replace("127.0.0.1", "localhost") + "/shop")
    page.get_by_role("button", name="Open support chat").click()
    ask(page, "Do you ship abroad?")
    expect(page.locator(".msg.bot[data-source=model]")).to_contain_text("Do you ship abroad?")
    stored = page.evaluate(f"localStorage.getItem('glm-support:{server}')")
    assert stored is not None and page.evaluate("window.glmSupport.conversationId") in stored
    page.reload()
    page.get_by_role("button", name="Open support chat").click()
    expect(page.locator(".msg.bot[data-source=model]")).to_contain_text("Do you ship abroad?")


def test_widget_confirms_an_action_with_one_tap(server: str, new_page: Any) -> None:
    page = new_page()
    open_widget(page, server)
    ask(page, "Please return A-1001")
    question = page.locator(".msg.bot", has_text="Please confirm")
    yes = question.get_by_role("button", name="Yes, go ahead")
    expect(yes).to_be_visible()
    expect(question.get_by_role("button", name="No, cancel")).to_be_visible()
    assert "A-1001" not in RETURNS  # nothing happens before the customer agrees
    yes.click()
    expect(page.locator(".msg.customer").last).to_have_text(re.compile("yes"))
    expect(page.locator(".msg.bot").last).to_contain_text("return_requested")
    assert RETURNS.count("A-1001") == 1
    expect(yes).to_have_count(0)  # answered: the quick replies are gone
    page.reload()
    page.get_by_role("button", name="Open support chat").click()
    expect(page.locator(".msg.bot").last).to_contain_text("return_requested")
    expect(page.locator(".msg.bot", has_text="Please confirm")).to_have_count(1)
    expect(page.get_by_role("button", name="Yes, go ahead")).to_have_count(0)


def test_widget_renders_a_little_markdown_safely(server: str, new_page: Any) -> None:
    page = new_page()
    open_widget(page, server)
    ask(page, "What is the returns policy?")
    answer = page.locator(".msg.bot[data-source=model] .text")
    expect(answer.locator("strong")).to_have_text("our policy")
    expect(answer.locator("code")).to_have_text("code")
    links = answer.locator("a")
    expect(links).to_have_count(1)  # the javascript: target stays plain text
    expect(links).to_have_text("the help page")
    expect(links).to_have_attribute("href", "https://shop.example/help")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    expect(answer).to_have_text("See our policy at the help page or this; code too.")


def test_widget_and_console_on_the_main_server(main_server: str, new_page: Any) -> None:
    """The same pages mounted on `glm_agent.serving.create_app` (its middleware, its errors)."""
    page = new_page()
    open_widget(page, main_server)
    ask(page, "How long does shipping take?")
    answer = page.locator(".msg.bot[data-source=model]")
    expect(answer).to_contain_text("3 to 5 business days")
    console = new_page()
    console_login(console, main_server)
    expect(console.get_by_role("tab", name="Review queue")).to_be_visible()
