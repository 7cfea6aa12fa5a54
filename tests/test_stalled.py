"""Stalled tickets: a reminder first, then an automatic cancellation, each exactly once, at its boundary."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from tickets import stalled
from tickets.models import ContactRequest, StageEvent, Ticket, TicketChanged
from tickets.tasks import sweep_stalled_tickets

from .factories import make_center, make_ticket, make_ticket_at, mover

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _defaults(settings):
    settings.DEVICE_ARRIVAL_DAYS = 14
    settings.DEVICE_REMINDER_DAYS_BEFORE = 3
    settings.CONTACT_REMINDER_HOURS_BEFORE = 24
    settings.SMS_BACKEND = "tickets.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def reminders(ticket, kind):
    return ticket.notifications.filter(kind=kind, channel="in_app").count()


# --- the device never arrives ---------------------------------------------------------


@pytest.mark.parametrize("offset, expected", [(-MINUTE, 0), (MINUTE, 1)])
def test_the_device_reminder_goes_out_three_days_before_the_deadline(offset, expected, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    due = ticket.created_at + 11 * DAY
    stalled.sweep(now=due + offset)
    assert reminders(ticket, "device_reminder") == expected


@pytest.mark.parametrize("offset, expected_status", [(-MINUTE, "submitted"), (MINUTE, "cancelled")])
def test_a_ticket_whose_device_never_arrived_is_cancelled_after_fourteen_days(offset, expected_status, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    stalled.sweep(now=ticket.created_at + 14 * DAY + offset)
    ticket.refresh_from_db()
    assert ticket.status == expected_status


def test_the_automatic_cancellation_is_written_with_the_system_as_actor(customer, center):
    ticket = make_ticket(customer=customer, center=center)
    result = stalled.sweep(now=ticket.created_at + 15 * DAY)
    assert result["device_cancellations"] == 1
    event = ticket.events.last()
    assert (event.to_status, event.actor, event.actor_kind) == ("cancelled", None, "system")
    ticket.refresh_from_db()
    assert (ticket.cancelled_by_kind, ticket.cancel_reason) == ("system", "device_not_received")


def test_a_received_device_is_neither_reminded_nor_cancelled(customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    stalled.sweep(now=ticket.created_at + 12 * DAY)
    stalled.sweep(now=ticket.created_at + 30 * DAY)
    ticket.refresh_from_db()
    assert ticket.status == "inspecting" and reminders(ticket, "device_reminder") == 0


def test_a_sweep_run_twice_reminds_once_and_cancels_once(customer, center):
    ticket = make_ticket(customer=customer, center=center)
    at_reminder = ticket.created_at + 12 * DAY
    assert stalled.sweep(now=at_reminder)["device_reminders"] == 1
    assert stalled.sweep(now=at_reminder)["device_reminders"] == 0
    assert reminders(ticket, "device_reminder") == 1
    at_deadline = ticket.created_at + 15 * DAY
    assert stalled.sweep(now=at_deadline)["device_cancellations"] == 1
    assert stalled.sweep(now=at_deadline)["device_cancellations"] == 0
    assert ticket.events.filter(to_status="cancelled").count() == 1


def test_a_ticket_found_only_after_its_deadline_is_cancelled_without_a_late_reminder(customer, center):
    ticket = make_ticket(customer=customer, center=center)
    result = stalled.sweep(now=ticket.created_at + 20 * DAY)
    assert result == {"device_reminders": 0, "device_cancellations": 1, "contact_reminders": 0, "contact_cancellations": 0}


def test_the_arrival_window_is_configurable(settings, customer, center):
    settings.DEVICE_ARRIVAL_DAYS = 7
    settings.DEVICE_REMINDER_DAYS_BEFORE = 2
    ticket = make_ticket(customer=customer, center=center)
    stalled.sweep(now=ticket.created_at + 5 * DAY + MINUTE)
    assert reminders(ticket, "device_reminder") == 1
    stalled.sweep(now=ticket.created_at + 7 * DAY + MINUTE)
    assert Ticket.objects.get(pk=ticket.pk).status == "cancelled"


# --- a contact request goes unanswered ----------------------------------------------


def ask(ticket, respond_by):
    return ContactRequest.ask(ticket, by=mover(), kind="missing_information", message="Which colour is it?", respond_by=respond_by)


@pytest.mark.parametrize("offset, expected", [(-MINUTE, 0), (MINUTE, 1)])
def test_the_answer_reminder_goes_out_a_day_before_the_deadline(offset, expected, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    deadline = timezone.now() + 5 * DAY
    request = ask(ticket, deadline)
    stalled.sweep(now=deadline - 24 * timedelta(hours=1) + offset)
    assert reminders(ticket, "contact_reminder") == expected
    request.refresh_from_db()
    assert (request.reminder_sent_at is not None) == bool(expected)


@pytest.mark.parametrize("offset, expected_status", [(-MINUTE, "awaiting_parts"), (MINUTE, "cancelled")])
def test_an_unanswered_request_cancels_the_ticket_at_its_deadline(offset, expected_status, customer, center):
    ticket = make_ticket_at("awaiting_parts", customer=customer, center=center)
    deadline = timezone.now() + 2 * DAY
    ask(ticket, deadline)
    stalled.sweep(now=deadline + offset)
    ticket.refresh_from_db()
    assert ticket.status == expected_status
    if expected_status == "cancelled":
        assert (ticket.cancelled_by_kind, ticket.cancel_reason) == ("system", "no_response")


def test_an_answered_request_cancels_nothing(customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    deadline = timezone.now() + DAY
    request = ask(ticket, deadline)
    request.answer("It is blue.")
    stalled.sweep(now=deadline + DAY)
    assert Ticket.objects.get(pk=ticket.pk).status == "inspecting"
    assert reminders(ticket, "contact_reminder") == 0


def test_a_ticket_in_testing_is_not_cancelled_by_an_old_request(customer, center):
    ticket = make_ticket_at("testing", customer=customer, center=center)
    deadline = timezone.now() + DAY
    ask(ticket, deadline)
    stalled.sweep(now=deadline + DAY)
    assert Ticket.objects.get(pk=ticket.pk).status == "testing"


def test_an_answer_after_the_automatic_cancellation_is_refused(customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    deadline = timezone.now() + DAY
    request = ask(ticket, deadline)
    stalled.sweep(now=deadline + MINUTE)
    with pytest.raises(ValidationError):
        request.answer("Sorry, I was away.")
    request.refresh_from_db()
    assert request.responded_at is None


def test_the_job_runs_the_sweep(customer, center):
    assert sweep_stalled_tickets() == {
        "device_reminders": 0,
        "device_cancellations": 0,
        "contact_reminders": 0,
        "contact_cancellations": 0,
    }


# --- races (PostgreSQL: real row locks, two connections) --------------------------------


def _in_thread(target, outcome):
    def run():
        try:
            outcome["result"] = target()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("attempt", range(3))
def test_a_clerk_receiving_the_device_in_the_same_minute_as_the_sweep_leaves_one_outcome(attempt):
    from accounts.models import COUNTER_CLERK

    from .factories import make_staff

    center = make_center()
    clerk = make_staff(COUNTER_CLERK, [center])
    ticket = make_ticket(center=center)
    now = ticket.created_at + 14 * DAY + MINUTE
    start = threading.Barrier(2)
    sweep_outcome, clerk_outcome = {}, {}

    def sweep():
        start.wait(5)
        return stalled.cancel_devices_not_received(now)

    def receive():
        mine = Ticket.objects.get(pk=ticket.pk)
        start.wait(5)
        return mine.perform("receive_device", by=clerk)

    threads = [_in_thread(sweep, sweep_outcome), _in_thread(receive, clerk_outcome)]
    for thread in threads:
        thread.join(15)
    ticket.refresh_from_db()
    events = list(StageEvent.objects.filter(ticket=ticket, from_status="submitted").values_list("to_status", flat=True))
    assert len(events) == 1 and events[0] == ticket.status
    if ticket.status == "inspecting":
        assert "result" in clerk_outcome and sweep_outcome["result"] == 0
    else:
        assert ticket.status == "cancelled"
        assert isinstance(clerk_outcome.get("error"), TicketChanged)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("attempt", range(3))
def test_a_customer_answering_in_the_same_minute_as_the_sweep_leaves_one_outcome(attempt):
    center = make_center()
    ticket = make_ticket_at("inspecting", center=center)
    deadline = timezone.now() + DAY
    request = ask(ticket, deadline)
    start = threading.Barrier(2)
    sweep_outcome, answer_outcome = {}, {}

    def sweep():
        start.wait(5)
        return stalled.cancel_unanswered(deadline + MINUTE)

    def answer():
        mine = ContactRequest.objects.get(pk=request.pk)
        start.wait(5)
        return mine.answer("Blue, with a cracked corner.")

    threads = [_in_thread(sweep, sweep_outcome), _in_thread(answer, answer_outcome)]
    for thread in threads:
        thread.join(15)
    ticket.refresh_from_db()
    request.refresh_from_db()
    if ticket.status == "cancelled":
        assert request.responded_at is None
        assert isinstance(answer_outcome.get("error"), ValidationError)
    else:
        assert ticket.status == "inspecting"
        assert request.responded_at is not None and answer_outcome["result"] is True
        assert sweep_outcome["result"] == 0
    assert ticket.events.filter(to_status="cancelled").count() == (ticket.status == "cancelled")
