"""The store counter in a real browser: a clerk at a tablet with a QR scanner.

The clerk signs in through the real form; the scanner is the keyboard (it
types the whole QR link and Enter into whatever has the focus, which is the
search box). With SCREENSHOTS=1, screenshots of the card, the intake form
and the printed receipt (80 mm and A4) go to docs/screenshots/:

    SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_counter.py
"""

import io
import os
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from accounts.models import COUNTER_CLERK, SUPERVISOR
from tickets.models import Status, Ticket
from tickets.tracking import tracking_path
from tests import factories

from . import BROWSER_TEST, PASSWORD, add_photo, log_in, make_customer, make_ticket, receipt_photo
from .test_accessibility import checked_page, describe, run_axe  # noqa: F401  (checked_page is a fixture)
from .test_journeys import qr_path

pytestmark = BROWSER_TEST

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
IMEI = "356938035643809"
# 80 mm of paper at the CSS 96 dpi: what a receipt printer's page is wide.
RECEIPT_WIDTH = 302


@pytest.fixture
def clerk(catalogue):
    return factories.make_staff(
        COUNTER_CLERK, [catalogue["center"]], email="clerk.sh@example.com", full_name="Chen Jing", password=PASSWORD
    )


@pytest.fixture
def at_counter(checked_page, clerk):
    """The clerk's tablet, signed in at the counter."""
    log_in(checked_page, clerk.email, next="/counter/")
    expect(checked_page.get_by_role("heading", level=1)).to_have_text("Counter of Shanghai Xuhui")
    return checked_page


def assert_accessible(page):
    violations = run_axe(page)
    assert not violations, f"axe found {len(violations)} problem(s) on {page.url}:\n{describe(violations)}"
    assert not page.problems, "\n".join(page.problems)


def screenshot(page, name):
    """docs/screenshots/<name>, only with SCREENSHOTS=1 (as tests/browser/test_screenshots.py: the
    usual run never rewrites them). The whole page, as tall as it is (a full-page capture would paint
    the sticky intake buttons mid-page), reduced to a 256-colour palette."""
    if os.environ.get("SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": page.evaluate("document.documentElement.scrollHeight")})
    png = page.screenshot(animations="disabled", caret="hide")
    page.set_viewport_size(size)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(SCREENSHOTS / name, optimize=True)


def ready_ticket(catalogue, tmp_path, **kw):
    customer = make_customer(full_name="Wang Wei", phone="+8613800138000", email="wei@example.com")
    ticket = make_ticket(customer, catalogue, imei_or_serial=IMEI, **kw)
    add_photo(ticket, "device_photo", receipt_photo(tmp_path / "front.jpg", label="FRONT"))
    add_photo(ticket, "receipt", receipt_photo(tmp_path / "receipt.jpg"))
    factories.advance(ticket, "ready_for_pickup")
    return Ticket.objects.get(pk=ticket.pk)


# --- walk-in intake, with a photo, and the printed receipt -----------------------------------------


