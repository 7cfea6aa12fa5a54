"""What is sent on which event, through which channel.

A stage change registers ``queue_stage_change(event_pk)`` with
``transaction.on_commit``; the job queue (django-q2) then runs
``tickets.tasks.deliver_stage_change``, which calls ``deliver_stage_change``
here. Each (event, channel) pair is unique in the database, so a retried or
duplicated job never sends a message twice.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from .models import DeliveryStatus, Notification, NotificationChannel, NotificationKind, StageEvent, Status


def queue_stage_change(event_pk):
    async_task("tickets.tasks.deliver_stage_change", event_pk, task_name=f"stage-change-{event_pk}")


def stage_change_message(event):
    """Subject and body for the customer, in the customer's language."""
    ticket = event.ticket
    with translation.override(ticket.customer.language):
        stage = Status(event.to_status).label
        if event.from_status == "":
            subject = _("Ticket %(number)s received") % {"number": ticket.number}
            lines = [_("We have your repair ticket %(number)s for %(device)s.") % {"number": ticket.number, "device": ticket.device_label}]
        else:
            subject = _("Ticket %(number)s: %(stage)s") % {"number": ticket.number, "stage": stage}
            lines = [_("Your repair ticket %(number)s is now at the stage “%(stage)s”.") % {"number": ticket.number, "stage": stage}]
        if event.public_note:
            lines.append(event.public_note)
        return str(subject), "\n\n".join(str(line) for line in lines)


def deliver_stage_change(event_pk):
    """Record the in-app notification for one stage event; safe to run twice."""
    event = StageEvent.objects.select_related("ticket__customer", "ticket__device_model").filter(pk=event_pk).first()
    if event is None:
        return None
    if Notification.objects.filter(event=event, channel=NotificationChannel.IN_APP).exists():
        return None
    subject, body = stage_change_message(event)
    try:
        with transaction.atomic():
            return Notification.objects.create(
                ticket=event.ticket,
                recipient=event.ticket.customer,
                kind=NotificationKind.STAGE_CHANGE,
                channel=NotificationChannel.IN_APP,
                event=event,
                subject=subject[:200],
                body=body,
                status=DeliveryStatus.SENT,
                sent_at=timezone.now(),
            )
    except IntegrityError:
        return None  # a twin job got there first
