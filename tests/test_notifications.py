"""Customers hear about every change on the channels they chose; every send is recorded."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from tickets import notify, sms
from tickets.models import ContactRequest, Notification

from .factories import make_customer, make_ticket, make_ticket_at, mover


@pytest.fixture(autouse=True)
def _outboxes(settings):
    settings.SMS_BACKEND = "tickets.sms.LocmemSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sms.outbox.clear()


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """Run the block and every job it queued once its transaction commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def channels(ticket, **filters):
    return sorted(ticket.notifications.filter(**filters).values_list("channel", "status"))


def test_a_stage_change_reaches_every_channel_and_is_recorded(sent, customer, center, clerk):
    ticket = make_ticket(customer=customer, center=center)
    mail.outbox.clear()
    sms.outbox.clear()
    with sent():
        event = ticket.perform("receive_device", by=clerk, public_note="Arrived safely, no visible damage.")
    assert channels(ticket, event=event) == [("email", "sent"), ("in_app", "sent"), ("sms", "sent")]
    (email,) = mail.outbox
    assert email.to == ["wei@example.com"]
    assert ticket.number in email.subject and "Inspecting" in email.subject
    assert "Arrived safely, no visible damage." in email.body
    assert "/t/" in email.body and ticket.number in email.body
    (sms_message,) = sms.outbox
    assert sms_message["to"] == "+8613800138000" and ticket.number in sms_message["text"]
    record = ticket.notifications.get(event=event, channel="email")
    assert record.address == "wei@example.com" and record.attempts == 1 and record.sent_at is not None


def test_a_new_ticket_is_confirmed(sent, customer, center):
    with sent():
        ticket = make_ticket(customer=customer, center=center)
    assert ("email", "sent") in channels(ticket)
    assert "received" in mail.outbox[0].subject


def test_the_html_email_has_no_external_resources(sent, customer, center, clerk):
    ticket = make_ticket(customer=customer, center=center)
    with sent():
        ticket.perform("receive_device", by=clerk, public_note="<script>alert(1)</script>")
    html, mimetype = mail.outbox[-1].alternatives[0]
    assert mimetype == "text/html"
    assert not re.search(r"<(img|link|script|iframe|object|embed)\b", html, re.I)
    assert "url(" not in html and "@import" not in html
    assert "&lt;script&gt;" in html  # notes are escaped in HTML
    assert "<script>alert(1)</script>" in mail.outbox[-1].body  # and plain in the text part


def test_messages_are_in_the_customers_language(sent, center, clerk):
    customer = make_customer(language="zh-hans")
    ticket = make_ticket(customer=customer, center=center)
    with sent():
        ticket.perform("receive_device", by=clerk)
    email = mail.outbox[-1]
    assert "设备检测" in email.subject
    assert "设备检测" in ticket.notifications.get(channel="in_app", event__to_status="inspecting").subject


def test_customers_choose_their_channels(sent, center, clerk):
    customer = make_customer(notify_by_email=False, notify_by_sms=False)
    ticket = make_ticket(customer=customer, center=center)
    with sent():
        ticket.perform("receive_device", by=clerk)
    assert channels(ticket, event__to_status="inspecting") == [("in_app", "sent")]
    assert mail.outbox == [] and sms.outbox == []


def test_a_failing_channel_is_retried_and_blocks_neither_the_others_nor_the_stage_change(sent, customer, center, clerk):
    ticket = make_ticket(customer=customer, center=center)
    with mock.patch("tickets.notify._send_email", side_effect=ConnectionRefusedError("smtp down")), sent():
        event = ticket.perform("receive_device", by=clerk)
    ticket.refresh_from_db()
    assert ticket.status == "inspecting"
    failed = ticket.notifications.get(event=event, channel="email")
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "smtp down" in failed.error
    assert failed.next_attempt_at - failed.last_attempt_at == timedelta(minutes=1)
    assert ticket.notifications.get(event=event, channel="sms").status == "sent"

    assert list(notify.due_for_retry(failed.next_attempt_at - timedelta(seconds=1))) == []
    assert list(notify.due_for_retry(failed.next_attempt_at)) == [failed.pk]
    assert notify.send(failed.pk) == "sent"
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error) == ("sent", 2, "")


def test_after_the_last_retry_the_send_is_given_up_and_says_why(customer, center, clerk, settings):
    settings.NOTIFICATION_RETRY_MINUTES = [1]
    ticket = make_ticket(customer=customer, center=center)
    notification = ticket.notifications.get(channel="email")
    with mock.patch("tickets.notify._send_email", side_effect=OSError("mailbox full")):
        assert notify.send(notification.pk) == "failed"
        assert notify.send(notification.pk) == "failed"
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.next_attempt_at) == ("gave_up", 2, None)
    assert notify.send(notification.pk) == "skipped"


