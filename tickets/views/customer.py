"""The customer's pages: start, submit, my tickets, one ticket and its actions.

Every page under ``/my/`` needs a signed-in customer and finds the ticket
through ``_ticket_for_customer``: someone else's ticket, a mistyped number
and a ticket that does not exist all answer 404, so nobody learns that a
number exists. Every state change is a POST (CSRF-checked) followed by a
redirect; a form that does not validate re-renders with what was typed.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts import credit as service_credit

from .. import numbers
from ..forms import ContactReplyForm, CustomerCancelForm, RatingForm
from ..models import (
    CUSTOMER_CANCELLABLE,
    ActorKind,
    Notification,
    Rating,
    ReturnMethod,
    Status,
    Ticket,
    TicketChanged,
    TransitionNotAllowed,
)

TICKETS_PER_PAGE = 10


@require_safe
def start(request):
    return render(request, "tickets/customer/start.html", {"nav": "start"})


# --- Finding the ticket ----------------------------------------------------------------


def _ticket_for_customer(request, number, queryset=None):
    """The signed-in customer's own ticket with this number, or 404 (never 403, never a hint)."""
    normalised = numbers.parse(number)
    if normalised is None:
        raise Http404
    queryset = Ticket.objects.all() if queryset is None else queryset
    return get_object_or_404(queryset.for_customer(request.user), number=normalised)


def _with_everything():
    """One ticket with all its page shows, in a fixed number of queries whatever its history."""
    return Ticket.objects.select_related("device_model", "fault_category", "service_center", "rating").prefetch_related(
        "events", "attachments", "contact_requests"
    )


# --- The progress timeline -----------------------------------------------------------------


@dataclass
class Step:
    status: str
    label: str
    state: str  # "reached", "current" or "pending" (the CSS classes of .timeline)
    reached_at: datetime | None = None
    notes: list = field(default_factory=list)  # the public notes of the events into this stage


def _stages_in_customer_order(ticket, reached):
    ready = Status.READY_FOR_PICKUP
    if Status.AWAITING_RETURN_SHIPMENT in reached or (
        Status.READY_FOR_PICKUP not in reached and ticket.return_method == ReturnMethod.SHIP_BACK
    ):
        ready = Status.AWAITING_RETURN_SHIPMENT
    stages = [Status.SUBMITTED, Status.INSPECTING]
    if Status.AWAITING_PARTS in reached or ticket.status == Status.AWAITING_PARTS:
        stages.append(Status.AWAITING_PARTS)
    stages += [Status.REPAIRING, Status.TESTING, ready, Status.COMPLETED]
    return stages


def stage_timeline(ticket):
    """The ticket's stages as the customer sees them, from its prefetched ``events``.

    Waiting for parts appears only when the ticket went through it; a
    cancelled ticket shows the stages it reached, then "Cancelled". Each
    reached stage carries the time it was first reached and the public notes
    written when the ticket entered it (internal notes never leave the desk).
    """
    reached = {}
    notes = {}
    for event in ticket.events.all():
        reached.setdefault(event.to_status, event.at)
        if event.public_note:
            notes.setdefault(event.to_status, []).append(event)
    stages = _stages_in_customer_order(ticket, reached)
    if ticket.status == Status.CANCELLED:
        stages = [stage for stage in stages if stage in reached] + [Status.CANCELLED]
    current = stages.index(ticket.status) if ticket.status in stages else len(stages)
    steps = []
    for index, stage in enumerate(stages):
        if index == current:
            state = "current"
        elif index < current and stage in reached:
            state = "reached"
        else:
            state = "pending"
        steps.append(
            Step(
                status=stage,
                label=Status(stage).label,
                state=state,
                reached_at=reached.get(stage) if state != "pending" else None,
                notes=notes.get(stage, []),
            )
        )
    return steps


# --- My tickets ----------------------------------------------------------------------------


@login_required
@require_safe
def my_tickets(request):
    tickets = Ticket.objects.for_customer(request.user).select_related("device_model").order_by("-created_at", "-pk")
    page = Paginator(tickets, TICKETS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "tickets/customer/my_tickets.html", {"page": page, "nav": "my"})


