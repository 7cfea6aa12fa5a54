"""IMEIs are Luhn-checked; other serials are accepted and normalised."""

import pytest
from django.core.exceptions import ValidationError

from tickets import imei

from .factories import VALID_IMEIS


@pytest.mark.parametrize("value", VALID_IMEIS)
def test_a_valid_imei_is_accepted(value):
    assert imei.normalise(value) == value


def test_an_imei_is_normalised_however_it_was_typed():
    assert imei.normalise(" 49-015420-323751-8 ") == "490154203237518"
    assert imei.normalise("49 0154 2032 3751 8") == "490154203237518"


@pytest.mark.parametrize("value", ["490154203237519", "490154203237528", "940154203237518"])
def test_an_imei_with_a_wrong_digit_or_swap_is_rejected(value):
    with pytest.raises(ValidationError) as error:
        imei.normalise(value)
    assert error.value.code == "imei_checksum"


@pytest.mark.parametrize("typed, stored", [("c02xk1abjg5h", "C02XK1ABJG5H"), ("R58M-12 3ABC", "R58M123ABC"), ("1234", "1234")])
def test_serials_are_accepted_upper_case_without_separators(typed, stored):
    assert imei.normalise(typed) == stored


@pytest.mark.parametrize("value", ["", "   ", "ab", "SERIAL#1234", "X" * 33, "序列号1234"])
def test_what_is_neither_an_imei_nor_a_serial_is_rejected(value):
    with pytest.raises(ValidationError):
        imei.normalise(value)
    assert imei.parse(value) is None


def test_a_ticket_stores_the_normalised_imei(customer, center):
    from .factories import make_ticket

    ticket = make_ticket(customer=customer, center=center, imei_or_serial="49-015420-323751-8")
    assert ticket.imei_or_serial == "490154203237518"


def test_a_ticket_with_an_invalid_imei_is_not_created(customer, center):
    from tickets.models import Ticket

    from .factories import make_ticket

    with pytest.raises(ValidationError):
        make_ticket(customer=customer, center=center, imei_or_serial="490154203237519")
    assert not Ticket.objects.exists()
