"""The ticket lifecycle, as DESIGN.md specifies it.

The tables below are the specification, written independently of the model
code: for every stage, every action and every kind of actor, the move is
either allowed (the ticket moves and exactly one history row is written) or
refused (nothing is written).
"""

from contextlib import contextmanager

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import COUNTER_CLERK, PHONE_AGENT, SUPERVISOR, TECHNICIAN
from tickets.models import StageEvent, Status, Ticket, TransitionNotAllowed

from .factories import DETAILS, make_center, make_customer, make_staff, make_ticket_at

STAGES = [s.value for s in Status]

# action -> stages it may start from
SOURCES = {
    "receive_device": {"submitted"},
    "order_parts": {"inspecting", "repairing"},
    "start_repair": {"inspecting", "awaiting_parts"},
    "send_to_testing": {"repairing"},
    "fail_testing": {"testing"},
    "pass_testing": {"testing"},
    "hand_over": {"ready_for_pickup"},
    "ship_back": {"awaiting_return_shipment"},
    "cancel": {"submitted", "inspecting", "awaiting_parts", "repairing"},
}

# action -> who may take it (wherever the stage allows it)
WHO = {
    "receive_device": {"clerk", "technician", "supervisor"},
    "order_parts": {"technician", "supervisor"},
    "start_repair": {"technician", "supervisor"},
    "send_to_testing": {"technician", "supervisor"},
    "fail_testing": {"technician", "supervisor"},
    "pass_testing": {"technician", "supervisor"},
    "hand_over": {"clerk", "supervisor"},
    "ship_back": {"clerk", "supervisor"},
    "cancel": {"customer", "phone_agent", "clerk", "technician", "supervisor", "system"},
}

# The customer may only cancel before the repair starts.
CUSTOMER_CANCEL_FROM = {"submitted", "inspecting", "awaiting_parts"}

ACTORS = [
    "customer",
    "other_customer",
    "phone_agent",
    "clerk",
    "technician",
    "supervisor",
    "technician_elsewhere",
    "system",
]

# After pass_testing the ticket goes where its return method says.
TARGET = {
    "receive_device": "inspecting",
    "order_parts": "awaiting_parts",
    "start_repair": "repairing",
    "send_to_testing": "testing",
    "fail_testing": "repairing",
    "pass_testing": "ready_for_pickup",
    "hand_over": "completed",
    "ship_back": "completed",
    "cancel": "cancelled",
}


def allowed(stage, action, actor):
    if stage not in SOURCES[action] or actor not in WHO[action]:
        return False
    if action == "cancel" and actor == "customer":
        return stage in CUSTOMER_CANCEL_FROM
    return True


def details_for(action, actor):
    if action == "cancel":
        return {"reason": {"customer": "no_longer_needed", "system": "no_response"}.get(actor, "out_of_warranty")}
    return DETAILS.get(action, {})


