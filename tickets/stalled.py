"""Tickets that stall: remind the customer, then cancel automatically.

Two rules (DESIGN.md), run by the ``sweep_stalled_tickets`` job every 15 minutes:

- the device never arrives: a ticket still ``submitted`` DEVICE_ARRIVAL_DAYS
  after it was created is cancelled ("device not received in time");
  DEVICE_REMINDER_DAYS_BEFORE days earlier the customer is reminded;
- a contact request is not answered: when its deadline passes the ticket is
  cancelled ("no response to a contact request"); CONTACT_REMINDER_HOURS_BEFORE
  hours earlier the customer is reminded.

Race safety: reminders are claimed with one conditional UPDATE per batch and
their messages are keyed, so nothing is sent twice. Each cancellation locks
its ticket row (``select_for_update(skip_locked=True)``), re-checks the rule
under the lock and goes through ``Ticket.perform`` with the system as actor.
A clerk receiving the device or a customer answering takes the same row lock
(``perform``'s conditional UPDATE, ``ContactRequest.answer``), so whichever
commits first wins and the other sees the result.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import notify
from .models import CancelReason, ContactRequest, StageChangeError, Ticket


def _batch():
    return settings.STALLED_SWEEP_BATCH


def _remind(due, *, stamp, order_by, related, record, now):
    """Claim the due rows with one conditional UPDATE of ``stamp`` and record their reminders."""
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=True, of=("self",)).order_by(order_by).values_list("pk", flat=True)[: _batch()]
        )
        model = due.model
        model.objects.filter(pk__in=ids, **{f"{stamp}__isnull": True}).update(**{stamp: now})
        pending = []
        for row in model.objects.filter(pk__in=ids).select_related(*related):
            pending += record(row)
        notify.queue_on_commit(pending)
    return len(ids)


def send_device_reminders(now):
    return _remind(
        Ticket.objects.due_device_reminder(now),
        stamp="device_reminder_sent_at",
        order_by="created_at",
        related=("customer", "device_model", "service_center"),
        record=notify.record_device_reminder,
        now=now,
    )


def send_contact_reminders(now):
    return _remind(
        ContactRequest.objects.due_reminder(now),
        stamp="reminder_sent_at",
        order_by="respond_by",
        related=("ticket__customer", "ticket__device_model", "ticket__service_center"),
        record=notify.record_contact_reminder,
        now=now,
    )


def _cancel_each(ticket_ids, still_due, reason):
    """Cancel each ticket as the system, if the rule still holds under its row lock."""
    cancelled = 0
    for pk in ticket_ids:
        with transaction.atomic():
            ticket = (
                Ticket.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("customer", "device_model", "service_center")
                .filter(pk=pk)
                .first()
            )
            if ticket is None or not still_due(ticket):
                continue
            try:
                ticket.perform("cancel", by=None, reason=reason)
            except StageChangeError:
                continue  # someone acted on it a moment ago: they win
            cancelled += 1
    return cancelled


def cancel_devices_not_received(now):
    ids = list(Ticket.objects.overdue_for_device(now).order_by("created_at").values_list("pk", flat=True)[: _batch()])
    return _cancel_each(
        ids,
        lambda ticket: Ticket.objects.overdue_for_device(now).filter(pk=ticket.pk).exists(),
        CancelReason.DEVICE_NOT_RECEIVED,
    )


def cancel_unanswered(now):
    ids = list(
        ContactRequest.objects.overdue(now).order_by("respond_by").values_list("ticket_id", flat=True).distinct()[: _batch()]
    )
    return _cancel_each(
        dict.fromkeys(ids),
        lambda ticket: ContactRequest.objects.overdue(now).filter(ticket=ticket).exists(),
        CancelReason.NO_RESPONSE,
    )


def sweep(now=None):
    """One pass of every rule; returns how many of each it did."""
    now = now or timezone.now()
    return {
        "device_reminders": send_device_reminders(now),
        "device_cancellations": cancel_devices_not_received(now),
        "contact_reminders": send_contact_reminders(now),
        "contact_cancellations": cancel_unanswered(now),
    }
