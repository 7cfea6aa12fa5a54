"""Submitting a repair (/tickets/new/), its confirmation page, and "submit again" after a cancellation."""

import io
from datetime import timedelta
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.shortcuts import resolve_url
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from tickets import images
from tickets.models import (
    ActorKind,
    Attachment,
    AttachmentKind,
    StagedUpload,
    Status,
    Ticket,
)

from .factories import VALID_IMEIS, make_center, make_device_model, make_fault, make_ticket, make_ticket_at

SUBMIT_URL = reverse("tickets:submit")


# --- Helpers ------------------------------------------------------------------------------------


def jpeg_bytes(size=(640, 480), color=(200, 40, 40)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


def photo(name="receipt.jpg", **kw):
    return SimpleUploadedFile(name, jpeg_bytes(**kw), content_type="image/jpeg")


@pytest.fixture
def catalogue(center):
    center.address = "88 Caoxi Road, Xuhui, Shanghai"
    center.opening_hours = "Mon–Sat 10:00–19:00"
    center.save()
    return SimpleNamespace(
        center=center,
        model=make_device_model(brand="Acme", name="Phone 12"),
        fault=make_fault(name="Screen"),
    )


def form_data(catalogue, **changes):
    """A complete, valid answer to the form, as a browser sends it."""
    data = {
        "device_model": str(catalogue.model.pk),
        "device_other": "",
        "imei_or_serial": "4901 5420 3237 518",
        "os_version": "Android 14",
        "purchase_date": (timezone.localdate() - timedelta(days=100)).isoformat(),
        "fault_category": str(catalogue.fault.pk),
        "symptom_description": "The screen stays black since it fell on the stairs yesterday.",
        "fault_frequency": "always",
        "service_center": str(catalogue.center.pk),
        "arrival_method": "drop_off",
        "return_method": "pickup",
        "return_address": "",
        "contact_name": "Wang Wei",
        "contact_phone": "138 0013 8000",
        "contact_email": "wei@example.com",
    }
    data.update(changes)
    return data


class _FormValues(HTMLParser):
    """What a browser would send back from a page's form: name → list of values."""

    def __init__(self):
        super().__init__()
        self.values = {}
        self._select = self._textarea = None

    def _add(self, name, value):
        self.values.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in attrs:
                    self._add(name, attrs.get("value", "on"))
            elif kind != "file":
                self._add(name, attrs.get("value", ""))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self._add(self._select, attrs.get("value", ""))
        elif tag == "textarea":
            self._textarea = name
            self._add(name, "")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea][-1] += data.lstrip("\n") if not self.values[self._textarea][-1] else data


def form_values(response):
    parser = _FormValues()
    parser.feed(response.content.decode())
    return {name: values[0] if len(values) == 1 else values for name, values in parser.values.items()}


def assert_everything_typed_is_kept(response, data):
    shown = form_values(response)
    for name, typed in data.items():
        if typed:
            assert shown.get(name) == typed, f"{name}: typed {typed!r}, shown {shown.get(name)!r}"


def low_credit(customer, center):
    """Five cancellations of their own in the year: the first is free, the others bring 100 down to 40."""
    for _ in range(5):
        make_ticket(customer=customer, center=center).perform("cancel", by=customer, reason="no_longer_needed")


# --- Who may submit -----------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_log_in_first(client, db):
    response = client.get(SUBMIT_URL)

    assert response.status_code == 302
    assert response["Location"] == f"{resolve_url(settings.LOGIN_URL)}?next={SUBMIT_URL}"


def test_staff_are_told_that_staff_use_the_counter_or_the_back_office(client, clerk, catalogue):
    client.force_login(clerk)

    response = client.get(SUBMIT_URL)

    assert response.status_code == 403
    assert b"back office" in response.content
    assert b"<form method=\"post\" action=\"/tickets/new/\"" not in response.content
    assert client.post(SUBMIT_URL, form_data(catalogue)).status_code == 403
    assert not Ticket.objects.exists()


