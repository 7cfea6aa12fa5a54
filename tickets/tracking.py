"""Signed tracking links: ``/t/<token>/`` opens one ticket's tracking view.

The token is the ticket number signed with the site's secret key (salted
for this one purpose), so it is tied to that ticket and cannot be forged or
turned into another ticket's link. It does not expire: it is printed on
receipts that customers keep. Rotating DJANGO_SECRET_KEY invalidates every
printed link (see docs/decisions.md).
"""

from django.core import signing
from django.urls import reverse

_signer = signing.Signer(salt="tickets.tracking-link", sep=".")


def token_for(ticket):
    return _signer.sign(ticket.number)


def number_from_token(token):
    """The ticket number a token was made for, or None for a forged or damaged token."""
    try:
        return _signer.unsign(token)
    except signing.BadSignature:
        return None


def tracking_path(ticket):
    return reverse("tickets:track_token", args=[token_for(ticket)])


def tracking_url(ticket, request=None):
    """Absolute link for QR codes and messages."""
    from django.conf import settings

    path = tracking_path(ticket)
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.SITE_URL.rstrip("/") + path
