"""Screenshots of the customer pages for docs/screenshots/ (see its README.md).

Not part of the usual run: it takes a while and rewrites files in the work
tree. Regenerate them with

    SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_screenshots.py

Each page is taken on a phone (390×844) and a desktop (1280×900) viewport,
in English, and the submit and ticket pages in Simplified Chinese too. On
the phone, no page may be wider than the screen (no sideways scrolling).
"""

import io
import os
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tickets.tracking import tracking_path
from tests import factories

from . import BROWSER_TEST, log_in, make_customer, make_ticket, set_language, ticket_mid_repair_with_question

pytestmark = [
    *BROWSER_TEST,
    pytest.mark.skipif(os.environ.get("SCREENSHOTS") != "1", reason="screenshots: run with SCREENSHOTS=1"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORTS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
IN_CHINESE_TOO = {"submit", "ticket"}


def save(page, name):
    """A full-page PNG, reduced to a 256-colour palette (text stays sharp; the files stay small)."""
    png = page.screenshot(full_page=True, animations="disabled", caret="hide")
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(SCREENSHOTS / f"{name}.png", optimize=True)


def assert_fits_the_screen(page, name):
    overflow = page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            return [...document.querySelectorAll("body *")]
                .filter(el => el.getBoundingClientRect().right > width + 1 && getComputedStyle(el).position !== "absolute")
                .filter(el => !el.closest(".table-wrap"))  // tables scroll inside their own box
                .slice(0, 5)
                .map(el => el.tagName.toLowerCase() + (el.className ? "." + String(el.className).replace(/ /g, ".") : ""));
        }"""
    )
    assert not overflow, f"{name}: wider than the phone's screen: {overflow}"
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), name


@pytest.fixture
def world(catalogue, tmp_path):
    """One customer with a repair in every interesting state."""
    customer = make_customer(full_name="Wang Wei", email="wang.wei@example.com", phone="+8613800138000")
    older = make_ticket(customer, catalogue, device_model=catalogue["models"][2])
    older.perform("cancel", by=customer, reason="solved_myself", note="It works again after a restart.")
    done = factories.advance(make_ticket(customer, catalogue, device_model=catalogue["models"][1]), "completed")
    mid_repair = ticket_mid_repair_with_question(customer, catalogue, tmp_path)
    fresh = make_ticket(
        customer,
        catalogue,
        symptom_description="The battery drains from full to empty in two hours since the last update.",
        fault_category=catalogue["faults"][1],
    )
    return {"customer": customer, "mid_repair": mid_repair, "fresh": fresh, "done": done}


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_screenshots_of_the_customer_pages(new_context, live_server, world, viewport):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    suffix = f"-{viewport}"
    mid_repair, fresh = world["mid_repair"], world["fresh"]

    visitor = new_context(**VIEWPORTS[viewport]).new_page()
    anonymous_pages = {
        "start": "/",
        "track": "/track/",
        "tracked": tracking_path(mid_repair),
    }
    for name, path in anonymous_pages.items():
        visitor.goto(path)
        assert_fits_the_screen(visitor, name + suffix)
        save(visitor, name + suffix)

    page = new_context(**VIEWPORTS[viewport]).new_page()
    log_in(page, world["customer"].email)  # lands on the start page with "You are logged in"
    customer_pages = {
        "submit": "/tickets/new/",
        "submitted": f"/my/tickets/{fresh.number}/submitted/",
        "ticket": f"/my/tickets/{mid_repair.number}/",
        "my-tickets": "/my/tickets/",
        "profile": "/accounts/profile/",
        "cancel": f"/my/tickets/{fresh.number}/cancel/",
    }
    for name, path in customer_pages.items():
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_fits_the_screen(page, name + suffix)
        save(page, name + suffix)
    # The list of repairs fits whole, without scrolling sideways inside its box.
    page.goto(customer_pages["my-tickets"])
    widths = page.evaluate("() => { const w = document.querySelector('.table-wrap'); return [w.scrollWidth, w.clientWidth]; }")
    assert widths[0] <= widths[1], widths

    # A browser set to Chinese, as the customer's phone would be (its own controls in Chinese too).
    chinese = new_context(**VIEWPORTS[viewport], locale="zh-CN").new_page()
    log_in(chinese, world["customer"].email)
    set_language(chinese.context, "zh-hans", live_server.url)
    for name in sorted(IN_CHINESE_TOO):
        chinese.goto(customer_pages[name])
        expect(chinese.locator("html")).to_have_attribute("lang", "zh-hans")
        assert_fits_the_screen(chinese, f"{name}{suffix}-zh")
        save(chinese, f"{name}{suffix}-zh")
