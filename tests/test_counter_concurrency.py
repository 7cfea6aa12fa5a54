"""Two clerks handing back the same device at the same moment: exactly one hand-over.

Real concurrent connections and row locks, so PostgreSQL only
(DATABASE_URL=postgres://…); skipped on SQLite.
"""

import threading

import pytest
from django.db import close_old_connections, connection
from django.test import Client
from django.urls import reverse

from accounts.models import COUNTER_CLERK, SUPERVISOR
from tickets.models import StageEvent, Status, Ticket, TicketChanged

from .factories import make_center, make_staff, make_ticket_at

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _each_inline_job_watched_on_its_own(monkeypatch):
    """As in a worker: each notification job django-q2 runs inline gets its own N+1 watch.

    On a transactional test database the on_commit callbacks fire inside the
    request, so two messages sent for one stage change would otherwise look
    like an N+1 of the request (tests/browser/conftest.py does the same).
    """
    zeal = pytest.importorskip("zeal")
    from django_q import tasks

    original = tasks._sync

    def sync_in_own_context(pack):
        with zeal.zeal_context():
            return original(pack)

    monkeypatch.setattr(tasks, "_sync", sync_in_own_context)


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


def both_load_then_act(monkeypatch, method_name):
    """Make both threads load the ticket before either acts: ``Ticket.<method_name>`` waits for the other."""
    both_loaded = threading.Barrier(2)
    original = getattr(Ticket, method_name)

    def waiting(self, *args, **kwargs):
        both_loaded.wait(10)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Ticket, method_name, waiting)


@pytest.mark.parametrize("attempt", range(3))
def test_two_clerks_handing_over_the_same_device_make_one_hand_over(monkeypatch, attempt):
    center = make_center()
    clerks = [make_staff(COUNTER_CLERK, [center]) for _ in range(2)]
    ticket = make_ticket_at("ready_for_pickup", center=center)
    both_load_then_act(monkeypatch, "perform")

    def hand_over(clerk):
        def go():
            close_old_connections()
            mine = Ticket.objects.get(pk=ticket.pk)
            return mine.perform("hand_over", by=clerk, check="pickup_code", pickup_code=ticket.pickup_code)

        return go

    threads = [run_in_thread(hand_over(clerk)) for clerk in clerks]
    for thread, _outcome in threads:
        thread.join(20)
    outcomes = [outcome for _thread, outcome in threads]

    winners = [o for o in outcomes if "result" in o]
    losers = [o for o in outcomes if "error" in o]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert isinstance(losers[0]["error"], TicketChanged)
    assert StageEvent.objects.filter(ticket=ticket, to_status=Status.COMPLETED).count() == 1
    ticket.refresh_from_db()
    assert ticket.status == Status.COMPLETED
    assert ticket.handed_over_by == winners[0]["result"].actor


def test_two_clerks_at_the_counter_pages_one_hands_over_and_the_other_is_told(monkeypatch):
    center = make_center()
    clerks = [make_staff(COUNTER_CLERK, [center]) for _ in range(2)]
    ticket = make_ticket_at("ready_for_pickup", center=center)
    both_load_then_act(monkeypatch, "perform")
    path = reverse("counter:hand_over", args=[ticket.number])
    data = {"expected_status": "ready_for_pickup", "check": "pickup_code", "pickup_code": ticket.pickup_code}

    def post_as(clerk):
        def go():
            close_old_connections()
            client = Client()
            client.force_login(clerk)
            response = client.post(path, data, follow=True)
            # The page itself, not response.context: the test client's template
            # signal would also catch what the other thread renders.
            page = response.content.decode()
            return page[page.index('class="messages"') : page.index("</ul>", page.index('class="messages"'))]

        return go

    threads = [run_in_thread(post_as(clerk)) for clerk in clerks]
    for thread, _outcome in threads:
        thread.join(30)
    outcomes = [outcome for _thread, outcome in threads]
    assert all("result" in outcome for outcome in outcomes), outcomes

    said = [outcome["result"] for outcome in outcomes]
    assert sum("the device was handed over" in text for text in said) == 1, said
    assert sum("changed by someone else a moment ago" in text and "Reload it" in text for text in said) == 1, said
    assert StageEvent.objects.filter(ticket=ticket, to_status=Status.COMPLETED).count() == 1


def test_two_clerks_returning_the_same_cancelled_device_record_it_once(monkeypatch):
    center = make_center()
    clerks = [make_staff(COUNTER_CLERK, [center]) for _ in range(2)]
    ticket = make_ticket_at("inspecting", center=center)
    ticket.perform("cancel", by=make_staff(SUPERVISOR), reason="damage_not_covered")
    both_load_then_act(monkeypatch, "check_identity")

    def give_back(clerk):
        def go():
            close_old_connections()
            mine = Ticket.objects.get(pk=ticket.pk)
            return mine.mark_device_returned(by=clerk, check="pickup_code", pickup_code=ticket.pickup_code)

        return go

    threads = [run_in_thread(give_back(clerk)) for clerk in clerks]
    for thread, _outcome in threads:
        thread.join(20)
    assert all("result" in outcome for _thread, outcome in threads), [o for _t, o in threads]
    results = sorted(outcome["result"] for _thread, outcome in threads)
    assert results == [False, True]
    ticket.refresh_from_db()
    assert ticket.device_returned_at is not None and ticket.handed_over_by in clerks
