"""``manage.py seed_demo`` builds a believable desk through the one door, and only once."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from accounts.models import ROLES, User
from tickets import imei
from tickets.management.commands.seed_demo import DEMO_CUSTOMER_EMAILS, DEMO_PASSWORD
from tickets.models import (
    ActorKind,
    ContactRequest,
    DeviceCategory,
    DeviceModel,
    FaultCategory,
    Notification,
    Rating,
    ServiceCenter,
    StageEvent,
    Status,
    Ticket,
)

# The action behind each (from, to) move, to check the actor was allowed to take it.
ACTION_OF_MOVE = {
    ("submitted", "inspecting"): "receive_device",
    ("inspecting", "awaiting_parts"): "order_parts",
    ("repairing", "awaiting_parts"): "order_parts",
    ("inspecting", "repairing"): "start_repair",
    ("awaiting_parts", "repairing"): "start_repair",
    ("repairing", "testing"): "send_to_testing",
    ("testing", "repairing"): "fail_testing",
    ("testing", "ready_for_pickup"): "pass_testing",
    ("testing", "awaiting_return_shipment"): "pass_testing",
    ("ready_for_pickup", "completed"): "hand_over",
    ("awaiting_return_shipment", "completed"): "ship_back",
}


@pytest.fixture(scope="module")
def seed_output(django_db_setup, django_db_blocker):
    """Seed once for this module, inside a transaction rolled back at its end."""
    out = StringIO()
    # The same fast hasher as the function-scoped _fast_passwords fixture, so check_password() works.
    fast = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), fast:
        with transaction.atomic():
            call_command("seed_demo", "--force", stdout=out)
            yield out.getvalue()
            transaction.set_rollback(True)


@pytest.fixture
def demo(seed_output, db):
    return seed_output


def counts():
    return {
        model.__name__: model.objects.count()
        for model in (
            ServiceCenter,
            DeviceModel,
            FaultCategory,
            User,
            Ticket,
            StageEvent,
            ContactRequest,
            Rating,
            Notification,
        )
    }


def test_seeding_twice_creates_nothing_new(demo):
    before = counts()
    out = StringIO()
    call_command("seed_demo", "--force", stdout=out)
    assert counts() == before
    assert "created 0 service centers, 0 device models, 0 fault categories, 0 users, 0 tickets" in out.getvalue()


def test_catalogues_are_believable(demo):
    assert ServiceCenter.objects.count() == 3
    for center in ServiceCenter.objects.all():
        assert center.address and center.phone and center.opening_hours
    assert DeviceModel.objects.filter(is_active=True).count() >= 20
    assert set(DeviceModel.objects.values_list("category", flat=True)) >= {
        DeviceCategory.PHONE,
        DeviceCategory.TABLET,
        DeviceCategory.LAPTOP,
        DeviceCategory.WEARABLE,
    }
    assert set(DeviceModel.objects.values_list("warranty_months", flat=True)) == {12, 24}
    assert FaultCategory.objects.count() >= 10
    assert not FaultCategory.objects.filter(name_zh_hans="").exists()


def test_every_role_has_a_demo_user_with_the_demo_password(demo):
    for role in ROLES:
        staff = User.objects.filter(groups__name=role, is_staff=True, is_active=True)
        assert staff.exists(), role
        assert all(user.check_password(DEMO_PASSWORD) for user in staff)
        assert all(user.service_centers.exists() for user in staff)
    admin = User.objects.get(is_superuser=True)
    assert admin.check_password(DEMO_PASSWORD)
    customers = User.objects.filter(email__in=DEMO_CUSTOMER_EMAILS)
    assert customers.count() == len(DEMO_CUSTOMER_EMAILS) >= 3
    assert not customers.filter(is_staff=True).exists()
    assert all(c.check_password(DEMO_PASSWORD) and c.phone for c in customers)


def test_logins_are_printed_with_the_password(demo):
    assert DEMO_PASSWORD in demo
    for user in User.objects.all():
        assert user.email in demo


def test_every_stage_has_a_demo_ticket(demo):
    assert 35 <= Ticket.objects.count() <= 50
    present = set(Ticket.objects.values_list("status", flat=True))
    assert present == set(Status.values)


def test_cancellations_by_customer_staff_and_system(demo):
    cancelled = Ticket.objects.filter(status=Status.CANCELLED)
    assert set(cancelled.values_list("cancelled_by_kind", flat=True)) == set(ActorKind.values)
    assert Ticket.objects.awaiting_device_return().exists()
    assert Ticket.objects.filter(resubmitted_from__isnull=False).exists()


def test_every_history_is_consistent(demo):
    now = timezone.now()
    for ticket in Ticket.objects.prefetch_related("events"):
        events = sorted(ticket.events.all(), key=lambda e: (e.at, e.pk))
        assert [e.pk for e in events] == sorted(e.pk for e in events), ticket  # written in time order
        first = events[0]
        assert (first.from_status, first.to_status) == ("", Status.SUBMITTED), ticket
        assert first.at == ticket.created_at
        for previous, event in zip(events, events[1:]):
            assert event.from_status == previous.to_status, ticket
            assert event.at >= previous.at, ticket
        assert events[-1].to_status == ticket.status, ticket
        assert events[-1].at <= now
        assert ticket.updated_at >= events[-1].at


def test_histories_are_spread_over_the_last_weeks(demo):
    created = list(Ticket.objects.values_list("created_at", flat=True))
    now = timezone.now()
    assert min(created) < now - timedelta(days=21)
    assert max(created) > now - timedelta(days=3)
    assert len({c.date() for c in created}) >= 20


def test_every_staff_step_was_taken_by_someone_allowed_to(demo):
    for event in StageEvent.objects.select_related("ticket", "actor").exclude(from_status=""):
        ticket = event.ticket
        if event.actor_kind == ActorKind.SYSTEM:
            assert event.actor is None and event.to_status == Status.CANCELLED
        elif event.actor_kind == ActorKind.CUSTOMER:
            assert event.actor == ticket.customer and event.to_status == Status.CANCELLED
        else:
            actor = User.objects.get(pk=event.actor.pk)  # fresh: permission caches are per instance
            assert actor.is_staff and actor.works_at(ticket.service_center_id), event
            action = ACTION_OF_MOVE.get((event.from_status, event.to_status), "cancel_ticket")
            assert actor.has_perm(f"tickets.{action}"), (event, actor)


def test_milestones_match_the_history(demo):
    for ticket in Ticket.objects.prefetch_related("events"):
        at = {e.to_status: e.at for e in ticket.events.all()}
        assert ticket.received_at == at.get(Status.INSPECTING)
        if ticket.status == Status.COMPLETED:
            assert ticket.completed_at == at[Status.COMPLETED]
        if ticket.status == Status.CANCELLED:
            assert ticket.cancelled_at == at[Status.CANCELLED]
            assert ticket.cancel_reason


def test_imeis_pass_luhn_and_numbers_are_normalised(demo):
    values = list(Ticket.objects.values_list("imei_or_serial", flat=True))
    assert any(imei.looks_like_imei(v) for v in values)
    for value in values:
        assert imei.normalise(value) == value
        if imei.looks_like_imei(value):
            assert imei.luhn_valid(value)


def test_contact_requests_and_ratings(demo):
    assert ContactRequest.objects.open().filter(ticket__status__in=[Status.SUBMITTED, Status.INSPECTING]).count() >= 2
    assert ContactRequest.objects.filter(responded_at__isnull=False).exists()
    ratings = Rating.objects.select_related("ticket")
    assert ratings.count() >= 4
    for rating in ratings:
        assert rating.ticket.status == Status.COMPLETED
        assert rating.created_at >= rating.ticket.completed_at


def test_refuses_to_seed_a_production_site(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo", stdout=StringIO())
