"""A signed-in customer's pages: my tickets, one ticket, cancel, rate, reply, the service record."""

import io
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.conf import settings
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
    ContactRequest,
    ContactRequestKind,
    Rating,
    Status,
    Ticket,
    TicketChanged,
)

from .factories import DETAILS, make_ticket, make_ticket_at, mover

# --- helpers ----------------------------------------------------------------------------------


class _TimelineParser(HTMLParser):
    """The items of the first ``<ol class="timeline">``: class, aria-current, stage, time, notes."""

    def __init__(self):
        super().__init__()
        self.items = []
        self._in_timeline = False
        self._depth = 0
        self._item = None
        self._capture = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "ol" and "timeline" in (attrs.get("class") or "").split() and not self.items:
            self._in_timeline = True
            return
        if not self._in_timeline:
            return
        if tag == "li":
            self._item = {
                "class": attrs.get("class", ""),
                "current": attrs.get("aria-current"),
                "stage": "",
                "time": None,
                "notes": [],
            }
        elif self._item is not None and tag == "span" and attrs.get("class") == "stage-name":
            self._capture = "stage"
        elif self._item is not None and tag == "time":
            self._item["time"] = attrs.get("datetime")
        elif self._item is not None and tag == "p" and "note" in (attrs.get("class") or ""):
            self._item["notes"].append("")
            self._capture = "note"

    def handle_endtag(self, tag):
        if not self._in_timeline:
            return
        if tag in ("span", "p"):
            self._capture = None
        elif tag == "li" and self._item is not None:
            self.items.append(self._item)
            self._item = None
        elif tag == "ol":
            self._in_timeline = False

    def handle_data(self, data):
        if self._capture == "stage":
            self._item["stage"] += data.strip()
        elif self._capture == "note":
            self._item["notes"][-1] += data.strip()


def timeline_items(response):
    parser = _TimelineParser()
    parser.feed(response.content.decode())
    return parser.items


def local_iso(moment):
    """How a ``<time datetime=…>`` shows a moment: ISO 8601 in the desk's time zone."""
    return timezone.localtime(moment).isoformat()


def url(name, ticket):
    return reverse(f"tickets:{name}", args=[ticket.number])


def open_page(client, user, ticket, name="ticket"):
    client.force_login(user)
    return client.get(url(name, ticket))


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def add_photo(ticket, by, kind=AttachmentKind.RECEIPT):
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 40, 40)).save(out, "PNG")
    processed = images.process(SimpleUploadedFile("photo.png", out.getvalue(), content_type="image/png"))
    return Attachment.add(ticket, kind, processed, by=by)


def ask(ticket, message="Please send a photo of the receipt.", **kw):
    kw.setdefault("kind", ContactRequestKind.MISSING_INFORMATION)
    kw.setdefault("respond_by", timezone.now() + timedelta(days=7))
    return ContactRequest.objects.create(ticket=ticket, message=message, **kw)


def bounce_through_testing(ticket, events):
    """Add ``events`` stage events to a ticket in ``repairing`` (testing ↔ repairing)."""
    by = mover()
    for index in range(events):
        ticket.perform("send_to_testing" if index % 2 == 0 else "fail_testing", by=by, public_note=f"Round {index}")
    return ticket


# --- My tickets ---------------------------------------------------------------------------------


def test_my_tickets_needs_a_login_and_comes_back_after_it(client, db):
    response = client.get(reverse("tickets:my_tickets"))

    assert response.status_code == 302
    assert response["Location"] == f"{resolve_url(settings.LOGIN_URL)}?next=/my/tickets/"


def test_my_tickets_lists_only_the_customers_own_tickets_newest_first(client, customer, other_customer, center):
    older = make_ticket(customer=customer, center=center)
    newer = make_ticket_at("inspecting", customer=customer, center=center)
    someone_elses = make_ticket(customer=other_customer, center=center)

    client.force_login(customer)
    response = client.get(reverse("tickets:my_tickets"))

    content = response.content.decode()
    assert response.status_code == 200
    assert someone_elses.number not in content
    assert content.index(newer.number) < content.index(older.number)
    assert "Inspecting" in content  # the stage badge
    assert newer.device_label in content
    assert f'datetime="{local_iso(Ticket.objects.get(pk=newer.pk).updated_at)}"' in content


