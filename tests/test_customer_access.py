"""Who may reach a customer's ticket pages, and how state changes are protected.

Another customer, a staff member and a mistyped number all get 404 — never
403, never a hint that the ticket exists. Every state change is a POST with
a CSRF token.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tickets.models import ContactRequest, Rating, Status

from .factories import make_ticket_at
from .test_customer_pages import add_photo

# (url name, method) for every page of one ticket under /my/ and its photos.
TICKET_URLS = [
    ("tickets:ticket", "get"),
    ("tickets:record", "get"),
    ("tickets:cancel", "get"),
    ("tickets:cancel", "post"),
    ("tickets:rate", "post"),
    ("tickets:reply", "post"),
    ("tickets:resubmit", "get"),
    ("tickets:resubmit", "post"),
    ("tickets:submitted", "get"),
]
PHOTO_URLS = ["tickets:attachment", "tickets:attachment_thumbnail"]


@pytest.fixture
def cancelled(customer, center):
    """A cancelled ticket: every page of the list, including "submit again", applies to it."""
    return make_ticket_at("cancelled", customer=customer, center=center)


@pytest.fixture
def completed(customer, center):
    return make_ticket_at("completed", customer=customer, center=center)


@pytest.fixture
def inspecting(customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    ticket.contact_request = ContactRequest.objects.create(
        ticket=ticket, kind="other", message="Is the crack old?", respond_by=timezone.now() + timedelta(days=7)
    )
    return ticket


def form_for(name, ticket):
    if name == "tickets:cancel":
        return {"reason": "no_longer_needed", "expected_status": ticket.status}
    if name == "tickets:rate":
        return {"stars": "5"}
    if name == "tickets:reply":
        request = getattr(ticket, "contact_request", None)
        return {"contact_request": request.pk if request else 1, "response": "Hello"}
    return {}


def hit(client, name, method, ticket, number=None):
    path = reverse(name, args=[number or ticket.number])
    if method == "get":
        return client.get(path)
    return client.post(path, form_for(name, ticket))


def snapshot(ticket):
    ticket.refresh_from_db()
    return (
        ticket.status,
        ticket.events.count(),
        Rating.objects.filter(ticket=ticket).exists(),
        list(ContactRequest.objects.filter(ticket=ticket).values_list("response", flat=True)),
    )


# --- Another customer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, method", TICKET_URLS)
@pytest.mark.parametrize("stage", ["inspecting", "completed", "cancelled"])
def test_another_customer_gets_404_on_every_url_of_the_ticket(client, other_customer, name, method, stage, request):
    ticket = request.getfixturevalue(stage)
    before = snapshot(ticket)
    client.force_login(other_customer)

    response = hit(client, name, method, ticket)

    assert response.status_code == 404
    assert snapshot(ticket) == before


@pytest.mark.parametrize("name", PHOTO_URLS)
def test_another_customer_gets_404_on_the_photos(client, customer, other_customer, inspecting, name):
    photo = add_photo(inspecting, customer)
    client.force_login(other_customer)

    response = client.get(reverse(name, args=[photo.public_id]))

    assert response.status_code == 404


@pytest.mark.parametrize("name, method", TICKET_URLS)
def test_staff_get_404_on_the_customer_pages_too(client, clerk, cancelled, name, method):
    client.force_login(clerk)

    assert hit(client, name, method, cancelled).status_code == 404


@pytest.mark.parametrize("name, method", TICKET_URLS)
@pytest.mark.parametrize("number", ["not-a-number", "7K3Q-9XWD-M2PA-XXXX", "%20"])
def test_a_number_that_cannot_be_one_is_404_for_the_owner_too(client, customer, cancelled, name, method, number):
    client.force_login(customer)

    assert hit(client, name, method, cancelled, number=number).status_code == 404


@pytest.mark.parametrize("name, method", TICKET_URLS + [("tickets:my_tickets", "get")])
def test_anonymous_visitors_are_sent_to_log_in_and_back(client, cancelled, name, method):
    path = reverse(name) if name == "tickets:my_tickets" else reverse(name, args=[cancelled.number])

    response = client.get(path) if method == "get" else client.post(path, form_for(name, cancelled))

    assert response.status_code == 302
    login = resolve_url(settings.LOGIN_URL)
    assert response["Location"].startswith(f"{login}?next=")


def test_the_owner_reaches_every_page(client, customer, cancelled, completed):
    client.force_login(customer)

    for path in (
        reverse("tickets:my_tickets"),
        reverse("tickets:ticket", args=[completed.number]),
        reverse("tickets:record", args=[completed.number]),
        reverse("tickets:resubmit", args=[cancelled.number]),
    ):
        assert client.get(path).status_code == 200, path


# --- State changes: POST only, with a CSRF token ---------------------------------------------------------


@pytest.mark.parametrize("name", ["tickets:rate", "tickets:reply"])
def test_state_changes_refuse_get(client, customer, completed, name):
    client.force_login(customer)

    response = client.get(reverse(name, args=[completed.number]))

    assert response.status_code == 405


def test_the_cancel_page_changes_nothing_on_get(client, customer, inspecting):
    before = snapshot(inspecting)
    client.force_login(customer)

    assert client.get(reverse("tickets:cancel", args=[inspecting.number])).status_code == 200
    assert snapshot(inspecting) == before


@pytest.mark.parametrize(
    "name, stage",
    [("tickets:cancel", "inspecting"), ("tickets:rate", "completed"), ("tickets:reply", "inspecting")],
)
def test_state_changes_refuse_a_post_without_csrf_token(customer, name, stage, request):
    ticket = request.getfixturevalue(stage)
    before = snapshot(ticket)
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)

    response = client.post(reverse(name, args=[ticket.number]), form_for(name, ticket))

    assert response.status_code == 403
    assert snapshot(ticket) == before


def test_the_track_form_refuses_a_post_without_csrf_token(inspecting):
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("tickets:track"), {"number": inspecting.number, "factor": "8000"})

    assert response.status_code == 403


def test_state_changes_work_with_the_csrf_token_of_the_page(customer, inspecting):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    page = client.get(reverse("tickets:cancel", args=[inspecting.number]))
    token = page.context["csrf_token"]

    response = client.post(
        reverse("tickets:cancel", args=[inspecting.number]),
        {**form_for("tickets:cancel", inspecting), "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
    inspecting.refresh_from_db()
    assert inspecting.status == Status.CANCELLED
