"""The store-counter terminal (/counter/): who may use it, where, and what each page does."""

import io
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth.hashers import is_password_usable
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import COUNTER_CLERK, SUPERVISOR, User
from tickets import images, tracking
from tickets.models import ActorKind, Attachment, StageEvent, StagedUpload, Status, Ticket
from tickets.views.counter import SESSION_CENTER

from .factories import (
    VALID_IMEIS,
    advance,
    make_center,
    make_customer,
    make_device_model,
    make_fault,
    make_staff,
    make_ticket,
    make_ticket_at,
)

BASE_DIR = Path(settings.BASE_DIR)
HOME = reverse("counter:home")
INTAKE = reverse("counter:intake")


# --- Helpers ------------------------------------------------------------------------------------


def jpeg(name="device.jpg", size=(640, 480), color=(40, 120, 200)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def card(number):
    return reverse("counter:ticket", args=[number])


def url(name, ticket):
    return reverse(f"counter:{name}", args=[ticket.number])


@pytest.fixture
def at_counter(client, clerk):
    """The test client signed in as the clerk (one service center: no choice to make)."""
    client.force_login(clerk)
    return client


@pytest.fixture
def catalogue(center):
    center.address = "88 Caoxi Road, Xuhui, Shanghai"
    center.phone = "+862164000000"
    center.opening_hours = "Mon–Sat 10:00–19:00"
    center.save()
    return SimpleNamespace(
        center=center, model=make_device_model(brand="Acme", name="Phone 12", warranty_months=12), fault=make_fault(name="Screen")
    )


def intake_data(catalogue, **changes):
    data = {
        "find": "13912345678",
        "customer": "new",
        "contact_name": "Zhang San",
        "contact_phone": "13912345678",
        "contact_email": "zhang.san@example.com",
        "language": "zh-hans",
        "device_model": str(catalogue.model.pk),
        "device_other": "",
        "imei_or_serial": VALID_IMEIS[1],
        "os_version": "",
        "purchase_date": (timezone.localdate() - timedelta(days=60)).isoformat(),
        "fault_category": str(catalogue.fault.pk),
        "symptom_description": "The screen flickers and goes black.",
        "fault_frequency": "often",
        "condition_notes": "Scratch on the back, no case.",
        "return_method": "pickup",
        "return_address": "",
    }
    data.update(changes)
    return data


# --- Who may use the counter --------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_the_login_page(client, center):
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login") + "?next=/counter/")


@pytest.mark.parametrize("who", ["customer", "technician", "phone_agent"])
def test_only_counter_staff_may_use_the_counter(db, client, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(HOME).status_code == 403
    assert client.get(INTAKE).status_code == 403


def test_a_clerk_with_one_center_works_there_at_once(at_counter, center):
    response = at_counter.get(HOME)
    assert response.status_code == 200
    assert at_counter.session[SESSION_CENTER] == center.pk
    assert f"Counter of {center.name}" in response.content.decode()


def test_a_clerk_of_several_centers_chooses_one_after_signing_in_and_it_is_remembered(client, center, other_center):
    clerk = make_staff(COUNTER_CLERK, [center, other_center])
    client.force_login(clerk)
    response = client.get(INTAKE)
    assert response.status_code == 302
    assert response["Location"] == reverse("counter:choose_center") + "?next=%2Fcounter%2Fintake%2F"

    response = client.post(reverse("counter:choose_center"), {"center": other_center.pk, "next": INTAKE})
    assert response.status_code == 302 and response["Location"] == INTAKE
    assert client.session[SESSION_CENTER] == other_center.pk
    clerk.refresh_from_db()
    assert clerk.counter_center == other_center

    # Next sign-in: asked again, with the last one offered first.
    client.logout()
    client.force_login(clerk)
    assert client.get(HOME)["Location"].startswith(reverse("counter:choose_center"))
    form = client.get(reverse("counter:choose_center")).context["form"]
    assert form["center"].value() == other_center.pk


def test_a_clerk_cannot_choose_a_center_that_is_not_theirs(client, center, other_center):
    clerk = make_staff(COUNTER_CLERK, [center, make_center()])
    client.force_login(clerk)
    response = client.post(reverse("counter:choose_center"), {"center": other_center.pk})
    assert response.status_code == 200
    assert "Choose one of your service centers." in response.content.decode()
    assert SESSION_CENTER not in client.session


def test_a_clerk_removed_from_the_chosen_center_must_choose_again(client, center, other_center):
    clerk = make_staff(COUNTER_CLERK, [center, other_center])
    client.force_login(clerk)
    client.post(reverse("counter:choose_center"), {"center": other_center.pk})
    clerk.service_centers.remove(other_center)
    clerk.service_centers.add(make_center())
    assert client.get(HOME)["Location"].startswith(reverse("counter:choose_center"))


def test_a_supervisor_works_the_counter_of_the_center_they_choose(client, supervisor, center, other_center):
    client.force_login(supervisor)
    assert client.get(HOME)["Location"].startswith(reverse("counter:choose_center"))
    client.post(reverse("counter:choose_center"), {"center": center.pk})
    here = make_ticket(center=center)
    there = make_ticket(center=other_center)
    assert client.get(card(here.number)).status_code == 200
    assert client.get(card(there.number)).status_code == 404


# --- Another center's tickets: never seen, never touched --------------------------------------


def test_a_clerk_cannot_see_another_centers_ticket(at_counter, other_center):
    ticket = make_ticket_at("ready_for_pickup", center=other_center)
    assert at_counter.get(card(ticket.number)).status_code == 404
    assert at_counter.get(url("receipt", ticket)).status_code == 404
    page = at_counter.get(reverse("counter:search"), {"q": ticket.number}).content.decode()
    assert "No ticket at Shanghai Xuhui matches" in page and card(ticket.number) not in page
    assert ticket.number not in at_counter.get(HOME).content.decode()


def test_a_clerk_cannot_act_on_another_centers_ticket(at_counter, other_center):
    ready = make_ticket_at("ready_for_pickup", center=other_center)
    submitted = make_ticket_at("submitted", center=other_center)
    cancelled = make_ticket_at("inspecting", center=other_center)
    cancelled.perform("cancel", by=make_staff(SUPERVISOR), reason="out_of_warranty")
    posts = [
        (url("hand_over", ready), {"expected_status": "ready_for_pickup", "check": "pickup_code", "pickup_code": ready.pickup_code}),
        (url("receive", submitted), {"expected_status": "submitted"}),
        (url("return_device", cancelled), {"expected_status": "cancelled", "check": "pickup_code", "pickup_code": cancelled.pickup_code}),
        (url("cancel", submitted), {"expected_status": "submitted", "reason": "out_of_warranty"}),
    ]
    for path, data in posts:
        assert at_counter.post(path, data).status_code == 404, path
    for ticket in (ready, submitted, cancelled):
        before = ticket.status
        ticket.refresh_from_db()
        assert ticket.status == before
    assert cancelled.device_returned_at is None


def test_a_clerk_of_two_centers_sees_only_the_current_ones_tickets(client, center, other_center):
    clerk = make_staff(COUNTER_CLERK, [center, other_center])
    client.force_login(clerk)
    client.post(reverse("counter:choose_center"), {"center": center.pk})
    there = make_ticket_at("ready_for_pickup", center=other_center)
    assert client.get(card(there.number)).status_code == 404
    assert there.number not in client.get(HOME).content.decode()


def test_the_model_refuses_a_return_by_a_clerk_of_another_center(other_center, clerk):
    from django.core.exceptions import PermissionDenied

    ticket = make_ticket_at("inspecting", center=other_center)
    ticket.perform("cancel", by=make_staff(SUPERVISOR), reason="out_of_warranty")
    with pytest.raises(PermissionDenied):
        ticket.mark_device_returned(by=clerk, check="pickup_code", pickup_code=ticket.pickup_code)


# --- Search -------------------------------------------------------------------------------------------


def test_a_typed_ticket_number_goes_straight_to_the_card(at_counter, center):
    ticket = make_ticket(center=center)
    sloppy = ticket.number.replace("-", " ").lower().replace("0", "o")
    response = at_counter.get(reverse("counter:search"), {"q": sloppy})
    assert response.status_code == 302 and response["Location"] == card(ticket.number)


def test_a_scanned_qr_link_goes_straight_to_the_card(at_counter, center):
    ticket = make_ticket(center=center)
    scanned = f"https://repair.example.com{tracking.tracking_path(ticket)}"
    response = at_counter.get(reverse("counter:search"), {"q": scanned})
    assert response["Location"] == card(ticket.number)


def test_a_forged_qr_link_says_so(at_counter, center):
    ticket = make_ticket(center=center)
    forged = f"https://repair.example.com/t/{ticket.number}.AAAAAAAAAAAAAAAAAAAAAAAAAAA/"
    response = at_counter.get(reverse("counter:search"), {"q": forged})
    assert response.status_code == 200
    assert "not one of our tickets" in response.content.decode()


def test_an_imei_with_several_tickets_gives_a_short_list(at_counter, center):
    first = make_ticket(center=center, imei_or_serial=VALID_IMEIS[2])
    second = make_ticket(center=center, imei_or_serial=VALID_IMEIS[2])
    make_ticket(center=center, imei_or_serial=VALID_IMEIS[3])
    page = at_counter.get(reverse("counter:search"), {"q": VALID_IMEIS[2][:6] + " " + VALID_IMEIS[2][6:]}).content.decode()
    assert first.number in page and second.number in page
    assert "2 tickets at Shanghai Xuhui" in page


def test_a_phone_number_with_one_ticket_goes_to_it(at_counter, center):
    ticket = make_ticket(center=center, contact_phone="+8613711112222")
    response = at_counter.get(reverse("counter:search"), {"q": "137 1111 2222"})
    assert response["Location"] == card(ticket.number)


def test_nothing_found_offers_an_intake_for_that_phone(at_counter, center):
    page = at_counter.get(reverse("counter:search"), {"q": "13711112222"}).content.decode()
    assert "No ticket at Shanghai Xuhui matches" in page
    assert f"{INTAKE}?find=13711112222" in page


def test_the_search_box_takes_the_focus(at_counter, center):
    page = at_counter.get(HOME).content.decode()
    assert 'id="counter-q"' in page and "autofocus" in page.split('id="counter-q"')[1].split(">")[0]


# --- The ticket card -------------------------------------------------------------------------------------


def test_the_card_shows_everything_the_clerk_needs(at_counter, center, customer, clerk):
    ticket = make_ticket(center=center, customer=customer, condition_notes="Dent on the corner.")
    Attachment.add(ticket, "device_photo", images.process(jpeg()), by=clerk)
    advance(ticket, "ready_for_pickup")
    page = at_counter.get(card(ticket.number)).content.decode()
    for text in [
        ticket.number,
        "Wang Wei",
        "+8613800138000",
        ticket.imei_or_serial,
        "In warranty",
        "Dent on the corner.",
        "Service credit",
        "Good",
        "Ready for pickup",
        "Stage history",
        "Test Mover",
        reverse("tickets:attachment_thumbnail", args=[ticket.attachments.get().public_id]),
        "Hand over",
    ]:
        assert text in page, text
    assert ticket.pickup_code not in page  # the customer brings it; the card never shows it


def test_the_card_runs_a_fixed_number_of_queries(at_counter, center, clerk, django_assert_max_num_queries):
    small = make_ticket(center=center)
    big = make_ticket(center=center, imei_or_serial=VALID_IMEIS[1])
    for _ in range(3):
        make_ticket(center=center, imei_or_serial=VALID_IMEIS[1])
    processed = images.process(jpeg())
    for _ in range(3):
        Attachment.add(big, "device_photo", processed, by=clerk)
    advance(big, "ready_for_pickup")
    at_counter.get(HOME)  # the session learns the center once
    with django_assert_max_num_queries(13) as small_queries:
        assert at_counter.get(card(small.number)).status_code == 200
    with django_assert_max_num_queries(13) as big_queries:
        assert at_counter.get(card(big.number)).status_code == 200
    assert len(big_queries.captured_queries) == len(small_queries.captured_queries)


def test_a_device_back_within_90_days_of_a_repair_is_flagged(at_counter, center):
    earlier = make_ticket_at("completed", center=center, imei_or_serial=VALID_IMEIS[3])
    again = make_ticket(center=center, imei_or_serial=VALID_IMEIS[3])
    page = at_counter.get(card(again.number)).content.decode()
    assert "Repeat repair." in page
    assert earlier.number in page  # in "This device before"


def test_a_repair_elsewhere_is_flagged_without_showing_that_ticket(at_counter, center, other_center):
    elsewhere = make_ticket_at("completed", center=other_center, imei_or_serial=VALID_IMEIS[3])
    again = make_ticket(center=center, imei_or_serial=VALID_IMEIS[3])
    page = at_counter.get(card(again.number)).content.decode()
    assert "repaired at another of our service centers" in page
    assert elsewhere.number not in page


def test_a_repair_more_than_90_days_ago_is_not_a_repeat(at_counter, center):
    earlier = make_ticket_at("completed", center=center, imei_or_serial=VALID_IMEIS[3])
    Ticket.objects.filter(pk=earlier.pk).update(completed_at=timezone.now() - timedelta(days=91))
    again = make_ticket(center=center, imei_or_serial=VALID_IMEIS[3])
    assert "Repeat repair." not in at_counter.get(card(again.number)).content.decode()


# --- Receive a mail-in device -------------------------------------------------------------------------


def test_receiving_a_mail_in_device(at_counter, center, clerk):
    ticket = make_ticket(center=center, arrival_method="mail_in")
    assert ticket.number in at_counter.get(HOME).content.decode()  # expected by post
    response = at_counter.post(url("receive", ticket), {"expected_status": "submitted", "condition_notes": "Box dented."})
    assert response.status_code == 302 and response["Location"] == card(ticket.number)
    ticket.refresh_from_db()
    assert ticket.status == Status.INSPECTING and ticket.received_at is not None
    assert ticket.condition_notes == "Box dented."
    event = ticket.events.last()
    assert (event.to_status, event.actor, event.actor_kind) == ("inspecting", clerk, ActorKind.STAFF)


def test_an_action_from_a_stale_card_changes_nothing_and_says_so(at_counter, center):
    ticket = make_ticket(center=center)
    advance(ticket, "inspecting")
    response = at_counter.post(url("receive", ticket), {"expected_status": "submitted"}, follow=True)
    assert "changed while the card was open" in response.content.decode()
    assert ticket.events.count() == 2


def test_get_never_changes_anything(at_counter, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    for name in ("receive", "hand_over", "return_device", "ship_back", "cancel"):
        assert at_counter.get(url(name, ticket)).status_code == 405
    ticket.refresh_from_db()
    assert ticket.status == Status.READY_FOR_PICKUP


# --- Hand-over ---------------------------------------------------------------------------------------


def test_a_wrong_pickup_code_changes_nothing(at_counter, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    wrong = f"{(int(ticket.pickup_code) + 1) % 1_000_000:06d}"
    events_before = ticket.events.count()
    response = at_counter.post(
        url("hand_over", ticket), {"expected_status": "ready_for_pickup", "check": "pickup_code", "pickup_code": wrong}
    )
    assert response.status_code == 200
    assert "The pickup code does not match this ticket." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.READY_FOR_PICKUP
    assert (ticket.completed_at, ticket.device_returned_at, ticket.handed_over_by) == (None, None, None)
    assert ticket.events.count() == events_before


def test_the_right_pickup_code_hands_the_device_over(at_counter, center, clerk):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    spaced = f"{ticket.pickup_code[:3]} {ticket.pickup_code[3:]}"
    response = at_counter.post(
        url("hand_over", ticket), {"expected_status": "ready_for_pickup", "check": "pickup_code", "pickup_code": spaced}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.COMPLETED
    assert (ticket.handed_over_by, ticket.handover_check) == (clerk, "pickup_code")
    assert ticket.completed_at is not None
    event = ticket.events.last()
    assert event.actor == clerk and "pickup_code" not in event.details


def test_an_identity_document_check_must_be_confirmed(at_counter, center, clerk):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    response = at_counter.post(url("hand_over", ticket), {"expected_status": "ready_for_pickup", "check": "id_document"})
    assert "tick this box" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.READY_FOR_PICKUP
    at_counter.post(
        url("hand_over", ticket),
        {"expected_status": "ready_for_pickup", "check": "id_document", "id_checked": "on", "internal_note": "ID card"},
    )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.handover_check) == (Status.COMPLETED, "id_document")
    assert ticket.events.last().internal_note == "ID card"


def test_the_queue_lists_devices_waiting_to_go_back_oldest_first(at_counter, center, other_center, django_assert_max_num_queries):
    newer = make_ticket_at("ready_for_pickup", center=center)
    older = make_ticket_at("ready_for_pickup", center=center)
    Ticket.objects.filter(pk=older.pk).update(ready_at=timezone.now() - timedelta(days=3))
    cancelled = make_ticket_at("inspecting", center=center)
    cancelled.perform("cancel", by=make_staff(SUPERVISOR), reason="damage_not_covered")
    make_ticket_at("ready_for_pickup", center=other_center)
    page = at_counter.get(HOME).content.decode()
    assert page.index(older.number) < page.index(newer.number)
    to_return = page[page.index('id="return-heading"') : page.index('id="expected-heading"')]
    assert cancelled.number in to_return and older.number not in to_return


def test_the_queue_runs_a_fixed_number_of_queries(at_counter, center, django_assert_max_num_queries):
    make_ticket_at("ready_for_pickup", center=center)
    at_counter.get(HOME)  # the session learns the center once
    with django_assert_max_num_queries(8) as few:
        at_counter.get(HOME)
    for _ in range(4):
        make_ticket_at("ready_for_pickup", center=center)
        make_ticket(center=center, arrival_method="mail_in")
    with django_assert_max_num_queries(8) as many:
        at_counter.get(HOME)
    assert len(few.captured_queries) == len(many.captured_queries)


# --- Returning a cancelled ticket's device ---------------------------------------------------------------


@pytest.fixture
def cancelled_at_desk(center):
    ticket = make_ticket_at("inspecting", center=center)
    ticket.perform("cancel", by=make_staff(SUPERVISOR), reason="damage_not_covered")
    return ticket


def test_returning_a_cancelled_tickets_device_needs_the_pickup_code(at_counter, cancelled_at_desk, clerk):
    ticket = cancelled_at_desk
    data = {"expected_status": "cancelled", "check": "pickup_code", "pickup_code": "000000" if ticket.pickup_code != "000000" else "111111"}
    response = at_counter.post(url("return_device", ticket), data)
    assert "The pickup code does not match this ticket." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.device_returned_at is None

    response = at_counter.post(url("return_device", ticket), {**data, "pickup_code": ticket.pickup_code})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.device_returned_at is not None
    assert (ticket.handed_over_by, ticket.handover_check) == (clerk, "pickup_code")
    assert not Ticket.objects.awaiting_device_return().exists()
    assert ticket.status == Status.CANCELLED  # not a stage change


def test_returning_twice_says_it_was_already_returned(at_counter, cancelled_at_desk):
    ticket = cancelled_at_desk
    data = {"expected_status": "cancelled", "check": "pickup_code", "pickup_code": ticket.pickup_code}
    at_counter.post(url("return_device", ticket), data)
    response = at_counter.post(url("return_device", ticket), data, follow=True)
    assert "This device was already returned" in response.content.decode()


# --- Ship back and cancel ----------------------------------------------------------------------------


def test_shipping_a_device_back(at_counter, center):
    ticket = make_ticket_at("awaiting_return_shipment", center=center)
    at_counter.post(url("ship_back", ticket), {"expected_status": ticket.status, "carrier": "SF", "tracking_number": "SF1"})
    ticket.refresh_from_db()
    assert (ticket.status, ticket.return_tracking_number) == (Status.COMPLETED, "SF1")


def test_cancelling_at_the_counter_needs_a_reason(at_counter, center):
    ticket = make_ticket(center=center)
    response = at_counter.post(url("cancel", ticket), {"expected_status": "submitted"})
    assert "Choose the reason for the cancellation." in response.content.decode()
    at_counter.post(url("cancel", ticket), {"expected_status": "submitted", "reason": "incomplete_information"})
    ticket.refresh_from_db()
    assert (ticket.status, ticket.cancelled_by_kind) == (Status.CANCELLED, ActorKind.STAFF)


# --- Walk-in intake ---------------------------------------------------------------------------------


def test_intake_starts_by_finding_the_customer(at_counter, center):
    page = at_counter.get(INTAKE).content.decode()
    assert 'name="find"' in page and "autofocus" in page
    page = at_counter.get(INTAKE, {"find": "not a phone"}).content.decode()
    assert "Enter a phone number or an email address." in page


def test_a_walk_in_without_an_account_gets_one_and_the_device_is_received_in_one_step(at_counter, catalogue, clerk):
    page = at_counter.get(INTAKE, {"find": "139 1234 5678"}).content.decode()
    assert "No account for" in page
    data = intake_data(catalogue, device_photos=[jpeg("front.jpg"), jpeg("back.jpg", color=(0, 0, 0))])
    response = at_counter.post(INTAKE, data)
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == url("receipt", ticket)

    customer = ticket.customer
    assert (customer.email, customer.full_name, str(customer.phone), customer.language) == (
        "zhang.san@example.com",
        "Zhang San",
        "+8613912345678",
        "zh-hans",
    )
    assert not customer.is_staff and is_password_usable(customer.password)
    assert ticket.status == Status.INSPECTING and ticket.arrival_method == "drop_off"
    assert ticket.warranty_status == "in_warranty"
    assert ticket.condition_notes == "Scratch on the back, no case."
    events = list(ticket.events.order_by("at", "pk"))
    assert [(e.from_status, e.to_status, e.actor, e.actor_kind) for e in events] == [
        ("", "submitted", clerk, "staff"),
        ("submitted", "inspecting", clerk, "staff"),
    ]
    assert ticket.attachments.count() == 2
    assert not StagedUpload.objects.exists()


def test_a_walk_in_customer_claims_the_account_by_resetting_the_password(client, at_counter, catalogue):
    at_counter.post(INTAKE, intake_data(catalogue))
    at_counter.logout()
    client.post(reverse("accounts:password_reset"), {"email": "zhang.san@example.com"})
    assert [m.to for m in mail.outbox if "password" in m.subject.lower() or "密码" in m.subject] == [["zhang.san@example.com"]]


def test_an_existing_customer_is_found_by_phone(at_counter, catalogue, customer):
    page = at_counter.get(INTAKE, {"find": "13800138000"}).content.decode()
    assert "One account found" in page and "Wang Wei" in page
    data = intake_data(
        catalogue, find="13800138000", customer=str(customer.pk), contact_name="", contact_phone="", contact_email=""
    )
    response = at_counter.post(INTAKE, data)
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.customer == customer
    assert (ticket.contact_name, str(ticket.contact_phone), ticket.contact_email) == ("Wang Wei", "+8613800138000", "wei@example.com")
    assert not User.objects.filter(email="zhang.san@example.com").exists()


def test_a_new_customer_cannot_take_an_email_that_has_an_account(at_counter, catalogue, customer):
    response = at_counter.post(INTAKE, intake_data(catalogue, contact_email="WEI@example.com"))
    assert "An account already uses this email address." in response.content.decode()
    assert not Ticket.objects.exists()


def test_staff_accounts_are_never_offered_as_the_customer(at_counter, catalogue, clerk):
    clerk.phone = "+8613912345678"
    clerk.save()
    page = at_counter.get(INTAKE, {"find": "13912345678"}).content.decode()
    assert "No account for" in page


def test_an_intake_with_a_typo_keeps_the_photo_and_what_was_typed(at_counter, catalogue, clerk):
    data = intake_data(catalogue, imei_or_serial="490154203237519", device_photos=[jpeg()])
    response = at_counter.post(INTAKE, data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "This IMEI is not valid" in page
    assert "Scratch on the back, no case." in page
    upload = StagedUpload.objects.get(owner=clerk)
    assert f'name="staged" value="{upload.public_id}"' in page
    assert not Ticket.objects.exists()

    response = at_counter.post(INTAKE, intake_data(catalogue, staged=[str(upload.public_id)]))
    assert response.status_code == 302
    assert Ticket.objects.get().attachments.count() == 1


def test_check_shows_the_warranty_and_the_device_history_without_opening_anything(at_counter, catalogue):
    earlier = make_ticket_at("completed", center=catalogue.center, imei_or_serial=VALID_IMEIS[1])
    response = at_counter.post(INTAKE, {**intake_data(catalogue), "check": "1"})
    page = response.content.decode()
    assert "In warranty" in page
    assert earlier.number in page and "Repeat repair." in page
    assert Ticket.objects.count() == 1


def test_intake_at_a_center_that_takes_no_new_repairs_is_refused(at_counter, catalogue):
    catalogue.center.is_active = False
    catalogue.center.save()
    response = at_counter.post(INTAKE, intake_data(catalogue))
    assert response.status_code == 403
    assert Ticket.objects.count() == 0


def test_the_model_refuses_intake_by_staff_of_another_center(catalogue, other_center):
    from django.core.exceptions import PermissionDenied

    outsider = make_staff(COUNTER_CLERK, [other_center])
    with pytest.raises(PermissionDenied):
        Ticket.take_in(
            by=outsider,
            customer=make_customer(),
            service_center=catalogue.center,
            device_model=catalogue.model,
            imei_or_serial=VALID_IMEIS[0],
            fault_category=catalogue.fault,
            symptom_description="Black screen.",
            contact_name="A",
            contact_phone="+8613800000001",
        )
    assert not Ticket.objects.exists()


# --- The receipt -----------------------------------------------------------------------------------------


@pytest.fixture
def walk_in(at_counter, catalogue):
    at_counter.post(INTAKE, intake_data(catalogue))
    return Ticket.objects.get()


def test_the_receipt_has_what_the_customer_keeps(at_counter, walk_in, clerk):
    page = at_counter.get(url("receipt", walk_in)).content.decode()
    for text in [
        walk_in.number,
        walk_in.pickup_code,
        walk_in.imei_or_serial,
        "Acme Phone 12",
        "Scratch on the back, no case.",
        "ending in 5678",
        "<svg",
        "Terms",
        f"Received by {clerk.full_name}",
        "88 Caoxi Road",
    ]:
        assert text in page, text
    assert "+8613912345678" not in page  # only the last digits


def test_the_receipt_waits_for_the_device(at_counter, center):
    ticket = make_ticket(center=center)
    response = at_counter.get(url("receipt", ticket))
    assert response.status_code == 302 and response["Location"] == card(ticket.number)


def assert_valid_html(pages, tmp_path):
    """Every page in ``pages`` ({name: HTML bytes}) passes the Nu Html Checker, in one run of it."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("the Nu Html Checker needs Java, and `java` is not on this machine (Debian: default-jre-headless)")
    jar = BASE_DIR / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
    assert jar.exists(), f"{jar} is missing: run `npm ci` in {BASE_DIR} (vnu-jar is pinned in package.json)"
    files = []
    for name, html in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_bytes(html)
        files.append(str(path))
    result = subprocess.run(
        [java, "-jar", str(jar), "--errors-only", "--stdout", *files], capture_output=True, timeout=300
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_the_receipt_page_is_valid_html(at_counter, walk_in, tmp_path):
    # The page as the clerk first sees it: right after the intake, with its message.
    assert_valid_html({"receipt": at_counter.get(url("receipt", walk_in)).content}, tmp_path)


def test_the_other_counter_pages_are_valid_html(at_counter, walk_in, tmp_path):
    ready = make_ticket_at("ready_for_pickup", center=walk_in.service_center)
    wrong_code = {"expected_status": "ready_for_pickup", "check": "pickup_code", "pickup_code": "x"}
    pages = {
        "queue": at_counter.get(HOME).content,
        "card-inspecting": at_counter.get(card(walk_in.number)).content,
        "card-wrong-code": at_counter.post(url("hand_over", ready), wrong_code).content,
        "search": at_counter.get(reverse("counter:search"), {"q": walk_in.imei_or_serial[:5]}).content,
        "intake-lookup": at_counter.get(INTAKE).content,
        "intake-form": at_counter.get(INTAKE, {"find": "13912345678"}).content,
        "intake-errors": at_counter.post(INTAKE, {"find": "13812345678", "customer": "new"}).content,
    }
    assert_valid_html(pages, tmp_path)


def test_an_intake_that_fails_writes_nothing_and_keeps_the_photos(catalogue, clerk, customer):
    from django.db import IntegrityError

    upload = StagedUpload.stage(clerk, "device_photo", images.process(jpeg()))
    with pytest.raises(IntegrityError):
        Ticket.take_in(
            by=clerk,
            new_customer={"email": customer.email, "full_name": "Someone Else", "phone": "+8613900000000"},
            photos=[upload],
            service_center=catalogue.center,
            device_model=catalogue.model,
            imei_or_serial=VALID_IMEIS[0],
            fault_category=catalogue.fault,
            symptom_description="Black screen.",
            contact_name="Someone Else",
            contact_phone="+8613900000000",
        )
    assert not Ticket.objects.exists() and not StageEvent.objects.exists()
    assert StagedUpload.objects.filter(pk=upload.pk).exists()


def test_a_typed_serial_with_a_slash_is_a_serial_not_a_link(at_counter, center):
    ticket = make_ticket(center=center, imei_or_serial="SN12345678")
    response = at_counter.get(reverse("counter:search"), {"q": "SN/1234-5678"})
    assert response["Location"] == card(ticket.number)