# --- One ticket ------------------------------------------------------------------------------


def _render_ticket(request, ticket, *, rating_form=None, reply_form=None, reply_to=None, status=200):
    """The ticket page; a form that did not validate is shown bound, with what was typed.

    ``reply_form`` is the answer to the contact request ``reply_to`` (its pk).
    """
    contact_requests = list(ticket.contact_requests.all())
    open_requests = []
    for contact_request in contact_requests:
        if not contact_request.is_open:
            continue
        if reply_form is not None and contact_request.pk == reply_to:
            form = reply_form
        else:
            form = ContactReplyForm(
                initial={"contact_request": contact_request.pk}, auto_id=f"id_request{contact_request.pk}_%s"
            )
        open_requests.append((contact_request, form))
    rating = getattr(ticket, "rating", None)
    may_rate = ticket.status == Status.COMPLETED and rating is None
    expires_on = ticket.warranty_expires_on
    context = {
        "ticket": ticket,
        "nav": "my",
        "timeline": stage_timeline(ticket),
        "open_requests": open_requests,
        "answered_requests": [c for c in contact_requests if not c.is_open],
        "attachments": ticket.attachments.all(),
        "rating": rating,
        "rating_form": (rating_form or RatingForm()) if may_rate else None,
        "may_cancel": ticket.status in CUSTOMER_CANCELLABLE,
        "warranty_last_day": expires_on - timedelta(days=1) if expires_on else None,
    }
    return render(request, "tickets/customer/ticket.html", context, status=status)


@login_required
@require_safe
def ticket_page(request, number):
    return _render_ticket(request, _ticket_for_customer(request, number, _with_everything()))


@login_required
@require_safe
def record(request, number):
    """The printable service record."""
    queryset = Ticket.objects.select_related("device_model", "fault_category", "service_center")
    ticket = _ticket_for_customer(request, number, queryset.prefetch_related("events"))
    expires_on = ticket.warranty_expires_on
    context = {
        "ticket": ticket,
        "nav": "my",
        "timeline": stage_timeline(ticket),
        "events": ticket.events.all(),
        "warranty_last_day": expires_on - timedelta(days=1) if expires_on else None,
        "printed_at": timezone.now(),
    }
    return render(request, "tickets/customer/record.html", context)


# --- Cancel ------------------------------------------------------------------------------------


def _why_not_cancellable(ticket):
    if ticket.status == Status.CANCELLED:
        return _("This ticket is already cancelled.")
    if ticket.status == Status.COMPLETED:
        return _("This repair is completed; there is nothing to cancel.")
    return _(
        "The repair has already started, so it can no longer be cancelled here. "
        "Contact the service desk if you want to stop it."
    )


def _cancellation_would_count(user):
    """True when cancelling now lowers the service credit (the first one in twelve months is free)."""
    return Ticket.objects.filter(
        customer=user,
        status=Status.CANCELLED,
        cancelled_by_kind=ActorKind.CUSTOMER,
        cancelled_at__gte=timezone.now() - service_credit.WINDOW,
    ).exists()


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def cancel(request, number):
    ticket = _ticket_for_customer(request, number, Ticket.objects.select_related("service_center", "device_model"))
    if ticket.status not in CUSTOMER_CANCELLABLE:
        messages.error(request, _why_not_cancellable(ticket))
        return redirect("tickets:ticket", number=ticket.number)

    if request.method == "POST":
        form = CustomerCancelForm(request.POST)
        if form.is_valid():
            if form.cleaned_data["expected_status"] != ticket.status:
                messages.warning(
                    request,
                    _("This ticket changed while you were deciding (it is now “%(stage)s”). Check it and try again.")
                    % {"stage": ticket.get_status_display()},
                )
                return redirect("tickets:ticket", number=ticket.number)
            try:
                ticket.perform(
                    "cancel", by=request.user, reason=form.cleaned_data["reason"], note=form.cleaned_data["note"]
                )
            except (TicketChanged, TransitionNotAllowed, PermissionDenied, ValidationError):
                # The ticket is reloaded by perform(): explain with the stage it is in now.
                ticket.refresh_from_db()
                if ticket.status in CUSTOMER_CANCELLABLE:
                    message = _("This ticket changed a moment ago (it is now “%(stage)s”). Check it and try again.") % {
                        "stage": ticket.get_status_display()
                    }
                else:
                    message = _why_not_cancellable(ticket)
                messages.error(request, message)
                return redirect("tickets:ticket", number=ticket.number)
            messages.success(request, _("Your ticket %(number)s is cancelled.") % {"number": ticket.number})
            return redirect("tickets:ticket", number=ticket.number)
    else:
        form = CustomerCancelForm(initial={"expected_status": ticket.status})

    credit = service_credit.credit_for(request.user)
    would_count = _cancellation_would_count(request.user)
    score_after = max(0, credit.score - service_credit.CUSTOMER_CANCELLATION_PENALTY) if would_count else credit.score
    context = {
        "ticket": ticket,
        "nav": "my",
        "form": form,
        "credit": credit,
        "would_count": would_count,
        "score_after": score_after,
        "level_after": service_credit.Level(service_credit.level_for(score_after)).label,
    }
    return render(request, "tickets/customer/cancel.html", context)


