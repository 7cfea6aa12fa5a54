"""The store-counter terminal (``/counter/``): a clerk takes devices in and hands them back.

Who: staff holding the counter permissions (the Counter clerk and Supervisor
roles); anyone else signed in gets 403, anyone signed out the login page.

Where: one service center at a time. A clerk of several centers chooses
the one they stand at after signing in (``choose_center``); the choice
lives in the session and, offered first next time, on the account. Every
ticket is looked up through ``_ticket_for_counter``: a ticket of another
center, a mistyped number and a ticket that does not exist all answer 404,
whatever the clerk's other centers or a supervisor's reach.

What: one search box that takes a typed ticket number, a scanned QR link
(the scanner types the whole ``/t/<token>/`` URL and Enter), an IMEI or
serial, a phone number, an email or a name; the ticket card with the
actions the clerk may take now; walk-in intake; the printable intake
receipt; the queue of devices waiting to go back. Every stage change is a
POST (CSRF-checked) through ``Ticket.perform`` followed by a redirect; a
page left open while someone else moved the ticket gets a clear message
and changes nothing.
"""

import re
from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.credit import credit_for

from .. import numbers, tracking
from ..forms import (
    CounterCancelForm,
    CounterCenterForm,
    CounterHandOverForm,
    CounterIntakeForm,
    CounterReceiveForm,
    CounterShipBackForm,
    CustomerLookupForm,
    parse_lookup,
)
from ..models import (
    ArrivalMethod,
    HandoverCheck,
    ServiceCenter,
    StageEvent,
    Status,
    Ticket,
    TicketChanged,
    TransitionNotAllowed,
)

# What a user needs to work the counter: take devices in, receive them, hand them over.
COUNTER_PERMISSIONS = ("tickets.add_ticket", "tickets.receive_device", "tickets.hand_over")
SESSION_CENTER = "counter_center"
# A device back within this long after a finished repair is flagged as a repeat repair.
REPEAT_REPAIR_WINDOW = timedelta(days=90)
MAX_SEARCH_RESULTS = 20
MAX_QUEUE_ROWS = 200

# The id prefix of each form on the card, so that two forms never share an input id.
AUTO_IDS = {
    "receive_device": "receive_%s",
    "identity_pickup_code": "code_%s",
    "identity_id_document": "id_%s",
    "ship_back": "ship_%s",
    "cancel": "cancel_%s",
}

# A tracking link anywhere in what was scanned or pasted: …/t/<token>/
_TRACKING_LINK = re.compile(r"/t/([A-Za-z0-9_.:\-]+)/?")


# --- Who and where -------------------------------------------------------------------------


def _may_work_counter(user):
    return user.is_active and user.is_staff and user.has_perms(COUNTER_PERMISSIONS)


def _centers_for(user):
    """The service centers whose counter this user may work."""
    if user.sees_all_centers:
        return ServiceCenter.objects.order_by("name")
    return user.service_centers.order_by("name")


def _current_center(request):
    """The center chosen in this session, or the only one the clerk has; None when a choice is needed.

    Checked against the clerk's centers on every request, so a clerk moved
    to another center cannot keep working the old one.
    """
    centers = _centers_for(request.user)
    chosen = request.session.get(SESSION_CENTER)
    if chosen is not None:
        center = centers.filter(pk=chosen).first()
        if center is not None:
            return center
        del request.session[SESSION_CENTER]
    only = list(centers[:2])
    if len(only) == 1:
        request.session[SESSION_CENTER] = only[0].pk
        return only[0]
    return None


def _counter_staff(view):
    """Signed-in staff with the counter permissions, else the login page (signed out) or 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), "accounts:login")
        if not _may_work_counter(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def counter_view(view):
    """A counter page: counter staff, at a chosen service center (``request.counter_center``)."""

    @_counter_staff
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        center = _current_center(request)
        if center is None:
            query = urlencode({"next": request.get_full_path()}) if request.method in ("GET", "HEAD") else ""
            return redirect(reverse("counter:choose_center") + (f"?{query}" if query else ""))
        request.counter_center = center
        return view(request, *args, **kwargs)

    return wrapper


def _counter_tickets(request, queryset=None):
    """The tickets this clerk may see here: theirs to see (for_staff), and of the current center only."""
    queryset = Ticket.objects.all() if queryset is None else queryset
    return queryset.for_staff(request.user).filter(service_center=request.counter_center)


def _ticket_for_counter(request, number, queryset=None):
    """The ticket with this number at the clerk's current center, or 404 (never 403, never a hint)."""
    normalised = numbers.parse(number)
    if normalised is None:
        raise Http404
    return get_object_or_404(_counter_tickets(request, queryset), number=normalised)


