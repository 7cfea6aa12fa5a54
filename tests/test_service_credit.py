"""Service credit: customer cancellations after the first, and system no-show/no-response cancellations, weigh against it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.credit import credit_for, max_open_online_tickets

from .factories import make_ticket, make_ticket_at


def cancel(ticket, by, reason):
    ticket.perform("cancel", by=by, reason=reason)
    return ticket


def test_a_new_customer_has_full_credit(customer):
    credit = credit_for(customer)
    assert (credit.score, credit.level, credit.entries) == (100, "good", ())
    assert max_open_online_tickets(credit) is None


def test_the_first_own_cancellation_is_free_and_the_next_ones_count(customer, center):
    for _ in range(3):
        cancel(make_ticket(customer=customer, center=center), customer, "no_longer_needed")
    credit = credit_for(customer)
    assert credit.score == 70
    assert [entry.penalty for entry in credit.entries] == [15, 15, 0]
    assert credit.level == "fair"


def test_system_cancellations_weigh_more_and_staff_cancellations_not_at_all(customer, center, technician):
    cancel(make_ticket(customer=customer, center=center), None, "device_not_received")
    cancel(make_ticket(customer=customer, center=center), None, "no_response")
    cancel(make_ticket_at("inspecting", customer=customer, center=center), technician, "out_of_warranty")
    credit = credit_for(customer)
    assert credit.score == 50
    assert len(credit.counted) == 2
    assert {entry.reason for entry in credit.counted} == {"Device not received in time", "No response to a contact request"}


def test_low_credit_limits_open_online_tickets(customer, center, settings):
    for reason in ["device_not_received", "no_response", "no_response"]:
        cancel(make_ticket(customer=customer, center=center), None, reason)
    credit = credit_for(customer)
    assert (credit.score, credit.level) == (25, "low")
    assert max_open_online_tickets(credit) == 1
    settings.SERVICE_CREDIT_LOW_MAX_OPEN_TICKETS = 2
    assert max_open_online_tickets(credit) == 2


def test_cancellations_older_than_twelve_months_age_out(customer, center):
    cancel(make_ticket(customer=customer, center=center), None, "no_response")
    assert credit_for(customer).score == 75
    assert credit_for(customer, now=timezone.now() + timedelta(days=366)).score == 100


def test_credit_only_counts_the_customers_own_tickets(customer, other_customer, center):
    cancel(make_ticket(customer=other_customer, center=center), None, "no_response")
    assert credit_for(customer).score == 100
