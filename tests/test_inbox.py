"""The customer's in-app messages: an unread count on every page and a list."""

import pytest
from django.urls import reverse

from .factories import make_ticket, mover


@pytest.fixture
def inbox(client, customer, center):
    ticket = make_ticket(customer=customer, center=center)
    ticket.perform("receive_device", by=mover(), public_note="Your phone has arrived.")
    client.force_login(customer)
    return ticket


def test_every_page_shows_the_unread_count(client, inbox):
    page = client.get(reverse("tickets:my_tickets")).content.decode()
    assert ">2<" in page.replace(" ", "").replace("\n", "") or "2<span" in page


def test_the_list_shows_each_message_newest_first(client, inbox):
    response = client.get(reverse("tickets:notifications"))
    assert response.status_code == 200
    subjects = [n.subject for n in response.context["page"].object_list]
    assert subjects[0].endswith("Inspecting") and "received" in subjects[1]
    assert "Your phone has arrived." in response.content.decode()


def test_reading_the_list_changes_nothing_and_marking_read_is_a_post(client, inbox, customer):
    from tickets.models import Notification

    client.get(reverse("tickets:notifications"))
    assert Notification.objects.unread_for(customer).count() == 2
    assert client.get(reverse("tickets:notifications_read")).status_code == 405
    response = client.post(reverse("tickets:notifications_read"))
    assert response.status_code == 302
    assert Notification.objects.unread_for(customer).count() == 0


def test_nobody_sees_another_customers_messages(client, inbox, other_customer):
    client.force_login(other_customer)
    response = client.get(reverse("tickets:notifications"))
    assert list(response.context["page"].object_list) == []


def test_the_list_runs_a_fixed_number_of_queries(client, inbox, django_assert_max_num_queries):
    for _ in range(10):
        make_ticket(customer=inbox.customer, center=inbox.service_center)
    with django_assert_max_num_queries(6):
        client.get(reverse("tickets:notifications"))


def test_customers_choose_email_and_sms_on_their_profile(client, inbox, customer):
    data = {
        "full_name": customer.full_name,
        "email": customer.email,
        "phone": str(customer.phone),
        "language": "en",
        "notify_by_email": "on",
    }
    response = client.post(reverse("accounts:profile"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    customer.refresh_from_db()
    assert (customer.notify_by_email, customer.notify_by_sms) == (True, False)
