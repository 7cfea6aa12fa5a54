"""Roles are groups with permissions, created by a data migration."""

import pytest
from django.contrib.auth.models import Group

from accounts.models import ROLES

pytestmark = pytest.mark.django_db


def perms(role):
    return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))


def test_the_four_roles_exist():
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)


@pytest.mark.parametrize(
    "role, may, may_not",
    [
        ("Phone agent", {"view_ticket", "cancel_ticket", "add_contactrequest"}, {"receive_device", "start_repair", "hand_over", "view_all_centers"}),
        ("Counter clerk", {"receive_device", "hand_over", "ship_back", "add_ticket"}, {"start_repair", "pass_testing", "view_all_centers"}),
        ("Technician", {"receive_device", "order_parts", "start_repair", "send_to_testing", "fail_testing", "pass_testing", "confirm_warranty"}, {"hand_over", "view_all_centers", "change_devicemodel"}),
        ("Supervisor", {"view_all_centers", "hand_over", "pass_testing", "change_devicemodel", "add_faultcategory", "change_servicecenter"}, set()),
    ],
)
def test_each_role_holds_exactly_what_it_needs(role, may, may_not):
    held = perms(role)
    assert may <= held
    assert not (may_not & held)


def test_no_role_may_delete_tickets_or_history():
    for role in ROLES:
        assert not {"delete_ticket", "delete_stageevent", "change_stageevent"} & perms(role)


def test_staff_see_only_their_centers_and_supervisors_all(technician, supervisor, center, other_center):
    from tickets.models import Ticket

    from .factories import make_ticket

    mine, elsewhere = make_ticket(center=center), make_ticket(center=other_center)
    assert list(Ticket.objects.for_staff(technician)) == [mine]
    assert set(Ticket.objects.for_staff(supervisor)) == {mine, elsewhere}


def test_a_customer_sees_no_tickets_as_staff(customer, ticket):
    from tickets.models import Ticket

    assert not Ticket.objects.for_staff(customer).exists()
    assert list(Ticket.objects.for_customer(customer)) == [ticket]
