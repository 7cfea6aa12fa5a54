"""The customer's pages: start, submit, my tickets, one ticket and its actions."""

from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def start(request):
    return render(request, "tickets/customer/start.html", {"nav": "start"})