# --- Rate --------------------------------------------------------------------------------------


@login_required
@require_POST
def rate(request, number):
    ticket = _ticket_for_customer(request, number, _with_everything())
    if ticket.status != Status.COMPLETED:
        messages.error(request, _("You can rate the repair once it is completed."))
        return redirect("tickets:ticket", number=ticket.number)
    if getattr(ticket, "rating", None) is not None:
        messages.info(request, _("You have already rated this repair. Thank you!"))
        return redirect("tickets:ticket", number=ticket.number)
    form = RatingForm(request.POST)
    if not form.is_valid():
        return _render_ticket(request, ticket, rating_form=form)
    try:
        with transaction.atomic():
            Rating.objects.create(ticket=ticket, **form.cleaned_data)
    except IntegrityError:  # rated twice at the same moment: the first one counts
        messages.info(request, _("You have already rated this repair. Thank you!"))
    else:
        messages.success(request, _("Thank you for rating the repair."))
    return redirect("tickets:ticket", number=ticket.number)


# --- Reply to a contact request ----------------------------------------------------------------


@login_required
@require_POST
def reply(request, number):
    ticket = _ticket_for_customer(request, number, _with_everything())
    try:
        request_id = int(request.POST.get("contact_request", ""))
    except ValueError:
        raise Http404 from None
    # Only this ticket's own requests: another ticket's id is not found.
    contact_request = next((c for c in ticket.contact_requests.all() if c.pk == request_id), None)
    if contact_request is None:
        raise Http404
    if not contact_request.is_open:
        messages.info(request, _("This question was already answered. Thank you!"))
        return redirect("tickets:ticket", number=ticket.number)
    form = ContactReplyForm(request.POST, auto_id=f"id_request{contact_request.pk}_%s")
    if not form.is_valid():
        return _render_ticket(request, ticket, reply_form=form, reply_to=contact_request.pk)
    try:
        answered = contact_request.answer(form.cleaned_data["response"])
    except ValidationError as error:
        form.add_error("response", error)
        return _render_ticket(request, ticket, reply_form=form, reply_to=contact_request.pk)
    if answered:
        messages.success(request, _("Thank you, your answer was sent to the service desk."))
    else:
        messages.info(request, _("This question was already answered. Thank you!"))
    return redirect("tickets:ticket", number=ticket.number)


@login_required
@require_safe
def notifications(request):
    """The customer's in-app messages, newest first; unread ones marked."""
    page = Paginator(
        Notification.objects.in_app_for(request.user).select_related("ticket").order_by("-created_at", "-pk"), 20
    ).get_page(request.GET.get("page"))
    return render(request, "tickets/customer/notifications.html", {"page": page, "nav": "notifications"})


@login_required
@require_POST
def notifications_read(request):
    Notification.objects.unread_for(request.user).update(read_at=timezone.now())
    messages.success(request, _("All messages are marked as read."))
    return redirect("tickets:notifications")