def _with_everything():
    """One ticket with all its card shows, in a fixed number of queries whatever its history."""
    return Ticket.objects.select_related(
        "customer", "device_model", "fault_category", "service_center", "handed_over_by", "warranty_confirmed_by"
    ).prefetch_related(
        Prefetch("events", queryset=StageEvent.objects.select_related("actor")),
        "attachments",
        "contact_requests",
    )


# --- Choosing the center ---------------------------------------------------------------------


def _safe_next(request, default):
    url = request.POST.get("next") or request.GET.get("next")
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return default


@_counter_staff
@require_http_methods(["GET", "HEAD", "POST"])
def choose_center(request):
    centers = _centers_for(request.user)
    next_url = _safe_next(request, reverse("counter:home"))
    if request.method == "POST":
        form = CounterCenterForm(request.POST, centers=centers)
        if form.is_valid():
            center = form.cleaned_data["center"]
            request.session[SESSION_CENTER] = center.pk
            if request.user.counter_center_id != center.pk:
                request.user.counter_center = center
                request.user.save(update_fields=["counter_center"])
            messages.success(request, _("You are working at the counter of %(center)s.") % {"center": center.name})
            return redirect(next_url)
    else:
        remembered = request.session.get(SESSION_CENTER) or request.user.counter_center_id
        form = CounterCenterForm(centers=centers, initial={"center": remembered})
    context = {"form": form, "next": next_url, "has_centers": centers.exists()}
    return render(request, "tickets/counter/choose_center.html", context)


# --- Home: the queue ---------------------------------------------------------------------------


def _queue(queryset, since):
    """(ticket, waiting since) rows of ``queryset``, oldest first, at most MAX_QUEUE_ROWS; and whether there are more."""
    rows = list(queryset.order_by(since, "pk")[: MAX_QUEUE_ROWS + 1])
    return [(ticket, getattr(ticket, since)) for ticket in rows[:MAX_QUEUE_ROWS]], len(rows) > MAX_QUEUE_ROWS


@counter_view
@require_safe
def home(request):
    """The search box and what waits at this counter, oldest first."""
    scope = _counter_tickets(request).select_related("device_model")
    ready, ready_more = _queue(scope.filter(status=Status.READY_FOR_PICKUP), "ready_at")
    to_return, to_return_more = _queue(scope.awaiting_device_return(), "cancelled_at")
    expected, expected_more = _queue(
        scope.filter(status=Status.SUBMITTED, arrival_method=ArrivalMethod.MAIL_IN), "created_at"
    )
    context = {
        "nav": "queue",
        "ready": ready,
        "ready_more": ready_more,
        "to_return": to_return,
        "to_return_more": to_return_more,
        "expected": expected,
        "expected_more": expected_more,
        "now": timezone.now(),
        "autofocus_search": True,
    }
    return render(request, "tickets/counter/home.html", context)


# --- Search ------------------------------------------------------------------------------------


def _scanned_number(text):
    """The ticket number in a scanned or pasted link; "" for a link that is not one of ours; None for no link."""
    if "://" not in text and not text.startswith("/"):
        return None  # typed, not scanned: a serial may contain a slash
    match = _TRACKING_LINK.search(text)
    if match:
        return tracking.number_from_token(match.group(1)) or ""
    found = numbers.FORMATTED_RE.search(text.upper())
    return found.group(0) if found and numbers.parse(found.group(0)) else ""


@counter_view
@require_safe
def search(request):
    text = " ".join(request.GET.get("q", "").split())[:500]
    if not text:
        return redirect("counter:home")
    scope = _counter_tickets(request).select_related("device_model")
    scanned = _scanned_number(text)
    if scanned == "":
        results, more = [], False
        problem = _("This link or QR code is not one of our tickets, or it is damaged. Type the ticket number instead.")
    else:
        queryset = scope.filter(number=scanned) if scanned else scope.search(text)
        results = list(queryset.order_by("-created_at", "-pk")[: MAX_SEARCH_RESULTS + 1])
        more = len(results) > MAX_SEARCH_RESULTS
        results = results[:MAX_SEARCH_RESULTS]
        problem = None
    if len(results) == 1:
        return redirect("counter:ticket", number=results[0].number)
    context = {
        "nav": "search",
        "query": text,
        "results": results,
        "more": more,
        "problem": problem,
        "intake_query": _intake_query(text) if not results and scanned is None else None,
        "autofocus_search": True,
    }
    return render(request, "tickets/counter/search.html", context)