def test_my_tickets_shows_ten_per_page(client, customer, center):
    tickets = [make_ticket(customer=customer, center=center) for _ in range(12)]
    client.force_login(customer)

    first = client.get(reverse("tickets:my_tickets"))
    second = client.get(reverse("tickets:my_tickets"), {"page": 2})

    assert [t.number for t in first.context["page"]] == [t.number for t in reversed(tickets)][:10]
    assert [t.number for t in second.context["page"]] == [tickets[1].number, tickets[0].number]
    assert 'rel="next"' in first.content.decode()
    assert 'rel="prev"' in second.content.decode()


def test_my_tickets_without_tickets_invites_to_submit_one(client, customer):
    client.force_login(customer)

    response = client.get(reverse("tickets:my_tickets"))

    assert "You have no repair tickets yet." in response.content.decode()
    assert f'href="{reverse("tickets:submit")}"' in response.content.decode()


# --- The ticket page: timeline ------------------------------------------------------------------


def test_ticket_page_shows_each_reached_stage_with_the_time_it_was_reached(client, customer, center):
    ticket = make_ticket_at("repairing", customer=customer, center=center)
    reached = {e.to_status: e.at for e in ticket.events.all()}

    items = timeline_items(open_page(client, customer, ticket))

    assert [item["stage"] for item in items] == [
        "Submitted",
        "Inspecting",
        "Repairing",
        "Testing",
        "Ready for pickup",
        "Completed",
    ]
    assert [item["time"] for item in items[:3]] == [
        local_iso(reached["submitted"]),
        local_iso(reached["inspecting"]),
        local_iso(reached["repairing"]),
    ]
    assert local_iso(reached["repairing"]).endswith("+08:00")  # the desk's TIME_ZONE, Asia/Shanghai


def test_ticket_page_highlights_the_current_stage_and_shows_later_ones_as_upcoming(client, customer, center):
    ticket = make_ticket_at("repairing", customer=customer, center=center)

    items = timeline_items(open_page(client, customer, ticket))

    assert [item["current"] for item in items] == [None, None, "step", None, None, None]
    assert [item["class"] for item in items] == ["reached", "reached", "current", "pending", "pending", "pending"]
    assert [item["time"] for item in items[3:]] == [None, None, None]


def test_waiting_for_parts_shows_only_when_the_ticket_went_through_it(client, customer, center):
    straight = make_ticket_at("repairing", customer=customer, center=center)
    with_parts = make_ticket_at("inspecting", customer=customer, center=center)
    with_parts.perform("order_parts", by=mover())
    with_parts.perform("start_repair", by=mover())

    straight_stages = [item["stage"] for item in timeline_items(open_page(client, customer, straight))]
    parts_stages = [item["stage"] for item in timeline_items(open_page(client, customer, with_parts))]

    assert "Waiting for parts" not in straight_stages
    assert parts_stages[:4] == ["Submitted", "Inspecting", "Waiting for parts", "Repairing"]


def test_a_ship_back_ticket_shows_awaiting_return_shipment_instead_of_pickup(client, customer, center):
    ticket = make_ticket_at("testing", customer=customer, center=center, return_method="ship_back",
                            return_address="1 Example Road, Shanghai")

    stages = [item["stage"] for item in timeline_items(open_page(client, customer, ticket))]

    assert "Awaiting return shipment" in stages
    assert "Ready for pickup" not in stages


