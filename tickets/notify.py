"""What is sent on which event, through which channel.

Four things reach a customer: a stage change (including an automatic
cancellation), a new contact request, a reminder to answer one, and a
reminder to send the device. Each goes out on the channels the customer
chose: on the website (always), by email and by SMS.

How a message travels:

1. ``record_*`` runs inside the transaction that caused it (``Ticket.perform``,
   the contact request, the reminder sweep) and writes one ``Notification``
   row per channel. The in-app row is delivered by being written; email and
   SMS rows start ``pending``. Every row has a unique ``key`` ("event:42:email"),
   so a retried or duplicated job cannot create a second one.
2. After commit, ``queue()`` puts one ``tickets.tasks.send_notification`` job
   per pending row on the django-q2 queue.
3. ``send()`` claims the row with a conditional UPDATE (pending/failed →
   sending), sends, and records the outcome. A failure is recorded with its
   error and retried with back-off by the ``retry_notifications`` schedule;
   one channel failing never blocks another, nor the stage change itself.
   A claim older than NOTIFICATION_CLAIM_SECONDS (the worker died mid-send)
   may be taken again.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from . import sms
from .models import DeliveryStatus, Notification, NotificationChannel, NotificationKind, Status
from .tracking import tracking_url

logger = logging.getLogger(__name__)

# The template folder name for each kind of message: templates/emails/<name>_*.txt/html
TEMPLATE_NAMES = {
    NotificationKind.STAGE_CHANGE: "stage_change",
    NotificationKind.CONTACT_REQUEST: "contact_request",
    NotificationKind.CONTACT_REMINDER: "contact_reminder",
    NotificationKind.DEVICE_REMINDER: "device_reminder",
}


# --- Which channels -------------------------------------------------------------------


def channels_for(ticket):
    """(channel, address) pairs this ticket's customer receives messages on."""
    customer = ticket.customer
    channels = [(NotificationChannel.IN_APP, "")]
    email = ticket.contact_email or customer.email
    if customer.notify_by_email and email:
        channels.append((NotificationChannel.EMAIL, email))
    phone = ticket.contact_phone or customer.phone
    if customer.notify_by_sms and phone:
        channels.append((NotificationChannel.SMS, str(phone)))
    return channels


# --- What it says ------------------------------------------------------------------------


def _context(kind, ticket, event=None, contact_request=None):
    site = settings.SITE_URL.rstrip("/")
    context = {
        "ticket": ticket,
        "customer_name": ticket.contact_name,
        "number": ticket.number,
        "device": ticket.device_label,
        "center": ticket.service_center,
        "tracking_url": tracking_url(ticket),
        "ticket_url": site + reverse("tickets:ticket", args=[ticket.number]),
        "event": event,
        "contact_request": contact_request,
    }
    if event is not None:
        context["stage"] = Status(event.to_status).label
        context["is_new"] = event.from_status == ""
        context["public_note"] = event.public_note
    if kind == NotificationKind.DEVICE_REMINDER:
        context["deadline"] = ticket.created_at + timedelta(days=settings.DEVICE_ARRIVAL_DAYS)
    return context


def render_message(kind, ticket, *, event=None, contact_request=None, language=None, html=True):
    """Subject, plain body, SMS text and (unless ``html=False``) HTML body, in the customer's language."""
    name = TEMPLATE_NAMES[kind]
    with translation.override(language or ticket.customer.language):
        context = _context(kind, ticket, event, contact_request)
        subject = " ".join(render_to_string(f"emails/{name}_subject.txt", context).split())
        return {
            "subject": subject[:200],
            "body": render_to_string(f"emails/{name}_body.txt", context).strip(),
            "html": render_to_string(f"emails/{name}_body.html", context) if html else "",
            "sms": " ".join(render_to_string(f"emails/{name}_sms.txt", context).split()),
        }


# --- Recording (inside the causing transaction) --------------------------------------------