def test_the_form_lists_active_centers_with_their_address_and_models_grouped_by_brand(client, customer, catalogue):
    make_device_model(brand="Zeta", name="Tab 5")
    make_device_model(brand="Acme", name="Old Phone", is_active=False)
    make_center(name="Closed center", is_active=False)
    client.force_login(customer)

    response = client.get(SUBMIT_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<h1") == 1
    assert '<optgroup label="Acme">' in html and '<optgroup label="Zeta">' in html
    assert "Phone 12" in html and "Tab 5" in html and "Old Phone" not in html
    assert 'value="other"' in html  # "My device is not listed"
    assert "88 Caoxi Road" in html and "Closed center" not in html
    assert 'accept="image/jpeg,image/png,image/webp"' in html
    assert "capture" not in html
    assert '<label for="id_imei_or_serial">' in html
    # Contact details come from the account.
    assert form_values(response)["contact_email"] == "wei@example.com"
    assert form_values(response)["contact_name"] == "Wang Wei"


# --- The happy path -----------------------------------------------------------------------------


def test_customer_submits_a_repair_with_a_receipt_photo(client, customer, catalogue):
    client.force_login(customer)

    response = client.post(SUBMIT_URL, {**form_data(catalogue), "receipt_photo": photo()})

    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("tickets:submitted", args=[ticket.number])
    assert ticket.customer == customer
    assert ticket.status == Status.SUBMITTED
    assert ticket.imei_or_serial == "490154203237518"
    assert ticket.device_model == catalogue.model
    assert ticket.service_center == catalogue.center
    assert str(ticket.contact_phone) == "+8613800138000"
    assert ticket.resubmitted_from is None
    event = ticket.events.get()
    assert (event.from_status, event.to_status, event.actor, event.actor_kind) == (
        "",
        Status.SUBMITTED,
        customer,
        ActorKind.CUSTOMER,
    )
    attachment = ticket.attachments.get()
    assert attachment.kind == AttachmentKind.RECEIPT
    assert attachment.uploaded_by == customer
    assert default_storage.exists(attachment.image.name) and default_storage.exists(attachment.thumbnail.name)
    assert not StagedUpload.objects.exists()


def test_the_confirmation_page_shows_the_number_a_qr_code_and_what_to_do_next(client, customer, catalogue):
    client.force_login(customer)

    response = client.post(SUBMIT_URL, form_data(catalogue), follow=True)

    ticket = Ticket.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<p class="ticket-number ticket-number-hero" id="ticket-number">{ticket.number}</p>' in html
    assert "<figure" in html and "<figcaption>" in html
    assert "<svg" in html and f"<title>QR code of the link that follows ticket {ticket.number}</title>" in html
    assert "data-copy=\"ticket-number\"" in html
    assert "screenshot" in html
    assert "88 Caoxi Road" in html and "Mon–Sat 10:00–19:00" in html  # drop-off: where and when
    assert f"Your ticket number is {ticket.number}" in html


def test_mail_in_is_told_to_post_the_device_with_the_number_on_the_parcel(client, customer, catalogue):
    client.force_login(customer)

    response = client.post(SUBMIT_URL, form_data(catalogue, arrival_method="mail_in"), follow=True)

    html = response.content.decode()
    assert "Post it to:" in html
    assert "on the parcel" in html
    assert "88 Caoxi Road" in html


def test_only_the_owner_opens_the_confirmation_page(client, customer, other_customer, ticket):
    url = reverse("tickets:submitted", args=[ticket.number])

    client.force_login(other_customer)
    assert client.get(url).status_code == 404
    client.force_login(customer)
    assert client.get(url).status_code == 200


def test_the_upload_script_leaves_the_success_message_for_the_page_it_loads_next(client, customer, catalogue):
    client.force_login(customer)
    client.post(SUBMIT_URL, form_data(catalogue))
    url = reverse("tickets:submitted", args=[Ticket.objects.get().number])

    followed_by_script = client.get(url, headers={"X-Requested-With": "XMLHttpRequest"})
    loaded = client.get(url)

    assert followed_by_script.status_code == 204
    assert b"Your repair request is in. Your ticket number is" in loaded.content


def test_device_not_in_the_catalogue_is_described_in_words(client, customer, catalogue):
    client.force_login(customer)

    client.post(SUBMIT_URL, form_data(catalogue, device_model="other", device_other="Nokia 3310"))

    ticket = Ticket.objects.get()
    assert ticket.device_model is None
    assert ticket.device_other == "Nokia 3310"


def test_ship_back_keeps_the_address_and_pickup_drops_a_stray_one(client, customer, catalogue):
    client.force_login(customer)

    client.post(SUBMIT_URL, form_data(catalogue, return_method="ship_back", return_address="1 Example Road"))
    client.post(SUBMIT_URL, form_data(catalogue, return_method="pickup", return_address="1 Example Road"))

    shipped, picked_up = Ticket.objects.order_by("created_at", "pk")
    assert shipped.return_address == "1 Example Road"
    assert picked_up.return_address == ""


# --- Invalid answers: shown again with everything typed -----------------------------------------


@pytest.mark.parametrize(
    ("field", "changes", "message"),
    [
        ("imei_or_serial", {"imei_or_serial": "4901 5420 3237 519"}, "This IMEI is not valid"),
        ("device_other", {"device_model": "other", "device_other": ""}, "write its brand and model"),
        ("return_address", {"return_method": "ship_back", "return_address": ""}, "enter the address"),
        (
            "purchase_date",
            {"purchase_date": (timezone.localdate() + timedelta(days=1)).isoformat()},
            "cannot be in the future",
        ),
        ("symptom_description", {"symptom_description": "Broken."}, "at least 20 characters"),
    ],
    ids=["bad IMEI", "missing device_other", "ship back without address", "future purchase date", "short description"],
)
def test_an_invalid_answer_is_shown_again_with_everything_typed(client, customer, catalogue, field, changes, message):
    client.force_login(customer)
    data = form_data(catalogue, **changes)

    response = client.post(SUBMIT_URL, data)

    html = response.content.decode()
    assert response.status_code == 200
    assert not Ticket.objects.exists()
    assert list(response.context["form"].errors) == [field]
    assert message in html
    assert 'id="error-summary"' in html and f'href="#id_{field}"' in html
    assert f'id="id_{field}_error"' in html
    assert_everything_typed_is_kept(response, data)


def test_a_photo_that_passed_is_kept_and_used_by_the_next_post_without_uploading_it_again(client, customer, catalogue):
    client.force_login(customer)
    first = client.post(
        SUBMIT_URL,
        {
            **form_data(catalogue, imei_or_serial="123"),
            "receipt_photo": photo(),
            "device_photos": [photo("a.jpg"), photo("b.jpg")],
        },
    )

    staged = list(StagedUpload.objects.all())
    assert first.status_code == 200
    assert sorted(upload.kind for upload in staged) == ["device_photo", "device_photo", "receipt"]
    assert all(upload.owner == customer for upload in staged)
    kept = form_values(first)["staged"]
    assert sorted(kept) == sorted(str(upload.public_id) for upload in staged)
    html = first.content.decode()
    for upload in staged:
        assert reverse("tickets:staged_thumbnail", args=[upload.public_id]) in html
        assert f'name="remove_staged" value="{upload.public_id}"' in html
    files = {upload.image.name for upload in staged}

    second = client.post(SUBMIT_URL, {**form_data(catalogue), "staged": kept})

    ticket = Ticket.objects.get()
    assert second.status_code == 302
    assert sorted(ticket.attachments.values_list("kind", flat=True)) == ["device_photo", "device_photo", "receipt"]
    assert {attachment.image.name for attachment in ticket.attachments.all()} == files  # the same files, reused
    assert not StagedUpload.objects.exists()


def test_a_file_that_is_not_an_image_shows_the_pipelines_message_and_keeps_the_rest(client, customer, catalogue):
    client.force_login(customer)
    data = form_data(catalogue)
    text = SimpleUploadedFile("receipt.jpg", b"this is not a photo at all", content_type="image/jpeg")

    response = client.post(SUBMIT_URL, {**data, "receipt_photo": text, "warranty_card_photo": photo("card.jpg")})

    html = response.content.decode()
    assert response.status_code == 200
    assert not Ticket.objects.exists()
    assert str(images.MESSAGES["not_image"]) in html
    assert response.context["form"].errors["receipt_photo"] == [str(images.MESSAGES["not_image"])]
    assert_everything_typed_is_kept(response, data)
    # The good photo of the same POST is kept.
    assert list(StagedUpload.objects.values_list("kind", flat=True)) == ["warranty_card"]


def test_each_bad_device_photo_is_named_and_the_good_ones_are_kept(client, customer, catalogue):
    client.force_login(customer)
    bad = SimpleUploadedFile("notes.jpg", b"plain text", content_type="image/jpeg")

    response = client.post(SUBMIT_URL, {**form_data(catalogue), "device_photos": [photo("good.jpg"), bad]})

    assert response.context["form"].errors["device_photos"] == [f"notes.jpg: {images.MESSAGES['not_image']}"]
    assert list(StagedUpload.objects.values_list("kind", flat=True)) == ["device_photo"]


def test_a_new_receipt_replaces_the_one_kept_and_removed_photos_are_deleted(
    client, customer, catalogue, django_capture_on_commit_callbacks
):
    client.force_login(customer)
    client.post(
        SUBMIT_URL,
        {**form_data(catalogue, imei_or_serial="123"), "receipt_photo": photo(), "device_photos": [photo("a.jpg")]},
    )
    old_receipt = StagedUpload.objects.get(kind="receipt")
    device_photo = StagedUpload.objects.get(kind="device_photo")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            SUBMIT_URL,
            {
                **form_data(catalogue),
                "staged": [str(old_receipt.public_id), str(device_photo.public_id)],
                "remove_staged": [str(device_photo.public_id)],
                "receipt_photo": photo("new-receipt.jpg", color=(0, 0, 255)),
            },
        )

    ticket = Ticket.objects.get()
    assert list(ticket.attachments.values_list("kind", flat=True)) == ["receipt"]
    assert ticket.attachments.get().image.name != old_receipt.image.name
    for gone in (old_receipt, device_photo):
        assert not default_storage.exists(gone.image.name)
        assert not default_storage.exists(gone.thumbnail.name)
    assert not StagedUpload.objects.exists()


