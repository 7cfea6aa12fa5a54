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

The client is the address the first trusted proxy saw (``client_address``:
REMOTE_ADDR without a proxy; with ``TRACK_TRUSTED_PROXIES = n``, the n-th
X-Forwarded-For entry from the right, which the client cannot forge), an
IPv6 address counted as its /64. Each attempt is counted before the look-up
(an atomic incr) and given back on success, so a burst of parallel requests
cannot outrun the limit. Guesses at one ticket number are limited as well
(twice the per-client limit), whichever address they come from. The counts
live in Django's cache, so every app server must share one (Redis).

``/t/<token>/`` is the signed link of the QR code and the messages: it
shows progress only — no name, contact, address, IMEI, pickup code or photo.
"""

import ipaddress
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


def client_address(request):
    """Who is asking, for throttling: the address the first trusted proxy saw.

    With ``TRACK_TRUSTED_PROXIES = n`` (the number of proxies in front of the
    app that append to X-Forwarded-For), the n-th address from the right of
    that header; with 0 (no proxy), REMOTE_ADDR. An IPv6 address counts as its
    /64 network, which is what one subscriber usually holds.
    """
    address = request.META.get("REMOTE_ADDR") or ""
    proxies = getattr(settings, "TRACK_TRUSTED_PROXIES", 0)
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _keys(subject):
    return f"track:failures:{subject}", f"track:since:{subject}"


def _seconds_left(subject, window):
    since = cache.get(_keys(subject)[1], time.time())
    return max(1, math.ceil(since + window - time.time()))


def _take_attempt(subject, max_failures, window):
    """Count one attempt against ``subject`` before looking; 0 if allowed, else seconds to wait.

    Counting first (an atomic incr) means a burst of parallel requests cannot
    all slip past the check before any of them is counted.
    """
    count_key, since_key = _keys(subject)
    # add() only starts a window; the start is added second so it never expires before the count.
    cache.add(count_key, 0, timeout=window)
    cache.add(since_key, time.time(), timeout=window)
    try:
        count = cache.incr(count_key)
    except ValueError:  # expired between add() and incr()
        cache.set(count_key, 1, timeout=window)
        count = 1
    if count > max_failures:
        return _seconds_left(subject, window)
    return 0


def _give_back(subject):
    """A successful look-up was counted in advance: take it back (it is not a failure)."""
    try:
        cache.decr(_keys(subject)[0])
    except ValueError:
        pass


def _already_blocked(subject, max_failures, window):
    return _seconds_left(subject, window) if cache.get(_keys(subject)[0], 0) >= max_failures else 0


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
        max_failures, window = _limits()
        client = f"client:{client_address(request)}"
        blocked = _already_blocked(client, max_failures, window)
        form = TrackForm(request.POST)
        if not blocked and form.is_valid():
            blocked = _take_attempt(client, max_failures, window)
            number = numbers.parse(form.cleaned_data["number"])
            per_ticket = f"number:{number}" if number else None
            if not blocked and per_ticket:
                # Guesses at one ticket from many addresses are limited too.
                blocked = _already_blocked(per_ticket, max_failures * 2, window)
            if not blocked:
                ticket = _find(form.cleaned_data["number"], form.cleaned_data["factor"])
                if ticket is not None:
                    _give_back(client)
                    return redirect(tracking.tracking_path(ticket))
                if per_ticket:
                    _take_attempt(per_ticket, max_failures * 2, window)
                form.add_error(
                    None,
                    _("We could not find a ticket with these details. Check the ticket number and the phone digits or email."),
                )
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