@contextmanager
def rolled_back():
    """Run the block, then undo everything it wrote."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def actors(db):
    center, elsewhere = make_center(), make_center()
    owner = make_customer()
    return center, owner, {
        "customer": owner,
        "other_customer": make_customer(),
        "phone_agent": make_staff(PHONE_AGENT, [center]),
        "clerk": make_staff(COUNTER_CLERK, [center]),
        "technician": make_staff(TECHNICIAN, [center]),
        "supervisor": make_staff(SUPERVISOR, []),
        "technician_elsewhere": make_staff(TECHNICIAN, [elsewhere]),
        "system": None,
    }


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("action", list(SOURCES))
def test_every_move_for_every_actor(stage, action, actors):
    center, owner, people = actors
    ticket = make_ticket_at(stage, customer=owner, center=center)
    events_before = ticket.events.count()
    for actor in ACTORS:
        fresh = Ticket.objects.get(pk=ticket.pk)
        if allowed(stage, action, actor):
            with rolled_back():
                event = fresh.perform(action, by=people[actor], **details_for(action, actor))
                expected = TARGET[action]
                if action == "pass_testing" and fresh.return_method == "ship_back":
                    expected = "awaiting_return_shipment"
                assert fresh.status == expected, (stage, action, actor)
                assert Ticket.objects.get(pk=ticket.pk).status == expected
                assert ticket.events.count() == events_before + 1
                assert (event.from_status, event.to_status) == (stage, expected)
                assert event.actor == people[actor]
        else:
            with pytest.raises((TransitionNotAllowed, PermissionDenied)):
                fresh.perform(action, by=people[actor], **details_for(action, actor))
            assert Ticket.objects.get(pk=ticket.pk).status == stage, (stage, action, actor)
            assert ticket.events.count() == events_before, (stage, action, actor)


def test_the_tables_cover_every_transition_of_the_model():
    transitions = {t.name for t in Ticket._meta.get_field("status").get_all_transitions(Ticket)}
    assert transitions == set(SOURCES) == set(Ticket.ACTIONS)


def test_a_full_repair_writes_every_stage_with_its_time(customer, clerk, technician, ticket):
    ticket.perform("receive_device", by=clerk, public_note="Your phone has arrived.")
    ticket.perform("order_parts", by=technician, public_note="A new screen is on its way.", internal_note="PO 4471")
    ticket.perform("start_repair", by=technician)
    ticket.perform("send_to_testing", by=technician)
    ticket.perform("fail_testing", by=technician, internal_note="Touch dead in the corner")
    ticket.perform("send_to_testing", by=technician)
    ticket.perform("pass_testing", by=technician)
    ticket.perform("hand_over", by=clerk, check="pickup_code", pickup_code=ticket.pickup_code)

    history = list(ticket.events.values_list("from_status", "to_status", "actor_kind"))
    assert history == [
        ("", "submitted", "customer"),
        ("submitted", "inspecting", "staff"),
        ("inspecting", "awaiting_parts", "staff"),
        ("awaiting_parts", "repairing", "staff"),
        ("repairing", "testing", "staff"),
        ("testing", "repairing", "staff"),
        ("repairing", "testing", "staff"),
        ("testing", "ready_for_pickup", "staff"),
        ("ready_for_pickup", "completed", "staff"),
    ]
    times = list(ticket.events.values_list("at", flat=True))
    assert times == sorted(times) and all(times)
    ticket.refresh_from_db()
    assert ticket.received_at and ticket.ready_at and ticket.completed_at
    assert ticket.handed_over_by == clerk and ticket.handover_check == "pickup_code"
    order_parts = ticket.events.get(to_status="awaiting_parts")
    assert (order_parts.public_note, order_parts.internal_note) == ("A new screen is on its way.", "PO 4471")


def test_creating_a_ticket_writes_its_first_event(customer, ticket):
    (event,) = ticket.events.all()
    assert (event.from_status, event.to_status, event.actor, event.actor_kind) == ("", "submitted", customer, "customer")


def test_pass_testing_sends_a_ship_back_ticket_to_awaiting_return_shipment(technician, center):
    ticket = make_ticket_at("testing", center=center, return_method="ship_back", return_address="1 Road")
    ticket.perform("pass_testing", by=technician)
    assert ticket.status == "awaiting_return_shipment"


def test_ship_back_requires_carrier_and_tracking_number(clerk, center):
    ticket = make_ticket_at("awaiting_return_shipment", center=center)
    with pytest.raises(ValidationError):
        ticket.perform("ship_back", by=clerk, carrier="SF Express", tracking_number=" ")
    assert Ticket.objects.get(pk=ticket.pk).status == "awaiting_return_shipment"
    ticket.perform("ship_back", by=clerk, carrier="SF Express", tracking_number="SF100200300")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.return_carrier, ticket.return_tracking_number) == (
        "completed",
        "SF Express",
        "SF100200300",
    )
    assert ticket.events.last().details == {"carrier": "SF Express", "tracking_number": "SF100200300"}


def test_hand_over_with_a_wrong_pickup_code_changes_nothing(clerk, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    wrong = "000000" if ticket.pickup_code != "000000" else "111111"
    with pytest.raises(ValidationError):
        ticket.perform("hand_over", by=clerk, check="pickup_code", pickup_code=wrong)
    ticket.refresh_from_db()
    assert ticket.status == "ready_for_pickup" and ticket.completed_at is None
    assert ticket.events.count() == 5


def test_hand_over_needs_an_identity_check(clerk, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    with pytest.raises(ValidationError):
        ticket.perform("hand_over", by=clerk)
    assert Ticket.objects.get(pk=ticket.pk).status == "ready_for_pickup"


def test_the_pickup_code_never_lands_in_the_history(clerk, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    event = ticket.perform("hand_over", by=clerk, check="pickup_code", pickup_code=ticket.pickup_code)
    assert "pickup_code" not in event.details


@pytest.mark.parametrize(
    "actor, reason",
    [("customer", "out_of_warranty"), ("clerk", "solved_myself"), ("system", "no_longer_needed"), ("clerk", "")],
)
def test_a_cancellation_needs_a_reason_from_the_actors_own_list(actor, reason, request, center):
    people = {"customer": request.getfixturevalue("customer"), "clerk": request.getfixturevalue("clerk"), "system": None}
    ticket = make_ticket_at("submitted", customer=request.getfixturevalue("customer"), center=center)
    with pytest.raises(ValidationError):
        ticket.perform("cancel", by=people[actor], reason=reason)
    assert Ticket.objects.get(pk=ticket.pk).status == "submitted"


def test_a_cancellation_records_who_why_and_when(customer, ticket):
    ticket.perform("cancel", by=customer, reason="solved_myself", note="  Restarting fixed it.  ")
    ticket.refresh_from_db()
    assert ticket.status == "cancelled"
    assert (ticket.cancelled_by_kind, ticket.cancel_reason, ticket.cancel_note) == (
        "customer",
        "solved_myself",
        "Restarting fixed it.",
    )
    assert ticket.cancelled_at is not None


def test_the_system_cancels_with_system_as_actor(ticket):
    event = ticket.perform("cancel", by=None, reason="device_not_received")
    assert (event.actor, event.actor_kind) == (None, "system")


def test_a_cancelled_ticket_with_its_device_at_the_desk_waits_to_be_returned(clerk, technician, center):
    ticket = make_ticket_at("inspecting", center=center)
    never_arrived = make_ticket_at("submitted", center=center)
    ticket.perform("cancel", by=technician, reason="damage_not_covered")
    never_arrived.perform("cancel", by=None, reason="device_not_received")
    assert list(Ticket.objects.awaiting_device_return()) == [ticket]
    assert ticket.mark_device_returned(by=clerk, check="id_document") is True
    assert ticket.device_returned_at is not None
    assert ticket.mark_device_returned(by=clerk, check="id_document") is False  # twice is harmless
    assert not Ticket.objects.awaiting_device_return().exists()


def test_status_cannot_be_assigned_directly(ticket):
    with pytest.raises(AttributeError):
        ticket.status = "completed"


def test_stage_events_are_append_only(ticket):
    event = ticket.events.get()
    event.public_note = "rewritten"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
    assert StageEvent.objects.get(pk=event.pk).public_note == ""


def test_a_failed_action_leaves_the_object_as_it_was(clerk, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    with pytest.raises(ValidationError):
        ticket.perform("hand_over", by=clerk, check="pickup_code", pickup_code="nope")
    assert ticket.status == "ready_for_pickup" and ticket.completed_at is None


def test_available_actions_follow_stage_and_role(center, clerk, technician, phone_agent, customer):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    assert ticket.available_actions(technician) == ["order_parts", "start_repair", "cancel"]
    assert ticket.available_actions(clerk) == ["cancel"]
    assert ticket.available_actions(phone_agent) == ["cancel"]
    assert ticket.available_actions(customer) == ["cancel"]
    assert ticket.available_actions(None) == ["cancel"]
