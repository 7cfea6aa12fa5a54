from django.utils.functional import SimpleLazyObject

from .models import Notification


def notifications(request):
    """``unread_notifications``: the signed-in customer's unread in-app messages, counted only if a page shows it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.is_staff:
        return {}
    return {"unread_notifications": SimpleLazyObject(lambda: Notification.objects.unread_for(user).count())}
