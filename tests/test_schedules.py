"""The background schedules exist and point at real jobs."""

import pytest
from django.utils.module_loading import import_string
from django_q.models import Schedule

pytestmark = pytest.mark.django_db


def test_every_schedule_runs_a_real_job_with_the_intended_interval():
    schedules = {s.func: s.minutes for s in Schedule.objects.all()}
    assert schedules == {
        "tickets.tasks.sweep_stalled_tickets": 15,
        "tickets.tasks.retry_notifications": 1,
        "tickets.tasks.purge_staged_uploads": 60,
    }
    for func in schedules:
        assert callable(import_string(func))


def test_retry_notifications_requeues_what_is_due(customer, center, settings):
    from datetime import timedelta

    from django.utils import timezone

    from tickets.models import Notification
    from tickets.tasks import retry_notifications

    from .factories import make_ticket

    settings.SMS_BACKEND = "tickets.sms.LocmemSmsBackend"
    ticket = make_ticket(customer=customer, center=center)
    Notification.objects.filter(ticket=ticket, channel="sms").update(
        status="failed", next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert retry_notifications() == 1  # jobs run inline in tests
    assert Notification.objects.get(ticket=ticket, channel="sms").status == "sent"
    assert retry_notifications() == 0
