"""Ticket numbers: readable over the phone, impossible to guess, typos caught before any look-up."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from tickets import numbers
from tickets.models import Ticket

FORMAT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
payloads = st.text(alphabet=numbers.ALPHABET, min_size=numbers.PAYLOAD_LENGTH, max_size=numbers.PAYLOAD_LENGTH)


def with_check(payload):
    return numbers.format_compact(payload + numbers.check_symbol(payload))


def test_a_new_number_is_three_groups_of_four_from_crockfords_alphabet():
    for _ in range(200):
        number = numbers.generate()
        assert FORMAT.match(number), number
        assert not set(number) & set("ILOU")


def test_new_numbers_are_random():
    assert len({numbers.generate() for _ in range(2000)}) == 2000


def test_a_new_number_passes_its_own_check():
    number = numbers.generate()
    assert numbers.normalise(number) == number


@pytest.mark.parametrize(
    "typed",
    ["7k3q-9xwd-m2p", "7K3Q 9XWD M2P", "7k3q9xwdm2p", " 7K3Q-9XWD-M2P ", "7K3Q.9XWD.M2P"],
)
def test_input_is_forgiving_of_case_spaces_and_dashes(typed):
    number = with_check("7K3Q9XWDM2P")
    assert numbers.normalise(typed + number[-1].lower()) == number


def test_o_is_read_as_zero_and_i_and_l_as_one():
    number = with_check("10Z0Z1ZZZ1Z")
    assert number.startswith("10Z0")
    typed = number.replace("1", "I", 1).replace("0", "O", 1).replace("1", "l", 1)
    assert numbers.normalise(typed) == number


@pytest.mark.parametrize("text", ["", "   ", "7K3Q-9XWD", "7K3Q-9XWD-M2PA-XX", "7K3Q-9XWD-M2P#", "7K3Q-9XWD-M2PU", None])
def test_what_cannot_be_a_number_is_rejected(text):
    with pytest.raises(numbers.InvalidNumber):
        numbers.normalise(text)
    assert numbers.parse(text) is None


@given(payloads)
def test_every_single_symbol_typo_is_caught(payload):
    number = payload + numbers.check_symbol(payload)
    for position in range(numbers.LENGTH):
        for symbol in numbers.ALPHABET:
            if symbol != number[position]:
                typo = number[:position] + symbol + number[position + 1 :]
                assert not numbers.is_valid_compact(typo)


@given(payloads)
def test_every_swap_of_two_neighbouring_different_symbols_is_caught(payload):
    number = payload + numbers.check_symbol(payload)
    for i in range(numbers.LENGTH - 1):
        a, b = number[i], number[i + 1]
        if a != b:
            swapped = number[:i] + b + a + number[i + 2 :]
            # Luhn mod N misses only the swap of the two symbols whose values sum to N-1.
            values = numbers._VALUE[a] + numbers._VALUE[b]
            if values != numbers.BASE - 1:
                assert not numbers.is_valid_compact(swapped), (number, swapped)


@given(payloads, st.sampled_from(["", " ", "-", "  "]), st.booleans())
def test_normalise_round_trips_however_it_was_typed(payload, separator, lower):
    number = with_check(payload)
    typed = number.replace("-", separator)
    typed = typed.lower() if lower else typed
    assert numbers.normalise(typed) == number


def test_a_typo_is_rejected_before_any_database_query(db):
    number = numbers.generate()
    typo = number[:-1] + ("0" if number[-1] != "0" else "1")
    with CaptureQueriesContext(connection) as queries:
        assert list(Ticket.objects.with_number(typo)) == []
    assert len(queries) == 0


def test_the_database_refuses_a_duplicate_number_and_creation_retries(monkeypatch, ticket):
    taken, fresh = ticket.number, numbers.generate()
    sequence = iter([taken, fresh])
    monkeypatch.setattr(numbers, "generate", lambda: next(sequence))
    from .factories import make_ticket

    second = make_ticket(customer=ticket.customer, center=ticket.service_center)
    assert second.number == fresh
    assert Ticket.objects.filter(number=taken).count() == 1
    assert second.events.count() == 1
