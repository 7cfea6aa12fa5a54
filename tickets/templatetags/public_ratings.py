"""``{% public_ratings as ratings %}``: what customers think of each service center, for the public pages.

Two queries: the active centers with their average rating and count (the
numbers cached for a while), and the newest comments customers agreed to
publish (tickets.reports).
"""

from django import template

from ..models import ServiceCenter
from ..reports import centers_with_public_rating, public_comments

register = template.Library()

COMMENTS = 5


@register.simple_tag
def public_ratings(comments=COMMENTS):
    centers = centers_with_public_rating(ServiceCenter.objects.filter(is_active=True).order_by("name", "pk"))
    return {"centers": centers, "comments": public_comments(comments)}
