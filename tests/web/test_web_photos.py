"""A customer attaches a photo in the widget (headless Chromium): it is checked and shrunk in the
browser, sent through the same message route as text, answered by the model, shown again after
a reload, and seen by the human agent in the console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web_browser import console_login, expect, open_widget, screenshot

pytestmark = pytest.mark.browser
Image = pytest.importorskip("PIL.Image")

IMG_LOADED = "img => img.complete && img.naturalWidth > 0"


def photo(path: Path, size: tuple[int, int], fmt: str = "JPEG") -> Path:
    """A photo-like file: noise compresses badly, so a big one is heavy, as a camera's is."""
    Image.effect_noise(size, 40).convert("RGB").save(path, fmt, quality=92)
    return path


def test_a_customer_sends_a_photo_and_the_agent_sees_it(
    server: str, new_page: Any, tmp_path: Path
) -> None:
    page = new_page()
    conversation = open_widget(page, server)
    attach = page.get_by_role("button", name="Attach a photo")
    expect(attach).to_be_visible()  # the bot takes photos (GET /v1/support/info)

    # A type the bot does not take is refused in the customer's words, before any upload.
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a photo")
    picker = page.locator("#glm-support-widget input[type=file]")
    picker.set_input_files(str(text_file))
    expect(page.locator(".msg.system").last).to_have_text(
        "Only JPEG, PNG, WebP or GIF photos can be sent."
    )

    # A camera-sized photo (4000x3000, several MB) is shrunk to 1568 px before it is sent.
    big = photo(tmp_path / "kettle.jpg", (4000, 3000))
    assert big.stat().st_size > 2 * 1024 * 1024  # over the bot's 2 MB limit as it is
    picker.set_input_files(str(big))
    thumb = page.locator(".tray .thumb img")
    expect(thumb).to_have_count(1)
    page.get_by_role("button", name="Remove photo").click()
    expect(thumb).to_have_count(0)
    picker.set_input_files(str(big))
    expect(thumb).to_have_count(1)
    box = page.get_by_role("textbox", name="Message")
    box.fill("It arrived like this")
    box.press("Enter")

    mine = page.locator(".msg.customer").last
    expect(mine).to_contain_text("It arrived like this")
    expect(mine.locator(".photos img")).to_have_count(1)
    answer = page.locator(".msg.bot[data-source=model]").last
    expect(answer).to_contain_text("I can see your photo (1568x1176).")
    expect(page.locator(".tray")).to_be_hidden()
    screenshot(page, "widget-photo")

    # After a reload the photo comes back from the server, by its id, with the token.
    page.reload()
    page.get_by_role("button", name="Open support chat").click()
    again = page.locator(".msg.customer .photos img").first
    expect(again).to_have_attribute("src", lambda_src_is_data())
    page.wait_for_function(
        "() => { const r = document.querySelector('#glm-support-widget').shadowRoot;"
        " const i = r.querySelector('.msg.customer .photos img');"
        " return i && i.complete && i.naturalWidth === 1568; }"
    )

    # The human agent sees it in the console once the customer asks for a person.
    page.get_by_role("button", name="Talk to a human").click()
    expect(page.get_by_role("status")).to_have_text("Waiting for a human agent…")
    console = new_page(viewport={"width": 1280, "height": 860})
    console_login(console, server)
    console.locator(f'#queue button[data-id="{conversation}"]').click()
    transcript = console.get_by_role("log", name="Transcript")
    shown = transcript.get_by_role("img", name="Customer photo 1 (1568×1176)")
    expect(shown).to_be_visible()
    assert shown.evaluate(IMG_LOADED)
    screenshot(console, "console-photo")


def lambda_src_is_data() -> Any:
    import re

    return re.compile(r"^data:image/jpeg;base64,")
