"""Whole customer journeys in a real browser: what a customer does, step by step.

Staff moves happen through the one door (``ticket.perform``) in the test
process; the live server shares the database, so the customer's next page
load shows them.
"""

import re
from datetime import timedelta

import segno
from django.utils import timezone
from playwright.sync_api import expect

from tickets import numbers
from tickets.models import ContactRequest, Status, Ticket
from tests import factories

from . import BROWSER_TEST, log_in, make_customer, make_ticket, receipt_photo

pytestmark = BROWSER_TEST

IMEI = "490154203237518"


def qr_path(text):
    """The drawing of the QR code the pages show for ``text`` (see the qr_svg template tag)."""
    svg = segno.make(text, error="m").svg_inline(scale=4, border=2, omitsize=True)
    return re.search(r' d="([^"]+)"', svg).group(1)


def assert_qr_encodes(page, container, url):
    """The QR code in ``container`` draws exactly the code of ``url``."""
    drawn = page.locator(f"{container} svg.qr-code path").get_attribute("d")
    assert drawn == qr_path(url)


def timeline_steps(page):
    """(stage name, state class, datetime attribute or None) of each step of the progress timeline."""
    steps = []
    for item in page.locator("main .timeline > li").all():
        time = item.locator("time")
        steps.append(
            (
                item.locator(".stage-name").inner_text(),
                item.get_attribute("class"),
                time.get_attribute("datetime") if time.count() else None,
            )
        )
    return steps


# --- (a) the whole journey ------------------------------------------------------------------------


