"""Warranty: computed from purchase date and the model's months; staff confirm or override it."""

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied

from tickets.models import Ticket

from .factories import make_device_model, make_ticket


@pytest.fixture
def phone(db):
    return make_device_model(brand="Acme", name="A1", warranty_months=12)


def ticket_bought_on(day, phone, **kw):
    ticket = Ticket(device_model=phone, purchase_date=day, **kw)
    return ticket


@pytest.mark.parametrize(
    "bought, today, expected",
    [
        (date(2026, 1, 31), date(2027, 1, 30), "in_warranty"),
        (date(2026, 1, 31), date(2027, 1, 31), "out_of_warranty"),
        (date(2024, 2, 29), date(2025, 2, 27), "in_warranty"),
        (date(2024, 2, 29), date(2025, 2, 28), "out_of_warranty"),
    ],
)
def test_warranty_runs_for_the_models_months_from_the_purchase_date(bought, today, expected, phone):
    assert ticket_bought_on(bought, phone).computed_warranty_status(today=today) == expected


def test_warranty_is_unknown_without_a_purchase_date_or_a_catalogue_model(phone):
    assert Ticket(device_model=phone).computed_warranty_status() == "unknown"
    assert Ticket(device_model=None, purchase_date=date(2026, 1, 1)).computed_warranty_status() == "unknown"


def test_a_new_ticket_gets_the_computed_status(customer, center, phone):
    ticket = make_ticket(customer=customer, center=center, device_model=phone, purchase_date=date.today())
    assert ticket.warranty_status == "in_warranty"
    assert ticket.warranty_confirmed_by is None


def test_a_technician_confirms_or_overrides_it_with_who_and_when(technician, ticket):
    ticket.confirm_warranty("out_of_warranty", by=technician)
    ticket.refresh_from_db()
    assert ticket.warranty_status == "out_of_warranty"
    assert ticket.warranty_confirmed_by == technician and ticket.warranty_confirmed_at is not None


def test_a_phone_agent_cannot_override_it(phone_agent, ticket):
    with pytest.raises(PermissionDenied):
        ticket.confirm_warranty("in_warranty", by=phone_agent)
