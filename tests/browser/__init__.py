"""Browser tests (Playwright + Debian's Chromium) and the helpers they share.

Run them alone with ``make test PYTEST_ARGS="tests/browser"``; they are part of ``make test``.
"""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from tests import factories

PASSWORD = "correct horse battery"

# Django's live server needs a transactional database (the server thread
# must see committed rows); serialized_rollback puts back the rows the data
# migrations made (the role groups) after each test's flush.
BROWSER_TEST = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def make_customer(**kw):
    kw.setdefault("password", PASSWORD)
    return factories.make_customer(**kw)


def make_ticket(customer, catalogue, **kw):
    kw.setdefault("center", catalogue["center"])
    kw.setdefault("device_model", catalogue["models"][0])
    kw.setdefault("fault_category", catalogue["faults"][0])
    kw.setdefault("purchase_date", timezone.localdate() - timedelta(days=200))
    return factories.make_ticket(customer=customer, **kw)


def log_in(page, email, password=PASSWORD, *, next=None):
    """Log in through the real form, as a customer does; with ``next``, land on that page."""
    page.goto("/accounts/login/" + (f"?{urlencode({'next': next})}" if next else ""))
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def set_language(context, language, base_url):
    """What the language switcher leaves behind: Django's language cookie."""
    context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])


def receipt_photo(path, *, label="RECEIPT"):
    """A real JPEG of a shop receipt with some drawn text, as a phone camera would give it."""
    image = Image.new("RGB", (900, 1200), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=42)
    except TypeError:  # Pillow before 10.1
        font = ImageFont.load_default()
    lines = [label, "Acme Store Xuhui", "2025-03-14 15:42", "Acme Nova 12 Pro 256GB", "IMEI 490154203237518", "TOTAL  CNY 5,999.00"]
    for index, line in enumerate(lines):
        draw.text((60, 80 + index * 90), line, fill=(20, 20, 20), font=font)
    draw.rectangle((40, 40, 860, 1160), outline=(120, 120, 120), width=4)
    image.save(path, "JPEG", quality=85)
    return path


def add_photo(ticket, kind, path):
    """Attach the photo at ``path`` to ``ticket`` through the upload pipeline, as the submit form does."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tickets import images
    from tickets.models import Attachment

    upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg")
    return Attachment.add(ticket, kind, images.process(upload), by=ticket.customer)


def ask(ticket, message="Is there a screen lock we should know about? Please answer so we can test the repair."):
    """The desk asks the customer something, with three days to answer."""
    from tickets.models import ContactRequest

    return ContactRequest.ask(
        ticket,
        by=factories.mover(),
        kind="missing_information",
        message=message,
        respond_by=timezone.now() + timedelta(days=3),
    )


def ticket_mid_repair_with_question(customer, catalogue, tmp_path):
    """Inspecting, with a public note, a receipt and a device photo, and an open question from the desk."""
    ticket = make_ticket(
        customer,
        catalogue,
        symptom_description="Dropped it on the stairs; the screen shows green lines and touch does not work.",
    )
    add_photo(ticket, "receipt", receipt_photo(tmp_path / "receipt.jpg"))
    add_photo(ticket, "device_photo", receipt_photo(tmp_path / "device.jpg", label="FRONT"))
    ticket.perform(
        "receive_device", by=factories.mover(), public_note="We have your phone. The display will be replaced."
    )
    ask(ticket)
    return ticket