def test_a_new_customer_signs_up_submits_a_repair_follows_it_answers_the_desk_and_rates_it(page, catalogue, tmp_path):
    staff = factories.mover()

    # Sign up.
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.fill("#id_full_name", "Zhou  Xin")
    page.fill("#id_email", "Zhou.Xin@Example.com")
    page.fill("#id_phone", "138 0013 8123")
    page.fill("#id_password1", "plum blossom river 42")
    page.fill("#id_password2", "plum blossom river 42")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".messages")).to_contain_text("Welcome, Zhou Xin. Your account is ready.")

    # Submit a repair with a real photo of the receipt.
    page.get_by_role("link", name="Start a repair request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Submit a repair")
    # The contact details come from the account.
    expect(page.locator("#id_contact_name")).to_have_value("Zhou Xin")
    expect(page.locator("#id_contact_email")).to_have_value("zhou.xin@example.com")
    page.select_option("#id_device_model", label="Nova 12 Pro")
    page.fill("#id_imei_or_serial", IMEI)
    expect(page.locator("[data-imei-check]")).to_have_text("These 15 digits pass the IMEI check.")
    page.fill("#id_purchase_date", (timezone.localdate() - timedelta(days=300)).isoformat())
    page.select_option("#id_fault_category", label="Screen or touch")
    page.fill("#id_symptom_description", "Dropped it on the stairs; the screen shows green lines and no touch works.")
    page.get_by_label("All the time").check()
    page.set_input_files("#id_receipt_photo", receipt_photo(tmp_path / "receipt.jpg"))
    expect(page.locator("[data-preview-for=id_receipt_photo] img")).to_have_count(1)
    page.get_by_label("Shanghai Xuhui").check()
    page.get_by_label("Drop-off at the service center").check()
    page.get_by_label("Pickup at the service center").check()
    page.get_by_role("button", name="Submit the repair request").click()

    # The confirmation: the number and the QR code of the tracking link.
    page.wait_for_url(re.compile(r"/my/tickets/[0-9A-Z-]+/submitted/$"))
    number_text = page.locator("#ticket-number").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", number_text)
    expect(page.locator(".messages")).to_contain_text(number_text)
    expect(page.locator("figure.qr svg.qr-code")).to_be_visible()
    tracking_link = page.locator("figure.qr a.tracking-url").get_attribute("href")
    assert_qr_encodes(page, "figure.qr", tracking_link)

    ticket = Ticket.objects.get(number=numbers.parse(number_text))
    assert ticket.status == Status.SUBMITTED
    assert ticket.imei_or_serial == IMEI
    assert ticket.contact_phone == "+8613800138123"
    assert [a.kind for a in ticket.attachments.all()] == ["receipt"]

    # The desk receives the device, then asks something.
    ticket.perform("receive_device", by=staff, public_note="We have your phone. The screen is cracked inside.")
    ContactRequest.ask(
        ticket,
        by=staff,
        kind="missing_information",
        message="Is there a screen lock we should know about?",
        respond_by=timezone.now() + timedelta(days=3),
    )

    page.get_by_role("link", name="Follow this repair").click()
    current = page.locator(".timeline li.current")
    expect(current.locator(".stage-name")).to_have_text("Inspecting")
    expect(current.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    expect(current.locator(".note")).to_have_text("We have your phone. The screen is cracked inside.")
    action = page.locator("#action-needed")
    expect(action).to_contain_text("Is there a screen lock we should know about?")
    # The receipt photo is there, served through the access check.
    receipt = page.get_by_role("img", name="Purchase receipt")
    expect(receipt).to_be_visible()
    assert receipt.evaluate("img => img.complete && img.naturalWidth > 0")

    # The customer answers.
    action.get_by_label("Your answer").fill("No lock: I removed it before bringing the phone.")
    action.get_by_role("button", name="Send my answer").click()
    expect(page.locator(".messages")).to_contain_text("Thank you, your answer was sent to the service desk.")
    expect(page.locator("#action-needed")).to_have_count(0)
    expect(page.locator(".contact-request.answered")).to_contain_text("No lock: I removed it before bringing the phone.")
    assert ContactRequest.objects.get(ticket=ticket).response == "No lock: I removed it before bringing the phone."

    # The repair goes on.
    ticket.refresh_from_db()
    for action_name in ("start_repair", "send_to_testing", "pass_testing"):
        ticket.perform(action_name, by=staff)
    page.reload()
    expect(page.get_by_role("heading", name="Your device is ready for pickup")).to_be_visible()
    expect(page.locator(".pickup-code")).to_have_text(ticket.pickup_code)

    ticket.perform("hand_over", by=staff, check="id_document", public_note="Handed over. Thank you!")
    page.reload()
    steps = timeline_steps(page)
    assert [name for name, _state, _at in steps] == [
        "Submitted", "Inspecting", "Repairing", "Testing", "Ready for pickup", "Completed",
    ]
    assert all(at for _name, _state, at in steps), steps
    assert [state for _name, state, _at in steps] == ["reached"] * 5 + ["current"]
    expect(page.locator(".timeline li.current")).to_have_attribute("aria-current", "step")
    expect(page.locator(".ticket-summary .badge")).to_have_text("Completed")

    # Rate the repair.
    rate = page.locator("#rate")
    rate.get_by_label("5 stars").check()
    rate.get_by_role("textbox", name="Comment").fill("Fast and friendly, like new.")
    rate.get_by_role("button", name="Send my rating").click()
    expect(page.locator(".messages")).to_contain_text("Thank you for rating the repair.")
    rating = page.locator("section[aria-labelledby=rating-heading]")
    expect(rating.locator(".stars")).to_have_text("★★★★★")
    expect(rating).to_contain_text("5 stars out of 5")
    expect(rating).to_contain_text("Fast and friendly, like new.")
    expect(page.locator("#rate")).to_have_count(0)
    assert ticket.rating.stars == 5


# --- (b) cancel and submit again ---------------------------------------------------------------


def test_a_customer_cancels_a_submitted_ticket_with_a_reason_and_submits_it_again(page, catalogue):
    customer = make_customer(full_name="Chen Jing")
    ticket = make_ticket(customer, catalogue, symptom_description="The battery drains in two hours since the update.")
    log_in(page, customer.email)

    page.get_by_role("link", name="My repairs").click()
    page.get_by_role("link", name=ticket.number).click()
    page.get_by_role("link", name="Cancel this repair").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel this repair?")
    consequences = page.locator(".consequences")
    expect(consequences).to_contain_text("you need to submit a new ticket")
    expect(consequences).to_contain_text("This cancellation would not count")
    expect(page.get_by_role("heading", name="Talk to us first?")).to_be_visible()
    page.get_by_label("I no longer need the repair").check()
    page.get_by_label("Anything else you want us to know").fill("Bought a new phone.")
    page.get_by_role("button", name="Cancel the repair").click()

    page.wait_for_url(f"**/my/tickets/{ticket.number}/")
    expect(page.locator(".messages")).to_contain_text(f"Your ticket {ticket.number} is cancelled.")
    expect(page.locator(".ticket-summary .badge")).to_have_text("Cancelled")
    expect(page.locator(".cancel-summary")).to_contain_text("You cancelled this ticket.")
    expect(page.locator(".cancel-summary")).to_contain_text("Reason: I no longer need the repair.")
    expect(page.locator(".timeline li.current .stage-name")).to_have_text("Cancelled")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.cancel_reason) == (Status.CANCELLED, "no_longer_needed")

    # "Submit again" fills the form in from the cancelled ticket.
    page.get_by_role("link", name="Submit again").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Submit again")
    expect(page.locator(".lead")).to_contain_text(ticket.number)
    expect(page.locator("#id_device_model")).to_have_value(str(ticket.device_model_id))
    expect(page.locator("#id_imei_or_serial")).to_have_value(ticket.imei_or_serial)
    expect(page.locator("#id_fault_category")).to_have_value(str(ticket.fault_category_id))
    expect(page.locator("#id_symptom_description")).to_have_value("The battery drains in two hours since the update.")
    expect(page.get_by_label("Shanghai Xuhui")).to_be_checked()
    expect(page.locator("#id_contact_name")).to_have_value("Chen Jing")
    page.get_by_label("It happened once").check()  # not asked by the factory's ticket
    page.get_by_role("button", name="Submit the new request").click()

    page.wait_for_url(re.compile(r"/submitted/$"))
    new_number = page.locator("#ticket-number").inner_text().strip()
    assert new_number != ticket.number
    new_ticket = Ticket.objects.get(number=numbers.parse(new_number))
    assert new_ticket.resubmitted_from == ticket
    assert new_ticket.imei_or_serial == ticket.imei_or_serial


