"""Submit a repair (``/tickets/new/``), its confirmation page, and "submit again" after a cancellation.

The form does the validation and keeps the photos (tickets.forms.SubmitRepairForm);
these views decide who may submit, and where the customer goes next.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from accounts.credit import credit_for, max_open_online_tickets

from ..forms import SubmitRepairForm
from ..models import ActorKind, StagedUpload, Status, Ticket
from .customer import _ticket_for_customer

TEMPLATE = "tickets/customer/submit.html"


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def submit(request):
    return _submit_page(request)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def resubmit(request, number):
    cancelled = _ticket_for_customer(
        request, number, Ticket.objects.filter(status=Status.CANCELLED).select_related("service_center")
    )
    return _submit_page(request, resubmitted_from=cancelled)


@login_required
@require_safe
def submitted(request, number):
    ticket = _ticket_for_customer(request, number, Ticket.objects.select_related("service_center"))
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        # submit.js sent the form, its request followed the redirect to here, and
        # the script now loads this page itself: leave the success message unread
        # for that page view.
        return HttpResponse(status=204)
    context = {"ticket": ticket, "nav": "my", "arrival_days": getattr(settings, "DEVICE_ARRIVAL_DAYS", None)}
    return render(request, "tickets/customer/submitted.html", context)


@require_safe
def staged_thumbnail(request, public_id):
    """The thumbnail of a photo kept from an unfinished submit form: for its owner only."""
    upload = get_object_or_404(StagedUpload.objects.owned_by(request.user), public_id=public_id)
    try:
        handle = upload.thumbnail.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(handle, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Disposition"] = "inline"
    return response


def _online_limit(user):
    """Why ``user`` may not submit online right now, or None when they may.

    A low service credit caps the open tickets a customer has submitted
    online; tickets a clerk opened at the counter do not count (the store
    remains open to them).
    """
    credit = credit_for(user)
    limit = max_open_online_tickets(credit)
    if limit is None:
        return None
    open_tickets = list(
        Ticket.objects.for_customer(user)
        .open()
        .filter(events__from_status="", events__actor_kind=ActorKind.CUSTOMER)
        .select_related("device_model")
    )
    if len(open_tickets) < limit:
        return None
    return {"credit": credit, "limit": limit, "open_tickets": open_tickets}


def _submit_page(request, resubmitted_from=None):
    context = {"nav": "submit", "resubmitted_from": resubmitted_from}
    if request.user.is_staff:
        return render(request, TEMPLATE, {**context, "staff": True}, status=403)
    limit = _online_limit(request.user)
    if limit is not None:
        # Explained on the page; a POST sent anyway is refused with the same explanation.
        status = 403 if request.method == "POST" else 200
        return render(request, TEMPLATE, {**context, "limit": limit}, status=status)

    form_kwargs = {"customer": request.user, "resubmitted_from": resubmitted_from}
    if request.method == "POST":
        form = SubmitRepairForm(request.POST, request.FILES, **form_kwargs)
        valid = form.is_valid()
        form.keep_photos()
        if valid:
            ticket = form.open_ticket()
            messages.success(
                request, _("Your repair request is in. Your ticket number is %(number)s.") % {"number": ticket.number}
            )
            return redirect("tickets:submitted", number=ticket.number)
    else:
        form = SubmitRepairForm(**form_kwargs)
    return render(request, TEMPLATE, {**context, "form": form})