def test_a_cancelled_ticket_shows_the_stages_it_reached_then_cancelled(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    ticket.perform("cancel", by=mover(), **DETAILS["cancel"])

    items = timeline_items(open_page(client, customer, ticket))

    assert [item["stage"] for item in items] == ["Submitted", "Inspecting", "Cancelled"]
    assert items[-1]["current"] == "step"


def test_ticket_page_shows_public_notes_under_their_stage_and_never_internal_notes(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    ticket.perform(
        "start_repair",
        by=mover(),
        public_note="We are replacing the screen.",
        internal_note="Customer sounded annoyed; check the frame for bends.",
    )

    response = open_page(client, customer, ticket)

    items = {item["stage"]: item for item in timeline_items(response)}
    assert items["Repairing"]["notes"] == ["We are replacing the screen."]
    assert "Customer sounded annoyed" not in response.content.decode()


# --- The ticket page: details -------------------------------------------------------------------


def test_ticket_page_shows_the_device_fault_warranty_and_photos(client, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    photo = add_photo(ticket, customer)

    content = open_page(client, customer, ticket).content.decode()

    assert ticket.device_label in content
    assert ticket.imei_or_serial in content
    assert ticket.fault_category.name in content
    assert ticket.symptom_description in content
    assert "In warranty" in content
    last_day = ticket.warranty_expires_on - timedelta(days=1)
    assert f'datetime="{last_day:%Y-%m-%d}"' in content
    assert reverse("tickets:attachment", args=[photo.public_id]) in content
    assert reverse("tickets:attachment_thumbnail", args=[photo.public_id]) in content


def test_a_ticket_ready_for_pickup_says_what_to_bring(client, customer, center):
    center.address = "88 Caoxi Road, Xuhui"
    center.opening_hours = "Mon–Sat 10:00–19:00"
    center.save()
    ticket = make_ticket_at("ready_for_pickup", customer=customer, center=center)

    content = open_page(client, customer, ticket).content.decode()

    assert ticket.pickup_code in content
    assert "identity document" in content
    assert "88 Caoxi Road, Xuhui" in content
    assert "Mon–Sat 10:00–19:00" in content


def test_the_pickup_code_is_not_shown_before_the_device_is_ready(client, customer, center):
    ticket = make_ticket_at("repairing", customer=customer, center=center)
    Ticket.objects.filter(pk=ticket.pk).update(pickup_code="QZ7W3K")

    assert "QZ7W3K" not in open_page(client, customer, ticket).content.decode()


def test_a_shipped_ticket_shows_the_carrier_and_tracking_number(client, customer, center):
    ticket = make_ticket_at("awaiting_return_shipment", customer=customer, center=center)
    ticket.perform("ship_back", by=mover(), carrier="SF Express", tracking_number="SF1234567890")

    content = open_page(client, customer, ticket).content.decode()

    assert "SF Express" in content
    assert "SF1234567890" in content


@pytest.mark.parametrize(
    "stage, can_cancel",
    [
        ("submitted", True),
        ("inspecting", True),
        ("awaiting_parts", True),
        ("repairing", False),
        ("testing", False),
        ("ready_for_pickup", False),
        ("completed", False),
        ("cancelled", False),
    ],
)
def test_the_cancel_button_shows_only_while_the_customer_may_cancel(client, customer, center, stage, can_cancel):
    ticket = make_ticket_at(stage, customer=customer, center=center)

    content = open_page(client, customer, ticket).content.decode()

    assert (url("cancel", ticket) in content) is can_cancel


def test_a_cancelled_ticket_offers_to_submit_again(client, customer, center):
    ticket = make_ticket_at("cancelled", customer=customer, center=center)

    content = open_page(client, customer, ticket).content.decode()

    assert reverse("tickets:resubmit", args=[ticket.number]) in content


def test_the_ticket_page_links_to_the_printable_record_and_shows_the_tracking_qr(client, customer, center):
    ticket = make_ticket(customer=customer, center=center)

    content = open_page(client, customer, ticket).content.decode()

    assert url("record", ticket) in content
    assert 'class="qr-code"' in content


def test_the_ticket_page_accepts_a_number_typed_loosely(client, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    client.force_login(customer)

    response = client.get(reverse("tickets:ticket", args=[ticket.number.replace("-", "").lower()]))

    assert response.status_code == 200
    assert response.context["ticket"] == ticket


# --- Contact requests and replies -------------------------------------------------------------


def test_an_open_contact_request_shows_in_the_action_needed_box_with_a_reply_form(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    contact_request = ask(ticket, "Is the crack on the back old?")

    content = open_page(client, customer, ticket).content.decode()

    box = content[content.index('class="card action-needed"') :]
    assert "Action needed" in content
    assert "Is the crack on the back old?" in box
    assert f'datetime="{local_iso(contact_request.respond_by)}"' in box
    assert f'action="{url("reply", ticket)}"' in box
    assert f'name="contact_request" value="{contact_request.pk}"' in box


def test_reply_answers_the_request_and_goes_back_to_the_ticket(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    contact_request = ask(ticket)
    client.force_login(customer)

    response = client.post(
        url("reply", ticket), {"contact_request": contact_request.pk, "response": "Photo sent by email."}, follow=True
    )

    contact_request.refresh_from_db()
    assert contact_request.response == "Photo sent by email."
    assert contact_request.responded_at is not None
    assert response.redirect_chain[-1][0] == url("ticket", ticket)
    content = response.content.decode()
    assert "Photo sent by email." in content  # listed with the answered requests
    assert 'class="card action-needed"' not in content


def test_an_empty_reply_is_refused_with_a_message_and_changes_nothing(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    contact_request = ask(ticket)
    client.force_login(customer)

    response = client.post(url("reply", ticket), {"contact_request": contact_request.pk, "response": "   "})

    assert response.status_code == 200
    assert "Write your answer." in response.content.decode()
    contact_request.refresh_from_db()
    assert contact_request.responded_at is None


def test_a_refused_reply_is_shown_again_with_the_typed_text(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    contact_request = ask(ticket)
    typed = "The crack is old. " * 300  # longer than an answer may be
    client.force_login(customer)

    response = client.post(url("reply", ticket), {"contact_request": contact_request.pk, "response": typed})

    assert response.status_code == 200
    assert typed.strip() in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    contact_request.refresh_from_db()
    assert contact_request.responded_at is None


def test_a_second_reply_to_an_answered_request_changes_nothing(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    contact_request = ask(ticket)
    contact_request.answer("First answer")
    client.force_login(customer)

    response = client.post(
        url("reply", ticket), {"contact_request": contact_request.pk, "response": "Second answer"}, follow=True
    )

    contact_request.refresh_from_db()
    assert contact_request.response == "First answer"
    assert "This question was already answered. Thank you!" in messages_of(response)


def test_a_reply_naming_another_tickets_request_is_refused(client, customer, other_customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    ask(ticket)
    elsewhere = ask(make_ticket_at("inspecting", customer=other_customer, center=center))
    also_mine_but_other_ticket = ask(make_ticket(customer=customer, center=center))
    client.force_login(customer)

    for foreign in (elsewhere, also_mine_but_other_ticket):
        response = client.post(url("reply", ticket), {"contact_request": foreign.pk, "response": "Hello"})
        assert response.status_code == 404
        foreign.refresh_from_db()
        assert foreign.responded_at is None


# --- Cancel -------------------------------------------------------------------------------------


def cancel_form(ticket, **kw):
    data = {"reason": "no_longer_needed", "note": "Bought a new phone.", "expected_status": ticket.status}
    data.update(kw)
    return data


def test_the_cancel_page_explains_what_follows_and_suggests_contacting_the_desk(client, customer, center):
    center.phone = "+862161234567"
    center.email = "xuhui@repair.example"
    center.save()
    ticket = make_ticket(customer=customer, center=center)

    response = open_page(client, customer, ticket, "cancel")

    content = response.content.decode()
    assert response.status_code == 200
    assert "you need to submit a new ticket" in content
    assert "Cancelling often lowers your service credit." in content
    assert "Your service credit now: Good (100 of 100)." in content
    assert "This cancellation would not count" in content
    assert "xuhui@repair.example" in content
    assert "+862161234567" in content
    # The customer's reasons, as a labelled radio group.
    assert "<fieldset" in content and "<legend>Why do you want to cancel?" in content
    for value in ("solved_myself", "no_longer_needed", "customer_other"):
        assert f'value="{value}"' in content
    assert "out_of_warranty" not in content  # a staff reason
    assert f'name="expected_status" value="{ticket.status}"' in content
    assert "still have to collect it" not in content  # the device is not at the desk yet


def test_the_cancel_page_says_when_a_cancellation_would_count_and_the_device_must_be_collected(
    client, customer, center
):
    earlier = make_ticket(customer=customer, center=center)
    earlier.perform("cancel", by=customer, reason="solved_myself")
    ticket = make_ticket_at("inspecting", customer=customer, center=center)

    content = open_page(client, customer, ticket, "cancel").content.decode()

    assert "This cancellation would count: your credit would become Good (85 of 100)." in content
    assert "you still have to collect it after cancelling" in content


def test_cancelling_records_who_and_why_and_goes_back_to_the_ticket(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    client.force_login(customer)

    response = client.post(url("cancel", ticket), cancel_form(ticket), follow=True)

    ticket.refresh_from_db()
    assert ticket.status == Status.CANCELLED
    assert ticket.cancel_reason == "no_longer_needed"
    assert ticket.cancel_note == "Bought a new phone."
    assert ticket.cancelled_by_kind == ActorKind.CUSTOMER
    event = ticket.events.last()
    assert (event.from_status, event.to_status, event.actor, event.actor_kind) == (
        "inspecting",
        "cancelled",
        customer,
        ActorKind.CUSTOMER,
    )
    assert event.details["reason"] == "no_longer_needed"
    assert response.redirect_chain[-1][0] == url("ticket", ticket)
    assert f"Your ticket {ticket.number} is cancelled." in messages_of(response)


def test_cancelling_needs_a_reason(client, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    client.force_login(customer)

    response = client.post(url("cancel", ticket), cancel_form(ticket, reason=""))

    assert response.status_code == 200
    assert "Choose a reason for the cancellation." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED


@pytest.mark.parametrize("stage", ["repairing", "testing", "ready_for_pickup"])
def test_customer_cannot_cancel_after_repair_started(client, customer, center, stage):
    ticket = make_ticket_at(stage, customer=customer, center=center)
    events_before = ticket.events.count()
    client.force_login(customer)

    page = client.get(url("cancel", ticket), follow=True)
    post = client.post(url("cancel", ticket), cancel_form(ticket), follow=True)

    for response in (page, post):
        assert response.redirect_chain[-1][0] == url("ticket", ticket)
        assert any("The repair has already started" in m for m in messages_of(response))
    ticket.refresh_from_db()
    assert ticket.status == stage
    assert ticket.events.count() == events_before


def test_a_ticket_that_moved_while_the_customer_decided_is_not_cancelled(client, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    client.force_login(customer)
    seen = cancel_form(ticket)  # the page was shown while the ticket was submitted
    ticket.perform("receive_device", by=mover())

    response = client.post(url("cancel", ticket), seen, follow=True)

    ticket.refresh_from_db()
    assert ticket.status == Status.INSPECTING
    assert any("changed while you were deciding" in m for m in messages_of(response))


def test_a_cancellation_that_loses_a_race_changes_nothing_and_says_so(client, customer, center, monkeypatch):
    ticket = make_ticket(customer=customer, center=center)
    client.force_login(customer)

    def lose_the_race(self, action, **kw):
        raise TicketChanged("changed")

    monkeypatch.setattr(Ticket, "perform", lose_the_race)
    response = client.post(url("cancel", ticket), cancel_form(ticket), follow=True)

    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED
    assert any("This ticket changed a moment ago" in m for m in messages_of(response))


# --- Rate ---------------------------------------------------------------------------------------


def test_a_completed_repair_can_be_rated_once_and_the_rating_shows_on_the_page(client, customer, center):
    ticket = make_ticket_at("completed", customer=customer, center=center)
    client.force_login(customer)

    first = client.post(url("rate", ticket), {"stars": "4", "comment": "Fast and friendly.", "publish": "on"})
    second = client.post(url("rate", ticket), {"stars": "1", "comment": "Changed my mind."}, follow=True)

    assert first.status_code == 302
    rating = Rating.objects.get(ticket=ticket)
    assert (rating.stars, rating.comment, rating.publish) == (4, "Fast and friendly.", True)
    assert "You have already rated this repair. Thank you!" in messages_of(second)
    content = second.content.decode()
    assert "Fast and friendly." in content
    assert "4 stars out of 5" in content
    assert f'action="{url("rate", ticket)}"' not in content


def test_the_rating_form_is_a_labelled_group_of_one_to_five_stars(client, customer, center):
    ticket = make_ticket_at("completed", customer=customer, center=center)

    content = open_page(client, customer, ticket).content.decode()

    assert f'action="{url("rate", ticket)}"' in content
    assert "<legend>How satisfied are you with the repair?" in content
    for stars in range(1, 6):
        assert f'name="stars" value="{stars}"' in content
    assert "You may publish my comment" in content


def test_a_comment_stays_private_unless_the_customer_allows_publishing(client, customer, center):
    ticket = make_ticket_at("completed", customer=customer, center=center)
    client.force_login(customer)

    client.post(url("rate", ticket), {"stars": "5", "comment": "Great"})

    assert Rating.objects.get(ticket=ticket).publish is False


@pytest.mark.parametrize("stage", ["submitted", "repairing", "ready_for_pickup", "cancelled"])
def test_a_repair_cannot_be_rated_before_it_is_completed(client, customer, center, stage):
    ticket = make_ticket_at(stage, customer=customer, center=center)
    client.force_login(customer)

    response = client.post(url("rate", ticket), {"stars": "5"}, follow=True)

    assert not Rating.objects.filter(ticket=ticket).exists()
    assert "You can rate the repair once it is completed." in messages_of(response)
    assert f'action="{url("rate", ticket)}"' not in response.content.decode()


def test_a_rating_without_stars_is_shown_again_with_the_comment(client, customer, center):
    ticket = make_ticket_at("completed", customer=customer, center=center)
    client.force_login(customer)

    response = client.post(url("rate", ticket), {"comment": "Good job overall"})

    assert response.status_code == 200
    assert "Choose from 1 to 5 stars." in response.content.decode()
    assert "Good job overall" in response.content.decode()
    assert not Rating.objects.filter(ticket=ticket).exists()


# --- The printable service record ---------------------------------------------------------------


def test_the_service_record_shows_the_ticket_its_history_and_a_qr_of_the_tracking_link(client, customer, center):
    ticket = make_ticket_at("completed", customer=customer, center=center)
    client.force_login(customer)

    response = client.get(url("record", ticket))

    content = response.content.decode()
    assert response.status_code == 200
    assert ticket.number in content
    assert customer.full_name in content
    assert ticket.imei_or_serial in content
    assert ticket.device_label in content
    assert center.name in content
    assert 'class="qr-code"' in content
    table = content[content.index('class="stage-history"') :]
    for event in ticket.events.all():
        assert f'datetime="{local_iso(event.at)}"' in table
    assert table.count("<tr>") == ticket.events.count() + 1  # plus the header row
    for moment in (ticket.created_at, ticket.received_at, ticket.completed_at):
        assert f'datetime="{local_iso(moment)}"' in content
    assert "Print command" in content


def test_the_service_record_never_shows_internal_notes(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    ticket.perform("start_repair", by=mover(), public_note="Screen ordered.", internal_note="Grumpy customer")
    client.force_login(customer)

    content = client.get(url("record", ticket)).content.decode()

    assert "Screen ordered." in content
    assert "Grumpy customer" not in content


# --- Query budgets ------------------------------------------------------------------------------


def count_queries(client, path):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def test_my_tickets_runs_a_fixed_number_of_queries_whatever_the_ticket_count(client, customer, center):
    client.force_login(customer)
    for _ in range(3):
        make_ticket(customer=customer, center=center)
    few = count_queries(client, reverse("tickets:my_tickets"))
    for _ in range(27):
        make_ticket_at("inspecting", customer=customer, center=center)
    many = count_queries(client, reverse("tickets:my_tickets"))

    assert few == many
    assert many <= 5  # session, user, unread messages, count, one page of tickets with their device models


def test_the_ticket_page_runs_a_fixed_number_of_queries_whatever_the_history(client, customer, center):
    client.force_login(customer)
    short = make_ticket_at("repairing", customer=customer, center=center)
    long = bounce_through_testing(make_ticket_at("repairing", customer=customer, center=center), 27)
    for ticket in (short, long):
        add_photo(ticket, customer)
        add_photo(ticket, customer, AttachmentKind.DEVICE_PHOTO)
        ask(ticket)
        ask(ticket).answer("Done")
    assert short.events.count() == 3
    assert long.events.count() == 30

    few = count_queries(client, url("ticket", short))
    many = count_queries(client, url("ticket", long))
    record_few = count_queries(client, url("record", short))
    record_many = count_queries(client, url("record", long))

    assert few == many
    assert record_few == record_many
    assert many <= 7  # session, user, unread messages, ticket (+device, fault, center, rating), events, photos, requests
    assert record_many <= 5  # session, user, unread messages, ticket (+device, fault, center), events