# --- (c) tracking without an account --------------------------------------------------------------


def personal_details(ticket):
    phone = str(ticket.contact_phone)
    return [ticket.contact_name, ticket.contact_email, phone, phone[-8:], ticket.imei_or_serial, ticket.pickup_code]


def assert_shows_progress_only(page, ticket):
    html = page.content()
    for secret in personal_details(ticket):
        assert secret not in html, secret
    expect(page.locator("main img")).to_have_count(0)


def test_anyone_tracks_a_repair_with_the_number_and_a_second_factor_and_nothing_personal_shows(
    page, new_context, catalogue
):
    customer = make_customer(full_name="Liu Yang", phone="+8613912345678", email="liu.yang@example.com")
    ticket = make_ticket(customer, catalogue)
    staff = factories.mover()
    ticket.perform("receive_device", by=staff, public_note="Received at the counter.")
    ticket.perform("start_repair", by=staff, internal_note="Board swap, do not tell the customer yet.")

    # Typed the forgiving way: lower case, no dashes.
    page.goto("/track/")
    page.get_by_label("Ticket number").fill(ticket.number.replace("-", "").lower())
    page.get_by_label("Last four digits of your phone number, or your email").fill("5678")
    page.get_by_role("button", name="Show the progress").click()

    page.wait_for_url(re.compile(r"/t/[^/]+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Repair progress")
    expect(page.locator("dl.facts .badge")).to_have_text("Repairing")
    expect(page.locator(".timeline li.current .stage-name")).to_have_text("Repairing")
    expect(page.locator(".timeline")).to_contain_text("Received at the counter.")
    expect(page.locator("main")).not_to_contain_text("Board swap")
    assert_shows_progress_only(page, ticket)

    # A wrong second factor and an unknown number get the same answer.
    uniform = "We could not find a ticket with these details. Check the ticket number and the phone digits or email."
    errors = []
    for number, factor in [(ticket.number, "0000"), (ticket.number, "someone@example.com"), ("7K3Q-9XWD-M2PA", "5678")]:
        page.goto("/track/")
        page.get_by_label("Ticket number").fill(number)
        page.get_by_label("Last four digits of your phone number, or your email").fill(factor)
        page.get_by_role("button", name="Show the progress").click()
        expect(page.get_by_role("alert")).to_be_visible()
        errors.append(page.get_by_role("alert").inner_text().strip())
        assert page.url.endswith("/track/")
    assert errors == [uniform] * 3

    # The QR code on the ticket page links to the same view; it opens without logging in.
    log_in(page, customer.email)
    page.goto(f"/my/tickets/{ticket.number}/")
    link = page.locator(".qr a.tracking-url").get_attribute("href")
    assert_qr_encodes(page, ".qr", link)

    stranger = new_context().new_page()
    stranger.goto(link)
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Repair progress")
    expect(stranger.locator(".timeline li.current .stage-name")).to_have_text("Repairing")
    expect(stranger.get_by_role("link", name="Log in to see everything")).to_be_visible()
    assert_shows_progress_only(stranger, ticket)
    # A damaged link finds nothing.
    response = stranger.goto(link.rstrip("/")[:-3] + "xyz/")
    assert response.status == 404