def _record(kind, ticket, key, *, event=None, contact_request=None):
    # The HTML part is rendered when the email is sent, not here in the caller's transaction.
    message = render_message(kind, ticket, event=event, contact_request=contact_request, html=False)
    now = timezone.now()
    rows = []
    for channel, address in channels_for(ticket):
        in_app = channel == NotificationChannel.IN_APP
        rows.append(
            Notification(
                ticket=ticket,
                recipient=ticket.customer,
                kind=kind,
                channel=channel,
                event=event,
                contact_request=contact_request,
                key=f"{key}:{channel}",
                address=address,
                subject=message["subject"],
                body=message["sms"] if channel == NotificationChannel.SMS else message["body"],
                status=DeliveryStatus.SENT if in_app else DeliveryStatus.PENDING,
                sent_at=now if in_app else None,
            )
        )
    # A row whose key exists already is skipped: recorded before, never twice.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return list(
        Notification.objects.filter(key__in=[row.key for row in rows], status=DeliveryStatus.PENDING).values_list(
            "pk", flat=True
        )
    )


def record_stage_change(event):
    return _record(NotificationKind.STAGE_CHANGE, event.ticket, f"event:{event.pk}", event=event)


def record_contact_request(contact_request):
    return _record(
        NotificationKind.CONTACT_REQUEST,
        contact_request.ticket,
        f"contact:{contact_request.pk}:created",
        contact_request=contact_request,
    )


def record_contact_reminder(contact_request):
    return _record(
        NotificationKind.CONTACT_REMINDER,
        contact_request.ticket,
        f"contact:{contact_request.pk}:reminder",
        contact_request=contact_request,
    )


def record_device_reminder(ticket):
    return _record(NotificationKind.DEVICE_REMINDER, ticket, f"device-reminder:{ticket.pk}")


def queue(notification_pks):
    """Put one send job per pending notification on the queue (call after commit)."""
    from django_q.tasks import async_task

    for pk in notification_pks:
        async_task("tickets.tasks.send_notification", pk, task_name=f"notification-{pk}")


def queue_on_commit(notification_pks):
    if notification_pks:
        transaction.on_commit(lambda: queue(notification_pks))


# --- Sending (in the worker) -------------------------------------------------------------------


class Outcome:
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


def _claim(pk, now):
    stale = now - timedelta(seconds=settings.NOTIFICATION_CLAIM_SECONDS)
    return (
        Notification.objects.filter(pk=pk)
        .filter(
            Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
            | Q(status=DeliveryStatus.SENDING, last_attempt_at__lt=stale)
        )
        .update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=None)
    )


def _send_email(notification, message):
    email = EmailMultiAlternatives(
        subject=message["subject"],
        body=message["body"],
        to=[notification.address],
        headers={"X-Ticket-Number": notification.ticket.number},
    )
    email.attach_alternative(message["html"], "text/html")
    email.send(fail_silently=False)


def send(pk):
    """Deliver one notification; safe to run twice or concurrently."""
    now = timezone.now()
    if not _claim(pk, now):
        return Outcome.SKIPPED
    notification = Notification.objects.select_related(
        "ticket__customer", "ticket__device_model", "ticket__service_center", "event", "contact_request"
    ).get(pk=pk)
    try:
        if notification.channel == NotificationChannel.EMAIL:
            message = render_message(
                notification.kind,
                notification.ticket,
                event=notification.event,
                contact_request=notification.contact_request,
            )
            _send_email(notification, message)
        elif notification.channel == NotificationChannel.SMS:
            sms.send(notification.address, notification.body)
    except Exception as exc:  # any channel failure is recorded and retried, never raised
        logger.warning("Notification %s (%s) failed: %s", pk, notification.channel, exc)
        retries = settings.NOTIFICATION_RETRY_MINUTES
        gave_up = notification.attempts > len(retries)
        Notification.objects.filter(pk=pk).update(
            status=DeliveryStatus.GAVE_UP if gave_up else DeliveryStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=None if gave_up else now + timedelta(minutes=retries[notification.attempts - 1]),
        )
        return Outcome.FAILED
    Notification.objects.filter(pk=pk).update(status=DeliveryStatus.SENT, sent_at=timezone.now(), error="")
    return Outcome.SENT


def due_for_retry(now=None):
    """Failed sends whose back-off has passed, and pending ones whose job was lost."""
    now = now or timezone.now()
    lost = now - timedelta(seconds=settings.NOTIFICATION_CLAIM_SECONDS)
    return Notification.objects.filter(
        Q(status=DeliveryStatus.FAILED, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.PENDING, created_at__lt=lost)
        | Q(status=DeliveryStatus.SENDING, last_attempt_at__lt=lost)
    ).values_list("pk", flat=True)
