import segno
from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from ..models import Status
from ..tracking import tracking_url

register = template.Library()

_BADGE = {Status.COMPLETED: "badge-done", Status.CANCELLED: "badge-cancelled"}


@register.simple_tag
def qr_svg(text, title=""):
    """An inline SVG QR code (no image request, no JavaScript)."""
    qr = segno.make(text, error="m")
    # omitsize: a viewBox instead of fixed width/height, so CSS scales the whole code.
    svg = qr.svg_inline(scale=4, border=2, title=title or None, svgclass="qr-code", omitsize=True)
    return mark_safe(svg.replace("<svg ", '<svg role="img" ', 1))


@register.simple_tag(takes_context=True)
def tracking_link(context, ticket):
    return tracking_url(ticket, context.get("request"))


@register.simple_tag
def stage_badge(ticket):
    css = _BADGE.get(ticket.status, "badge-open")
    return format_html('<span class="badge {}">{}</span>', css, ticket.get_status_display())
