"""Tracking a repair without an account.

``/track/`` asks for the ticket number and a second factor: the last four
digits of the contact phone, or the contact email. Every failure (a number
that cannot be one, no such ticket, a wrong second factor) gets the same
message and the same status, so the page does not tell which numbers exist,
and is counted against the client. After ``TRACK_MAX_FAILURES`` failures
within ``TRACK_WINDOW_SECONDS`` the client gets HTTP 429 without anything
being checked, until the window (which starts at its first failure) ends. A
success does not wipe the count: one right guess must not buy more tries.
An empty field is simply asked for again: no look-up, nothing counted.

The client is ``REMOTE_ADDR``. Behind a reverse proxy or load balancer,
rewriting it from ``X-Forwarded-For`` belongs to the proxy configuration
(e.g. nginx ``real_ip``, gunicorn ``--forwarded-allow-ips``), not to this
view: a header the client can write is no basis for a throttle. The counts
live in Django's cache, so every app server must share one (Redis).

``/t/<token>/`` is the signed link of the QR code and the messages: it
shows progress only — no name, contact, address, IMEI, pickup code or photo.
"""

import math
import re
import time
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_safe

from .. import numbers, tracking
from ..forms import TrackForm
from ..models import Ticket
from .customer import stage_timeline

DEFAULT_MAX_FAILURES = 10
DEFAULT_WINDOW_SECONDS = 15 * 60

_FOUR_DIGITS = re.compile(r"[0-9]{4}")
_SPACING = re.compile(r"[\s\-]+")


# --- The throttle ------------------------------------------------------------------------


def _limits():
    return (
        getattr(settings, "TRACK_MAX_FAILURES", DEFAULT_MAX_FAILURES),
        getattr(settings, "TRACK_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS),
    )


def _client(request):
    return request.META.get("REMOTE_ADDR") or "unknown"


def _keys(client):
    return f"track:failures:{client}", f"track:since:{client}"


def _seconds_blocked(client):
    """How long this client must still wait, or 0 when it may try."""
    max_failures, window = _limits()
    count_key, since_key = _keys(client)
    values = cache.get_many([count_key, since_key])
    if values.get(count_key, 0) < max_failures:
        return 0
    since = values.get(since_key, time.time())
    return max(1, math.ceil(since + window - time.time()))


def _count_failure(client):
    _max_failures, window = _limits()
    count_key, since_key = _keys(client)
    # add() only starts a window; incr() is atomic on Redis and memcached. The
    # start is added second so that it never expires before the count.
    cache.add(count_key, 0, timeout=window)
    cache.add(since_key, time.time(), timeout=window)
    try:
        cache.incr(count_key)
    except ValueError:  # expired between add() and incr()
        cache.set(count_key, 1, timeout=window)


# --- The look-up --------------------------------------------------------------------------------


def _matches(ticket, factor):
    """Constant-time comparison of the second factor with the ticket's contact details."""
    factor = factor.strip()
    if "@" in factor:
        expected = (ticket.contact_email or "").strip().lower() if ticket else ""
        return constant_time_compare(factor.lower(), expected or "\0") and bool(expected)
    digits = _SPACING.sub("", factor)
    phone = re.sub(r"[^0-9]", "", str(ticket.contact_phone or "")) if ticket else ""
    expected = phone[-4:] if len(phone) >= 4 else ""
    return bool(_FOUR_DIGITS.fullmatch(digits)) and constant_time_compare(digits, expected or "\0") and bool(expected)


def _find(number_text, factor):
    number = numbers.parse(number_text)
    ticket = Ticket.objects.filter(number=number).first() if number else None
    # Compare even when there is no ticket, so both failures take the same path.
    if _matches(ticket, factor) and ticket is not None:
        return ticket
    return None


# --- Views ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def track(request):
    if request.method == "POST":
        client = _client(request)
        blocked = _seconds_blocked(client)
        if blocked:
            minutes = math.ceil(blocked / 60)
            message = ngettext(
                "Too many attempts. Try again in %(minutes)d minute.",
                "Too many attempts. Try again in %(minutes)d minutes.",
                minutes,
            ) % {"minutes": minutes}
            form = TrackForm(initial={"number": request.POST.get("number", "")[:40]})
            context = {"form": form, "nav": "track", "throttled": message}
            response = render(request, "tickets/customer/track.html", context, status=429)
            response["Retry-After"] = str(blocked)
            return response
        form = TrackForm(request.POST)
        if form.is_valid():
            ticket = _find(form.cleaned_data["number"], form.cleaned_data["factor"])
            if ticket is not None:
                return redirect(tracking.tracking_path(ticket))
            _count_failure(client)
            form.add_error(
                None,
                _("We could not find a ticket with these details. Check the ticket number and the phone digits or email."),
            )
    else:
        form = TrackForm()
    return render(request, "tickets/customer/track.html", {"form": form, "nav": "track"})


@require_safe
def tracked(request, token):
    number = tracking.number_from_token(token)
    if number is None:
        raise Http404
    ticket = get_object_or_404(Ticket.objects.select_related("device_model").prefetch_related("events"), number=number)
    ticket_path = reverse("tickets:ticket", args=[ticket.number])
    context = {
        "ticket": ticket,
        "nav": "track",
        "timeline": stage_timeline(ticket),
        "public": True,
        "ticket_path": ticket_path,
        "login_url": f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': ticket_path})}",
    }
    response = render(request, "tickets/customer/tracked.html", context)
    response["X-Robots-Tag"] = "noindex"
    return response