def test_another_customers_staged_photo_is_ignored(client, customer, other_customer, catalogue):
    processed = images.process(photo())
    theirs = StagedUpload.stage(other_customer, AttachmentKind.RECEIPT, processed)
    client.force_login(customer)

    response = client.post(SUBMIT_URL, {**form_data(catalogue), "staged": [str(theirs.public_id), "not-a-uuid"]})

    assert response.status_code == 302
    assert not Ticket.objects.get().attachments.exists()
    assert StagedUpload.objects.get() == theirs  # untouched


def test_staged_thumbnail_is_served_to_its_owner_only(client, customer, other_customer):
    upload = StagedUpload.stage(customer, AttachmentKind.RECEIPT, images.process(photo()))
    url = reverse("tickets:staged_thumbnail", args=[upload.public_id])

    assert client.get(url).status_code == 404  # anonymous
    client.force_login(other_customer)
    assert client.get(url).status_code == 404
    client.force_login(customer)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "private" in response["Cache-Control"]
    with upload.thumbnail.open("rb") as handle:
        assert b"".join(response.streaming_content) == handle.read()
    response.close()


def test_stale_staged_uploads_are_deleted_with_their_files(customer, django_capture_on_commit_callbacks):
    processed = images.process(photo())
    old = StagedUpload.stage(customer, AttachmentKind.RECEIPT, processed)
    StagedUpload.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    recent = StagedUpload.stage(customer, AttachmentKind.DEVICE_PHOTO, processed)

    with django_capture_on_commit_callbacks(execute=True):
        deleted = StagedUpload.delete_stale()

    assert deleted == 1
    assert list(StagedUpload.objects.all()) == [recent]
    assert not default_storage.exists(old.image.name) and not default_storage.exists(old.thumbnail.name)
    assert default_storage.exists(recent.image.name)