def test_a_walk_in_is_taken_in_with_a_photo_and_gets_a_printed_receipt(at_counter, catalogue, tmp_path, live_server):
    page = at_counter
    page.get_by_role("link", name="Take in a walk-in device").click()

    # No account for this phone: a new one is opened with what the clerk types.
    find = page.get_by_label("Customer's phone number or email address")
    expect(find).to_be_focused()
    find.fill("139 1234 5678")
    find.press("Enter")
    expect(page.locator(".lookup-summary")).to_contain_text("No account for")
    expect(page.get_by_label("Customer's name")).to_be_focused()
    page.get_by_label("Customer's name").fill("Zhang San")
    expect(page.get_by_label("Phone number")).to_have_value("+8613912345678")
    page.get_by_label("Email address").fill("zhang.san@example.com")
    page.get_by_label("Device model").select_option(label="Nova 12 Pro")
    page.get_by_label("IMEI or serial number").fill("35 693803 564380 9")
    page.get_by_label("Purchase date").fill("2025-03-14")
    page.get_by_label("Kind of problem").select_option(label="Screen or touch")
    page.get_by_label("What happens").fill("Dropped on the stairs; green lines on the screen, touch dead.")
    page.get_by_label("Several times a day").check()
    page.get_by_label("Condition at intake").fill("Cracked corner top left, no case, SIM removed.")
    photo = receipt_photo(tmp_path / "front.jpg", label="FRONT")
    expect(page.get_by_label("Photos of the device")).to_have_attribute("capture", "environment")
    page.get_by_label("Photos of the device").set_input_files(str(photo))

    # "Check" (also what Enter does in a field) shows the warranty without opening anything.
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.locator(".intake-check")).to_contain_text("In warranty")
    expect(page.locator(".staged-photo img")).to_have_count(1)  # the photo is kept
    assert not Ticket.objects.exists()
    screenshot(page, "counter-intake.png")
    assert_accessible(page)

    page.get_by_role("button", name="Open the ticket and receive the device").click()
    expect(page).to_have_url(re.compile(r"/counter/tickets/[0-9A-Z-]+/receipt/$"))
    ticket = Ticket.objects.get()
    assert ticket.status == Status.INSPECTING
    assert [event.to_status for event in ticket.events.order_by("at", "pk")] == ["submitted", "inspecting"]
    assert ticket.attachments.count() == 1
    assert ticket.customer.email == "zhang.san@example.com"

    receipt = page.locator("article.receipt")
    expect(page.locator(".messages")).to_contain_text(f"Ticket {ticket.number} is open")
    expect(receipt.locator(".receipt-number")).to_have_text(ticket.number)
    expect(receipt.locator(".pickup-code")).to_have_text(ticket.pickup_code)
    expect(receipt).to_contain_text("Cracked corner top left, no case, SIM removed.")
    expect(receipt).to_contain_text("356938035643809")
    expect(receipt).to_contain_text("Received by Chen Jing")
    drawn = receipt.locator("svg.qr-code path").get_attribute("d")
    assert drawn == qr_path(live_server.url + tracking_path(ticket))
    expect(page.get_by_role("button", name="Print the receipt")).to_be_visible()  # shown by JavaScript
    assert_accessible(page)

    # Printed: the slip alone, on an 80 mm roll and on A4.
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator(".receipt-toolbar")).to_be_hidden()
    expect(page.locator(".messages")).to_be_hidden()
    expect(receipt.locator(".pickup-code")).to_be_visible()
    page.set_viewport_size({"width": RECEIPT_WIDTH, "height": 900})
    screenshot(page, "counter-receipt.png")
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    screenshot(page, "counter-receipt-a4.png")

    # Reprinted at any time from the card.
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/counter/tickets/{ticket.number}/")
    page.get_by_role("link", name="Print the intake receipt").click()
    expect(receipt.locator(".receipt-number")).to_have_text(ticket.number)


# --- a scanned QR link opens the card ----------------------------------------------------------------


def test_scanning_the_qr_link_opens_the_ticket_card(at_counter, catalogue, tmp_path, live_server):
    page = at_counter
    ticket = ready_ticket(catalogue, tmp_path)
    page.goto("/counter/")
    search = page.locator("#counter-q")
    expect(search).to_be_focused()
    # The scanner types the whole link and Enter.
    page.keyboard.type(live_server.url + tracking_path(ticket))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/counter/tickets/{ticket.number}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(ticket.number)
    card = page.locator("main")
    for text in ["Wang Wei", "+8613800138000", IMEI, "Ready for pickup", "In warranty", "Good", "Stage history", "Test Mover"]:
        expect(card).to_contain_text(text)
    expect(page.locator(".thumbs img")).to_have_count(2)
    expect(page.get_by_label("Pickup code")).to_be_focused()  # the customer is there to collect
    screenshot(page, "counter-card.png")
    assert_accessible(page)


def test_a_typed_number_and_a_phone_number_find_the_ticket_too(at_counter, catalogue, tmp_path):
    page = at_counter
    ticket = ready_ticket(catalogue, tmp_path)
    page.locator("#counter-q").fill(ticket.number.lower().replace("-", " "))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(ticket.number)
    page.locator("#counter-q").fill("138 0013 8000")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(ticket.number)


