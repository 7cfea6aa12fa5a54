"""django-q2 entry points: thin and idempotent; the work lives in the model layer."""

from . import notify


def deliver_stage_change(event_pk):
    notification = notify.deliver_stage_change(event_pk)
    return notification.pk if notification else None