def test_a_customer_keeps_a_bounded_number_of_staged_photos(
    customer, other_customer, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("tickets.models.MAX_STAGED_UPLOADS_PER_OWNER", 3)
    processed = images.process(photo())
    oldest, *middle = [StagedUpload.stage(customer, AttachmentKind.DEVICE_PHOTO, processed) for _ in range(3)]
    theirs = StagedUpload.stage(other_customer, AttachmentKind.DEVICE_PHOTO, processed)
    StagedUpload.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(hours=1))
    newest = StagedUpload.stage(customer, AttachmentKind.RECEIPT, processed)

    with django_capture_on_commit_callbacks(execute=True):
        assert StagedUpload.trim(customer, keep=[oldest]) == 1

    assert set(StagedUpload.objects.all()) == {oldest, middle[1], newest, theirs}
    assert not default_storage.exists(middle[0].image.name)


# --- Service credit -----------------------------------------------------------------------------


def test_low_credit_blocks_a_second_open_ticket_with_the_explanation(client, customer, catalogue):
    low_credit(customer, catalogue.center)
    open_one = make_ticket(customer=customer, center=catalogue.center)
    client.force_login(customer)

    page = client.get(SUBMIT_URL)
    refused = client.post(SUBMIT_URL, {**form_data(catalogue), "receipt_photo": photo()})

    for response in (page, refused):
        html = response.content.decode()
        assert "You cannot submit another repair online right now" in html
        assert "<strong>Low</strong> (40 of 100 points)" in html
        assert open_one.number in html
        assert "You cancelled this ticket." in html
        assert "Bring your device to one of our service centers" in html
        assert 'name="imei_or_serial"' not in html
    assert page.status_code == 200
    assert refused.status_code == 403
    assert Ticket.objects.open().count() == 1
    assert not StagedUpload.objects.exists()


