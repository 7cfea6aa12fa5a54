"""A customer's service credit, derived from their cancellation history.

Nothing is stored: the credit is computed from the customer's tickets of the
last twelve months, so it heals by itself as cancellations age out.

What weighs against it (DESIGN.md):
- cancelling a ticket yourself, after the first one in the window (everyone
  may change their mind once);
- a ticket the system cancelled because the device never arrived or a
  contact request went unanswered.
Staff cancellations (out of warranty, damage not covered…) are the desk's
decision and never count.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

WINDOW = timedelta(days=365)
FULL = 100
CUSTOMER_CANCELLATION_PENALTY = 15
SYSTEM_CANCELLATION_PENALTY = 25


class Level(models.TextChoices):
    GOOD = "good", _("Good")
    FAIR = "fair", _("Fair")
    LOW = "low", _("Low")


@dataclass(frozen=True)
class Entry:
    number: str
    cancelled_at: object
    reason: str
    penalty: int
    note: str


@dataclass(frozen=True)
class Credit:
    score: int
    level: str
    entries: tuple  # the cancellations of the window, newest first, with their penalty (0 = free)

    @property
    def level_label(self):
        return Level(self.level).label

    @property
    def counted(self):
        return tuple(entry for entry in self.entries if entry.penalty)


def level_for(score):
    if score >= 80:
        return Level.GOOD
    if score >= 50:
        return Level.FAIR
    return Level.LOW


def max_open_online_tickets(credit):
    """How many open tickets this customer may have submitted online; None for no limit."""
    if credit.level == Level.LOW:
        return getattr(settings, "SERVICE_CREDIT_LOW_MAX_OPEN_TICKETS", 1)
    return None


def credit_for(user, now=None):
    from tickets.models import ActorKind, CancelReason, Ticket

    now = now or timezone.now()
    rows = list(
        Ticket.objects.filter(
            customer=user,
            status="cancelled",
            cancelled_at__gte=now - WINDOW,
            cancelled_by_kind__in=[ActorKind.CUSTOMER, ActorKind.SYSTEM],
        )
        .order_by("cancelled_at", "pk")
        .values_list("number", "cancelled_at", "cancelled_by_kind", "cancel_reason")
    )
    entries = []
    customer_cancellations = 0
    for number, cancelled_at, kind, reason in rows:
        label = CancelReason(reason).label if reason else ""
        if kind == ActorKind.CUSTOMER:
            customer_cancellations += 1
            if customer_cancellations == 1:
                entries.append(Entry(number, cancelled_at, label, 0, _("Your first cancellation in twelve months does not count.")))
            else:
                entries.append(Entry(number, cancelled_at, label, CUSTOMER_CANCELLATION_PENALTY, _("You cancelled this ticket.")))
        else:
            entries.append(Entry(number, cancelled_at, label, SYSTEM_CANCELLATION_PENALTY, _("Cancelled automatically.")))
    score = max(0, FULL - sum(entry.penalty for entry in entries))
    return Credit(score=score, level=level_for(score), entries=tuple(reversed(entries)))
