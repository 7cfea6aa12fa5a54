"""Private photos: served only to the ticket's customer and to staff of its center."""

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from ..models import Attachment, Ticket


def _attachment_for(request, public_id):
    """The attachment if the asker may see it; 404 for everyone else (no hint it exists)."""
    attachment = get_object_or_404(Attachment.objects.select_related("ticket"), public_id=public_id)
    user = request.user
    if not user.is_authenticated:
        raise Http404
    ticket = attachment.ticket
    if user.is_staff:
        allowed = user.has_perm("tickets.view_ticket") and Ticket.objects.for_staff(user).filter(pk=ticket.pk).exists()
    else:
        allowed = ticket.customer_id == user.pk
    if not allowed:
        raise Http404
    return attachment


def _serve(field):
    try:
        handle = field.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(handle, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
def image(request, public_id):
    return _serve(_attachment_for(request, public_id).image)


@require_safe
def thumbnail(request, public_id):
    return _serve(_attachment_for(request, public_id).thumbnail)