def test_low_credit_still_allows_a_first_open_ticket(client, customer, catalogue):
    low_credit(customer, catalogue.center)
    client.force_login(customer)

    assert client.post(SUBMIT_URL, form_data(catalogue)).status_code == 302


def test_a_ticket_opened_at_the_counter_does_not_count_against_the_online_limit(client, customer, clerk, catalogue):
    low_credit(customer, catalogue.center)
    make_ticket(customer=customer, center=catalogue.center, by=clerk)
    client.force_login(customer)

    assert client.post(SUBMIT_URL, form_data(catalogue)).status_code == 302


# --- Submit again ---------------------------------------------------------------------------------


@pytest.fixture
def cancelled(customer, catalogue):
    old = make_ticket_at(
        "cancelled",
        customer=customer,
        center=catalogue.center,
        device_model=None,
        device_other="Nokia 3310",
        imei_or_serial=VALID_IMEIS[1],
        os_version="S40",
        fault_category=catalogue.fault,
        symptom_description="It no longer charges, whatever the cable.",
        fault_frequency="often",
        arrival_method="mail_in",
        return_method="ship_back",
        return_address="1 Example Road, Shanghai",
        contact_name="Wei at work",
        contact_phone="+8613900000000",
        contact_email="wei.work@example.com",
    )
    Attachment.add(old, AttachmentKind.RECEIPT, images.process(photo()), by=customer)
    return old


