"""django-q2 entry points: thin and idempotent; the work lives in the model layer.

Schedules (created by the migration tickets/0003_schedules.py, see docs/operations.md):
- ``sweep_stalled_tickets`` every 15 minutes: reminders and automatic cancellations;
- ``retry_notifications`` every minute: failed sends whose back-off has passed;
- ``purge_staged_uploads`` hourly: photos staged on a submit form that never completed.
"""

from django.utils import timezone

from . import notify, stalled


def send_notification(notification_pk):
    return notify.send(notification_pk)


def retry_notifications():
    pks = list(notify.due_for_retry(timezone.now())[:500])
    notify.queue(pks)
    return len(pks)


def sweep_stalled_tickets():
    return stalled.sweep()


def purge_staged_uploads():
    from .models import StagedUpload

    return StagedUpload.delete_stale()
