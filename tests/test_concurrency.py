"""Two people acting on one ticket at the same moment: exactly one wins.

These tests need real concurrent connections and row locks, so they run on
PostgreSQL (DATABASE_URL=postgres://…); on SQLite they are skipped.
"""

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from accounts.models import TECHNICIAN
from tickets.models import StageEvent, Ticket, TicketChanged

from .factories import make_center, make_staff, make_ticket_at

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def run_in_thread(target):
    outcome = {}

    def wrapper():
        try:
            outcome["result"] = target()
        except Exception as exc:  # reported to the test
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=wrapper)
    thread.start()
    return thread, outcome


def test_the_second_of_two_overlapping_actions_is_refused_and_writes_nothing():
    center = make_center()
    alice, bob = make_staff(TECHNICIAN, [center]), make_staff(TECHNICIAN, [center])
    ticket = make_ticket_at("testing", center=center)
    first_done = threading.Event()
    release_first = threading.Event()

    def alice_passes():
        mine = Ticket.objects.get(pk=ticket.pk)
        with transaction.atomic():
            mine.perform("pass_testing", by=alice)
            first_done.set()
            release_first.wait(5)  # hold the row lock while Bob tries
        return mine.status

    def bob_fails():
        mine = Ticket.objects.get(pk=ticket.pk)  # loaded while the ticket is still "testing"
        first_done.wait(5)
        blocked = threading.Timer(0.3, release_first.set)  # Bob waits on Alice's lock meanwhile
        blocked.start()
        return mine.perform("fail_testing", by=bob)

    a, alice_outcome = run_in_thread(alice_passes)
    b, bob_outcome = run_in_thread(bob_fails)
    a.join(10)
    b.join(10)

    assert alice_outcome == {"result": "ready_for_pickup"}
    assert isinstance(bob_outcome.get("error"), TicketChanged)
    assert "Reload" in str(bob_outcome["error"])
    ticket.refresh_from_db()
    assert ticket.status == "ready_for_pickup"
    assert StageEvent.objects.filter(ticket=ticket, from_status="testing").count() == 1


@pytest.mark.parametrize("attempt", range(5))
def test_two_staff_racing_from_the_same_stage_produce_exactly_one_history_row(attempt):
    center = make_center()
    people = [make_staff(TECHNICIAN, [center]) for _ in range(2)]
    ticket = make_ticket_at("inspecting", center=center)
    start = threading.Barrier(2)

    def act(person, action):
        def go():
            close_old_connections()
            mine = Ticket.objects.get(pk=ticket.pk)
            start.wait(5)
            return mine.perform(action, by=person)

        return go

    threads = [run_in_thread(act(people[0], "start_repair")), run_in_thread(act(people[1], "order_parts"))]
    for thread, _ in threads:
        thread.join(10)
    outcomes = [outcome for _, outcome in threads]

    winners = [o for o in outcomes if "result" in o]
    losers = [o for o in outcomes if "error" in o]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert isinstance(losers[0]["error"], TicketChanged)
    assert StageEvent.objects.filter(ticket=ticket, from_status="inspecting").count() == 1
    ticket.refresh_from_db()
    assert ticket.status == winners[0]["result"].to_status