def _intake_query(text):
    """``?find=…`` for an intake started from a search that found nothing, when the text can find a customer."""
    try:
        parse_lookup(text)
    except ValidationError:
        return None
    return urlencode({"find": text})


# --- The ticket card ------------------------------------------------------------------------------


def _device_history(request, ticket):
    """This device's other tickets at this center, newest first, and the repeat-repair warning.

    A device back within REPEAT_REPAIR_WINDOW of a finished repair is a
    repeat repair. The repair may have been done at another of our centers:
    then only its date is told, nothing of that center's ticket.
    """
    history = list(
        _counter_tickets(request)
        .for_device(ticket.imei_or_serial)
        .exclude(pk=ticket.pk)
        .select_related("device_model")
        .order_by("-created_at", "-pk")[:50]
    )
    since = ticket.created_at - REPEAT_REPAIR_WINDOW
    repeat_of = Ticket.objects.filter(
        imei_or_serial=ticket.imei_or_serial, completed_at__gte=since, completed_at__lte=ticket.created_at
    ).exclude(pk=ticket.pk)
    last_repair = repeat_of.order_by("-completed_at").values_list("completed_at", "service_center_id").first()
    repeat = None
    if last_repair is not None:
        completed_at, center_id = last_repair
        repeat = {"completed_at": completed_at, "elsewhere": center_id != request.counter_center.pk}
    return history, repeat


def _action_forms(ticket, user, bound=None):
    """The forms of the actions ``user`` may take on ``ticket`` now; ``bound`` replaces one with its POSTed form."""
    allowed = set(ticket.available_actions(user))
    expected = {"expected_status": ticket.status}
    forms = {}
    if "receive_device" in allowed:
        forms["receive_device"] = CounterReceiveForm(initial=expected, auto_id=AUTO_IDS["receive_device"])
    if "hand_over" in allowed or _may_return_device(ticket, user):
        for check in HandoverCheck.values:
            forms[f"identity_{check}"] = CounterHandOverForm(
                initial={**expected, "check": check},
                auto_id=AUTO_IDS[f"identity_{check}"],
                contact_name=ticket.contact_name,
            )
    if "ship_back" in allowed:
        forms["ship_back"] = CounterShipBackForm(initial=expected, auto_id=AUTO_IDS["ship_back"])
    if "cancel" in allowed:
        forms["cancel"] = CounterCancelForm(initial=expected, auto_id=AUTO_IDS["cancel"])
    if bound is not None:
        name, form = bound
        forms[name] = form
    if "identity_pickup_code" in forms:
        # The customer is there to collect: the code they read out is the next thing typed.
        forms["identity_pickup_code"].fields["pickup_code"].widget.attrs["autofocus"] = True
    return forms


def _may_return_device(ticket, user):
    return (
        ticket.status == Status.CANCELLED
        and ticket.device_at_desk
        and user.has_perm("tickets.hand_over")
        and user.works_at(ticket.service_center_id)
    )


def _render_card(request, ticket, bound=None):
    contact_requests = list(ticket.contact_requests.all())
    history, repeat = _device_history(request, ticket)
    forms = _action_forms(ticket, request.user, bound)
    returning = ticket.status == Status.CANCELLED and "identity_pickup_code" in forms
    context = {
        "nav": "ticket",
        "ticket": ticket,
        "events": ticket.events.all(),
        "attachments": ticket.attachments.all(),
        "open_requests": [c for c in contact_requests if c.is_open],
        "answered_requests": [c for c in contact_requests if not c.is_open],
        "credit": credit_for(ticket.customer),
        "history": history,
        "repeat": repeat,
        "forms": forms,
        "returning": returning,
        "handing_over": "identity_pickup_code" in forms and not returning,
        # The pickup code field takes the focus when the customer is there to collect.
        "autofocus_search": "identity_pickup_code" not in forms,
        "warranty_last_day": ticket.warranty_expires_on - timedelta(days=1) if ticket.warranty_expires_on else None,
    }
    return render(request, "tickets/counter/ticket.html", context)


@counter_view
@require_safe
def ticket_card(request, number):
    return _render_card(request, _ticket_for_counter(request, number, _with_everything()))


# --- Actions on the card -------------------------------------------------------------------------


def _stale(request, ticket, form):
    """True (with a message) when the ticket is no longer in the stage the clerk saw."""
    if form.cleaned_data["expected_status"] == ticket.status:
        return False
    messages.warning(
        request,
        _("This ticket changed while the card was open (it is now “%(stage)s”). Check it and try again.")
        % {"stage": ticket.get_status_display()},
    )
    return True