def test_resubmit_prefills_the_form_from_the_cancelled_ticket(client, customer, cancelled):
    client.force_login(customer)

    response = client.get(reverse("tickets:resubmit", args=[cancelled.number]))

    shown = form_values(response)
    assert response.status_code == 200
    assert cancelled.number in response.content.decode()
    assert shown["device_model"] == "other"
    assert shown["device_other"] == "Nokia 3310"
    assert shown["imei_or_serial"] == VALID_IMEIS[1]
    assert shown["os_version"] == "S40"
    assert shown["fault_category"] == str(cancelled.fault_category_id)
    assert shown["symptom_description"] == "It no longer charges, whatever the cable."
    assert shown["fault_frequency"] == "often"
    assert shown["purchase_date"] == cancelled.purchase_date.isoformat()
    assert shown["service_center"] == str(cancelled.service_center_id)
    assert (shown["arrival_method"], shown["return_method"]) == ("mail_in", "ship_back")
    assert shown["return_address"] == "1 Example Road, Shanghai"
    assert (shown["contact_name"], shown["contact_email"]) == ("Wei at work", "wei.work@example.com")
    assert shown["reuse_photos"] == "on"


def test_resubmitting_records_where_the_new_ticket_comes_from_and_can_reuse_the_photos(client, customer, cancelled):
    client.force_login(customer)
    url = reverse("tickets:resubmit", args=[cancelled.number])
    data = form_values(client.get(url))
    data.pop("staged", None)

    response = client.post(url, data)

    new = Ticket.objects.exclude(pk=cancelled.pk).get()
    assert response.status_code == 302
    assert new.resubmitted_from == cancelled
    assert new.number != cancelled.number
    assert new.device_other == "Nokia 3310"
    copy, original = new.attachments.get(), cancelled.attachments.get()
    assert copy.kind == original.kind
    assert copy.image.name != original.image.name  # its own file: deleting one never breaks the other
    with copy.image.open("rb") as a, original.image.open("rb") as b:
        assert a.read() == b.read()


def test_resubmitting_without_the_old_photos(client, customer, cancelled):
    client.force_login(customer)
    url = reverse("tickets:resubmit", args=[cancelled.number])
    data = form_values(client.get(url))
    del data["reuse_photos"]

    client.post(url, data)

    assert not Ticket.objects.exclude(pk=cancelled.pk).get().attachments.exists()


def test_resubmit_is_404_for_a_ticket_that_is_not_cancelled(client, customer, ticket):
    client.force_login(customer)

    assert client.get(reverse("tickets:resubmit", args=[ticket.number])).status_code == 404


def test_resubmit_is_404_for_another_customers_ticket(client, other_customer, cancelled):
    client.force_login(other_customer)

    assert client.get(reverse("tickets:resubmit", args=[cancelled.number])).status_code == 404
    assert client.post(reverse("tickets:resubmit", args=[cancelled.number]), {}).status_code == 404


# --- Query budget ---------------------------------------------------------------------------------


def test_the_form_runs_a_fixed_number_of_queries_whatever_the_size_of_the_catalogue(
    client, customer, catalogue, django_assert_max_num_queries
):
    client.force_login(customer)
    with CaptureQueriesContext(connection) as small:
        client.get(SUBMIT_URL)
    for n in range(30):
        make_device_model(brand=f"Brand {n % 7}", name=f"Model {n}")
        make_fault(name=f"Fault {n}")
        make_center(name=f"Center {n}")

    with django_assert_max_num_queries(7):  # with the unread-messages count in the header
        response = client.get(SUBMIT_URL)

    assert response.status_code == 200
    with CaptureQueriesContext(connection) as large:
        client.get(SUBMIT_URL)
    assert len(large) == len(small)