def test_a_duplicated_job_sends_nothing_twice(sent, customer, center, clerk):
    ticket = make_ticket(customer=customer, center=center)
    with sent():
        event = ticket.perform("receive_device", by=clerk)
    mail.outbox.clear()
    for notification in ticket.notifications.filter(event=event):
        assert notify.send(notification.pk) == "skipped"
    assert notify.record_stage_change(event) == []
    assert ticket.notifications.filter(event=event).count() == 3
    assert mail.outbox == []


def test_a_send_claimed_by_a_worker_that_died_is_taken_again_after_the_claim_expires(customer, center, settings):
    ticket = make_ticket(customer=customer, center=center)
    notification = ticket.notifications.get(channel="email")
    Notification.objects.filter(pk=notification.pk).update(status="sending", last_attempt_at=timezone.now())
    assert notify.send(notification.pk) == "skipped"
    Notification.objects.filter(pk=notification.pk).update(
        last_attempt_at=timezone.now() - timedelta(seconds=settings.NOTIFICATION_CLAIM_SECONDS + 1)
    )
    assert notify.send(notification.pk) == "sent"


def test_a_contact_request_is_announced_with_its_deadline(sent, customer, center, technician):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    mail.outbox.clear()
    with sent():
        request = ContactRequest.ask(
            ticket,
            by=technician,
            kind="quote",
            message="The board is water damaged. Repair costs 480 CNY. Go ahead?",
            respond_by=timezone.now() + timedelta(days=3),
        )
    assert channels(ticket, contact_request=request) == [("email", "sent"), ("in_app", "sent"), ("sms", "sent")]
    email = mail.outbox[-1]
    assert "480 CNY" in email.body and "answer" in email.subject
    assert f"/my/tickets/{ticket.number}/" in email.body


def test_the_ready_message_carries_the_pickup_code(sent, customer, center, technician):
    ticket = make_ticket_at("testing", customer=customer, center=center)
    with sent():
        ticket.perform("pass_testing", by=technician)
    assert ticket.pickup_code in mail.outbox[-1].body
    assert ticket.pickup_code in sms.outbox[-1]["text"]


def test_staff_see_every_send_on_the_ticket(sent, customer, center, clerk):
    ticket = make_ticket(customer=customer, center=center)
    with sent():
        ticket.perform("receive_device", by=clerk)
    assert ticket.notifications.count() == 6  # received + inspecting, on three channels


def test_the_system_cancellation_message_names_the_reason(sent, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    with sent():
        ticket.perform("cancel", by=None, reason="device_not_received")
    assert "Device not received in time" in mail.outbox[-1].body


def test_a_customer_without_email_gets_no_email_row(sent, center):
    customer = make_customer()
    ticket = make_ticket(customer=customer, center=center, contact_email="")
    type(customer).objects.filter(pk=customer.pk).update(email="x@example.com")
    customer.refresh_from_db()
    assert {c for c, _ in notify.channels_for(ticket)} == {"in_app", "email", "sms"}
    ticket.contact_email = ""
    ticket.customer.email = ""
    assert {c for c, _ in notify.channels_for(ticket)} == {"in_app", "sms"}


def test_moving_the_ticket_through_every_stage_notifies_every_stage(sent, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    with sent():
        for action in ["receive_device", "order_parts", "start_repair", "send_to_testing", "pass_testing"]:
            ticket.perform(action, by=mover())
    stages = set(ticket.notifications.filter(channel="in_app").values_list("event__to_status", flat=True))
    assert stages == {"submitted", "inspecting", "awaiting_parts", "repairing", "testing", "ready_for_pickup"}


@pytest.mark.parametrize("language, words", [("en", ["Hello", "Ticket number"]), ("zh-hans", ["您好", "工单号"])])
@pytest.mark.parametrize("kind", ["stage_change", "contact_request", "contact_reminder", "device_reminder"])
def test_every_message_renders_in_both_languages_with_number_and_link(kind, language, words, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    event = ticket.events.get()
    request = ContactRequest.ask(
        ticket, by=mover(), kind="quote", message="Repair costs 480 CNY.", respond_by=timezone.now() + timedelta(days=2)
    )
    message = notify.render_message(kind, ticket, event=event, contact_request=request, language=language)
    for part in ("subject", "body", "sms"):
        assert ticket.number in message[part], (part, message[part])
    for word in words:
        assert word in message["body"] and word in message["html"]
    assert "/t/" in message["body"] or f"/my/tickets/{ticket.number}/" in message["body"]
    assert f'lang="{language}"' in message["html"]
    assert not re.search(r"<(img|link|script)\b", message["html"], re.I)
    if language == "zh-hans":
        assert not re.search(r"\b(Your|repair|Please|ticket)\b", message["body"]), message["body"]


def test_text_the_customer_typed_is_escaped_in_the_html_email(sent, customer, center):
    link = '<a href="https://evil.example/login">verify here</a>'
    with sent():
        make_ticket(customer=customer, center=center, device_model=None, device_other=link)
    email = mail.outbox[-1]
    html = email.alternatives[0][0]
    assert link not in html and "&lt;a href=" in html
    assert link in email.body  # plain text stays plain text