def _perform(request, ticket, action, form, **details):
    """Ticket.perform with the clerk's form; the message to show when it failed, else None.

    A ValidationError goes onto ``form`` (the card is then shown again with it).
    """
    try:
        ticket.perform(action, by=request.user, **details)
    except TicketChanged as error:
        return str(error)
    except (TransitionNotAllowed, PermissionDenied) as error:
        return str(error) or _("You may not do this on this ticket.")
    except ValidationError as error:
        field = error.code if error.code in ("pickup_code", "reason") and error.code in form.fields else None
        form.add_error(field, error)
    return None


def _act(request, number, action, form_class, name, success, details=lambda form: {}):
    ticket = _ticket_for_counter(request, number, _with_everything())
    form = form_class(request.POST, auto_id=AUTO_IDS[name], **_form_kwargs(form_class, ticket))
    if not form.is_valid():
        return _render_card(request, ticket, bound=(name, form))
    if _stale(request, ticket, form):
        return redirect("counter:ticket", number=ticket.number)
    problem = _perform(request, ticket, action, form, **details(form))
    if problem:
        messages.error(request, problem)
        return redirect("counter:ticket", number=ticket.number)
    if form.errors:
        # perform() reloaded the ticket (dropping what was prefetched): load the card's rows again.
        return _render_card(request, _with_everything().get(pk=ticket.pk), bound=(name, form))
    messages.success(request, success(ticket))
    return redirect("counter:ticket", number=ticket.number)


def _form_kwargs(form_class, ticket):
    return {"contact_name": ticket.contact_name} if form_class is CounterHandOverForm else {}


@counter_view
@require_POST
def receive(request, number):
    return _act(
        request,
        number,
        "receive_device",
        CounterReceiveForm,
        "receive_device",
        lambda ticket: _("Device received for ticket %(number)s. Print the receipt for the customer if they are here.")
        % {"number": ticket.number},
        details=lambda form: {"condition_notes": form.cleaned_data["condition_notes"]},
    )


def _identity_form_name(request):
    check = request.POST.get("check")
    return f"identity_{check}" if check in HandoverCheck.values else "identity_pickup_code"


@counter_view
@require_POST
def hand_over(request, number):
    return _act(
        request,
        number,
        "hand_over",
        CounterHandOverForm,
        _identity_form_name(request),
        lambda ticket: _("Ticket %(number)s is completed: the device was handed over.") % {"number": ticket.number},
        details=lambda form: {**form.details(), "internal_note": form.cleaned_data["internal_note"]},
    )


@counter_view
@require_POST
def return_device(request, number):
    """A cancelled ticket's device goes back to the customer, identity checked as at a hand-over."""
    ticket = _ticket_for_counter(request, number, _with_everything())
    name = _identity_form_name(request)
    form = CounterHandOverForm(request.POST, auto_id=AUTO_IDS[name], contact_name=ticket.contact_name)
    if ticket.status == Status.CANCELLED and ticket.device_returned_at is not None:
        messages.info(request, _already_returned(ticket))
        return redirect("counter:ticket", number=ticket.number)
    if not form.is_valid():
        return _render_card(request, ticket, bound=(name, form))
    if _stale(request, ticket, form):
        return redirect("counter:ticket", number=ticket.number)
    try:
        returned = ticket.mark_device_returned(by=request.user, **form.details())
    except PermissionDenied:
        messages.error(request, _("You may not do this on this ticket."))
        return redirect("counter:ticket", number=ticket.number)
    except ValidationError as error:
        form.add_error("pickup_code" if error.code == "pickup_code" else None, error)
        return _render_card(request, ticket, bound=(name, form))
    if not returned:
        messages.info(request, _already_returned(ticket))
    else:
        messages.success(
            request, _("The device of cancelled ticket %(number)s is back with its owner.") % {"number": ticket.number}
        )
    return redirect("counter:ticket", number=ticket.number)


def _already_returned(ticket):
    if ticket.device_returned_at is None:
        return _("This device is not waiting to be returned.")
    by = ticket.handed_over_by.get_full_name() if ticket.handed_over_by else _("someone")
    return _("This device was already returned, by %(name)s at %(time)s.") % {
        "name": by,
        "time": timezone.localtime(ticket.device_returned_at).strftime("%H:%M"),
    }


@counter_view
@require_POST
def ship_back(request, number):
    return _act(
        request,
        number,
        "ship_back",
        CounterShipBackForm,
        "ship_back",
        lambda ticket: _("Ticket %(number)s is completed: the device is on its way back.") % {"number": ticket.number},
        details=lambda form: {
            "carrier": form.cleaned_data["carrier"],
            "tracking_number": form.cleaned_data["tracking_number"],
        },
    )