# --- hand-over: a wrong pickup code, then the right one ------------------------------------------------


def test_a_wrong_pickup_code_is_refused_and_the_right_one_hands_over(at_counter, catalogue, tmp_path):
    page = at_counter
    ticket = ready_ticket(catalogue, tmp_path)
    page.goto("/counter/")
    page.get_by_role("link", name=ticket.number).click()  # from the "Ready for pickup" queue

    wrong = f"{(int(ticket.pickup_code) + 1) % 1_000_000:06d}"
    code = page.get_by_label("Pickup code")
    expect(code).to_be_focused()
    code.fill(wrong)
    code.press("Enter")
    expect(page.locator(".errorlist")).to_contain_text("The pickup code does not match this ticket.")
    expect(page.locator(".badge").first).to_have_text("Ready for pickup")
    ticket.refresh_from_db()
    assert ticket.status == Status.READY_FOR_PICKUP and ticket.handed_over_by is None
    assert_accessible(page)

    page.get_by_label("Pickup code").fill(ticket.pickup_code)
    page.get_by_label("Pickup code").press("Enter")
    expect(page.locator(".messages")).to_contain_text("the device was handed over")
    expect(page.locator(".badge").first).to_have_text("Completed")
    expect(page.get_by_label("Pickup code")).to_have_count(0)
    ticket.refresh_from_db()
    assert ticket.status == Status.COMPLETED
    assert (ticket.handed_over_by.email, ticket.handover_check) == ("clerk.sh@example.com", "pickup_code")
    page.goto("/counter/")
    expect(page.locator("#ready-heading + .table-wrap, #ready-heading ~ p.hint").first).not_to_contain_text(ticket.number)


# --- the device of a cancelled ticket goes back ----------------------------------------------------------


def test_returning_a_cancelled_tickets_device(at_counter, catalogue, tmp_path):
    page = at_counter
    customer = make_customer(full_name="Li Na")
    ticket = make_ticket(customer, catalogue)
    factories.advance(ticket, "inspecting")
    ticket.perform("cancel", by=factories.make_staff(SUPERVISOR), reason="damage_not_covered", note="Water damage.")

    page.goto("/counter/")
    queue = page.get_by_role("region", name="To return: cancelled, device still here")
    queue.get_by_role("link", name=ticket.number).click()
    expect(page.get_by_role("heading", name="Give the device back (ticket cancelled)")).to_be_visible()

    # Without the receipt: an identity document, looked at and recorded.
    page.get_by_text("No pickup code? Check an identity document instead").click()
    page.get_by_role("button", name="Give back after the identity check").click()
    expect(page.locator(".errorlist")).to_contain_text("tick this box")
    ticket.refresh_from_db()
    assert ticket.device_returned_at is None

    page.get_by_label("I checked an identity document in the name of Li Na").check()
    page.get_by_label("Internal note").fill("ID card")
    page.get_by_role("button", name="Give back after the identity check").click()
    expect(page.locator(".messages")).to_contain_text("is back with its owner")
    expect(page.locator("main")).to_contain_text("Its device was given back.")
    ticket.refresh_from_db()
    assert ticket.device_returned_at is not None
    assert (ticket.handed_over_by.email, ticket.handover_check) == ("clerk.sh@example.com", "id_document")
    assert not Ticket.objects.awaiting_device_return().exists()

    page.goto("/counter/")
    expect(page.get_by_role("region", name="To return: cancelled, device still here")).not_to_contain_text(ticket.number)
    assert_accessible(page)


def test_a_clerk_never_sees_another_centers_ticket(at_counter, catalogue, tmp_path, live_server):
    page = at_counter
    customer = make_customer()
    elsewhere = make_ticket(customer, catalogue, center=catalogue["other_center"])
    page.keyboard.type(live_server.url + tracking_path(elsewhere))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Tickets matching")
    expect(page.locator("main")).to_contain_text("No ticket at Shanghai Xuhui matches")
    response = page.goto(f"/counter/tickets/{elsewhere.number}/")
    assert response.status == 404