@counter_view
@require_POST
def cancel(request, number):
    return _act(
        request,
        number,
        "cancel",
        CounterCancelForm,
        "cancel",
        lambda ticket: _("Ticket %(number)s is cancelled.") % {"number": ticket.number},
        details=lambda form: {"reason": form.cleaned_data["reason"], "note": form.cleaned_data["note"]},
    )


# --- Walk-in intake ---------------------------------------------------------------------------------


def _customers_matching(lookup):
    """Customer accounts (never staff) with this phone number or email address."""
    kind, value = lookup
    accounts = get_user_model().objects.filter(is_staff=False, is_active=True)
    accounts = accounts.filter(phone=value) if kind == "phone" else accounts.filter(email__iexact=value)
    return list(accounts.order_by("full_name", "pk")[:10])


@counter_view
@require_http_methods(["GET", "HEAD", "POST"])
def intake(request):
    """Walk-in intake: find the customer, then one form for the device; the ticket opens already received."""
    center = request.counter_center
    context = {"nav": "intake", "center": center}
    if not center.is_active:
        return render(request, "tickets/counter/intake.html", {**context, "closed": True}, status=403 if request.method == "POST" else 200)

    data = request.POST if request.method == "POST" else request.GET
    lookup_form = CustomerLookupForm(data if "find" in data else None)
    if not lookup_form.is_valid():
        lookup_form.fields["find"].widget.attrs["autofocus"] = True
        return render(request, "tickets/counter/intake.html", {**context, "lookup_form": lookup_form})
    lookup = lookup_form.cleaned_data["find"]
    found = _customers_matching(lookup)
    form_kwargs = {"clerk": request.user, "center": center, "find": lookup, "found": found}

    checking = False
    if request.method == "POST":
        form = CounterIntakeForm(request.POST, request.FILES, **form_kwargs)
        valid = form.is_valid()
        form.keep_photos()
        checking = "check" in request.POST
        if valid and not checking:
            try:
                ticket = form.take_in()
            except IntegrityError:
                # The email was taken by another account between the check and the insert.
                form.add_error("contact_email", _("An account already uses this email address. Look the customer up by it."))
            else:
                messages.success(
                    request,
                    _("Ticket %(number)s is open and the device received. Print the receipt for the customer.")
                    % {"number": ticket.number},
                )
                return redirect("counter:receipt", number=ticket.number)
    else:
        form = CounterIntakeForm(**form_kwargs)
        # The first thing to type: a new customer's name, or the device of the one account found.
        if len(found) <= 1:
            form.fields["device_model" if found else "contact_name"].widget.attrs["autofocus"] = True

    history = repeat = None
    serial = form.cleaned_data.get("imei_or_serial") if form.is_bound and hasattr(form, "cleaned_data") else None
    if serial:
        history = list(
            _counter_tickets(request).for_device(serial).select_related("device_model").order_by("-created_at", "-pk")[:20]
        )
        last = (
            Ticket.objects.filter(imei_or_serial=serial, completed_at__gte=timezone.now() - REPEAT_REPAIR_WINDOW)
            .order_by("-completed_at")
            .values_list("completed_at", "service_center_id")
            .first()
        )
        if last is not None:
            repeat = {"completed_at": last[0], "elsewhere": last[1] != center.pk}
    context.update(
        {
            "lookup": lookup,
            "found": found,
            "form": form,
            "checking": checking,
            "warranty": form.warranty_preview() if form.is_bound else None,
            "history": history,
            "repeat": repeat,
        }
    )
    return render(request, "tickets/counter/intake.html", context)


# --- The intake receipt ---------------------------------------------------------------------------


@counter_view
@require_safe
def receipt(request, number):
    """The intake receipt, for an 80 mm receipt printer or A4; reprinted at any time."""
    queryset = Ticket.objects.select_related("device_model", "fault_category", "service_center")
    ticket = _ticket_for_counter(request, number, queryset)
    if ticket.received_at is None:
        messages.info(request, _("The device has not been received yet: there is no intake receipt to print."))
        return redirect("counter:ticket", number=ticket.number)
    received = (
        ticket.events.filter(to_status=Status.INSPECTING).select_related("actor").order_by("at", "pk").first()
    )
    context = {
        "nav": "ticket",
        "ticket": ticket,
        "received_by": received.actor.get_full_name() if received and received.actor else "",
        "phone_tail": str(ticket.contact_phone)[-4:],
        "track_url": request.build_absolute_uri(reverse("tickets:track")),
        "printed_at": timezone.now(),
        "warranty_last_day": ticket.warranty_expires_on - timedelta(days=1) if ticket.warranty_expires_on else None,
    }
    return render(request, "tickets/counter/receipt.html", context)
