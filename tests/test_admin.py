"""The staff back office (Django admin): finding tickets, who sees what, and moving tickets on."""

import io
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import PHONE_AGENT, SUPERVISOR, TECHNICIAN, User
from tickets import numbers
from tickets.images import ProcessedImage
from tickets.models import (
    Attachment,
    AttachmentKind,
    ContactRequest,
    ContactRequestKind,
    Notification,
    Rating,
    StageEvent,
    Status,
    Ticket,
    WarrantyStatus,
)

from .factories import VALID_IMEIS, make_center, make_customer, make_staff, make_ticket, make_ticket_at

CHANGELIST = reverse("admin:tickets_ticket_changelist")


def change_url(ticket):
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def transition_url(ticket):
    return reverse("admin:tickets_ticket_transition", args=[ticket.pk])


def listed(response):
    """The tickets on a changelist page, by number."""
    return {ticket.number for ticket in response.context["cl"].result_list}


def offered_actions(response):
    """The actions the "Move this ticket" panel offers, in page order."""
    panel = re.search(r'<section class="ticket-moves".*?</section>', response.content.decode(), re.S)
    return re.findall(r'name="action" value="([a-z_]+)"', panel.group(0)) if panel else []


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def move(client, user, ticket, action, expected_status=None, **fields):
    client.force_login(user)
    data = {"action": action, "expected_status": expected_status or ticket.status, **fields}
    return client.post(transition_url(ticket), data)


def change_form_data(response):
    """What the change form would post back unchanged: its fields and its inlines' management forms."""
    data = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None:
            continue
        widget_data = field.widget.format_value(value) if hasattr(field.widget, "format_value") else value
        if isinstance(widget_data, list | tuple):
            data[name] = [str(v) for v in widget_data]
        elif name in ("contact_phone",):
            data[name] = str(value)
        else:
            data[name] = widget_data if widget_data is not None else ""
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for form in formset.formset.initial_forms:
            data[form.add_prefix("id")] = form.instance.pk
            data[form.add_prefix("ticket")] = form.instance.ticket_id
    return data


def tiny_processed_image():
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, "JPEG")
    return ProcessedImage(image_bytes=out.getvalue(), thumbnail_bytes=out.getvalue(), width=8, height=6)


def png_upload(name="photo.png"):
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 160, 90)).save(out, "PNG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


def with_number(ticket, compact_payload):
    """Give ``ticket`` a known, valid number (the factory's are random)."""
    number = numbers.format_compact(compact_payload + numbers.check_symbol(compact_payload))
    Ticket.objects.filter(pk=ticket.pk).update(number=number)
    ticket.refresh_from_db()
    return ticket


# --- Finding a ticket ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        lambda n: n,
        lambda n: n.lower(),
        lambda n: n.replace("-", ""),
        lambda n: " ".join(n.replace("-", "")[i : i + 3] for i in range(0, 12, 3)),
        lambda n: n.replace("0", "O"),
        lambda n: n.replace("1", "l").lower(),
    ],
    ids=["exact", "lower-case", "no-dashes", "spaced", "O-for-0", "l-for-1"],
)
def test_staff_find_a_ticket_by_its_number_typed_forgivingly(client, technician, ticket, center, typed):
    with_number(ticket, "0K3Q9XWD1M2")
    make_ticket(center=center)
    client.force_login(technician)
    response = client.get(CHANGELIST, {"q": typed(ticket.number)})
    assert listed(response) == {ticket.number}


def test_a_mistyped_number_finds_nothing_rather_than_a_neighbour(client, technician, ticket):
    with_number(ticket, "0K3Q9XWD1M2")
    wrong = ticket.number[:-1] + ("A" if ticket.number[-1] != "A" else "B")
    client.force_login(technician)
    assert listed(client.get(CHANGELIST, {"q": wrong})) == set()


def test_staff_find_a_ticket_by_imei_typed_with_spaces_and_dashes(client, technician, center):
    wanted = make_ticket(center=center, imei_or_serial=VALID_IMEIS[1])
    make_ticket(center=center, imei_or_serial=VALID_IMEIS[2])
    client.force_login(technician)
    typed = f"{VALID_IMEIS[1][:2]}-{VALID_IMEIS[1][2:8]} {VALID_IMEIS[1][8:]}"
    assert listed(client.get(CHANGELIST, {"q": typed})) == {wanted.number}


def test_staff_find_a_ticket_by_serial_number_in_lower_case(client, technician, center):
    wanted = make_ticket(center=center, imei_or_serial="C02XK1ABJGH5")
    make_ticket(center=center)
    client.force_login(technician)
    assert listed(client.get(CHANGELIST, {"q": "c02xk1abjgh5"})) == {wanted.number}


def test_staff_find_a_ticket_by_phone_typed_in_national_format(client, phone_agent, ticket, center):
    make_ticket(center=center, contact_phone="+8613900139000")
    client.force_login(phone_agent)
    assert str(ticket.contact_phone) == "+8613800138000"
    assert listed(client.get(CHANGELIST, {"q": "138 0013 8000"})) == {ticket.number}
    assert listed(client.get(CHANGELIST, {"q": "+86 138-0013-8000"})) == {ticket.number}


def test_staff_find_a_ticket_by_email_in_any_case(client, phone_agent, ticket, center):
    make_ticket(center=center)
    client.force_login(phone_agent)
    assert listed(client.get(CHANGELIST, {"q": "  WEI@Example.com "})) == {ticket.number}


def test_staff_find_a_ticket_by_part_of_the_contact_name(client, phone_agent, ticket, center):
    make_ticket(center=center, contact_name="Zhang San")
    client.force_login(phone_agent)
    assert listed(client.get(CHANGELIST, {"q": "wang"})) == {ticket.number}


def test_search_never_finds_another_centers_ticket(client, technician, other_center):
    elsewhere = make_ticket(center=other_center)
    client.force_login(technician)
    assert listed(client.get(CHANGELIST, {"q": elsewhere.number})) == set()
    assert listed(client.get(CHANGELIST, {"q": VALID_IMEIS[0]})) == set()


# --- The ticket list -----------------------------------------------------------------------------


def test_ticket_list_shows_number_stage_center_device_age_and_warranty(client, supervisor, center):
    ticket = make_ticket(center=center, created_at=timezone.now() - timedelta(days=3, hours=2))
    other_device = make_ticket(center=center, device_model=None, device_other="Nokia 3310")
    client.force_login(supervisor)
    response = client.get(CHANGELIST)
    html = response.content.decode()
    assert ticket.number in html
    assert "Submitted" in html
    assert "Shanghai Xuhui" in html
    assert str(ticket.device_model) in html
    assert "Nokia 3310" in other_device.device_label and "Nokia 3310" in html
    assert "3\xa0days" in html or "3 days" in html
    assert "In warranty" in html


def test_staff_of_a_single_center_get_no_center_column(client, technician, ticket):
    client.force_login(technician)
    response = client.get(CHANGELIST)
    assert "service_center" not in response.context["cl"].list_display
    assert ticket.number in listed(response)


def test_ticket_list_is_newest_first(client, supervisor):
    old = make_ticket(created_at=timezone.now() - timedelta(days=10))
    new = make_ticket()
    middle = make_ticket(created_at=timezone.now() - timedelta(days=2))
    client.force_login(supervisor)
    numbers_in_order = [t.number for t in client.get(CHANGELIST).context["cl"].result_list]
    assert numbers_in_order == [new.number, middle.number, old.number]


def test_tickets_are_not_added_or_deleted_in_the_back_office(client, supervisor, ticket):
    client.force_login(supervisor)
    response = client.get(CHANGELIST)
    assert reverse("admin:tickets_ticket_add") not in response.content.decode()
    assert "counter terminal" in response.content.decode()
    assert client.get(reverse("admin:tickets_ticket_add")).status_code == 403
    assert client.get(reverse("admin:tickets_ticket_delete", args=[ticket.pk])).status_code == 403


def test_the_ticket_list_filters_by_stage_and_warranty(client, technician, center):
    inspecting = make_ticket_at("inspecting", center=center)
    submitted = make_ticket(center=center, purchase_date=None)
    client.force_login(technician)
    assert listed(client.get(CHANGELIST, {"status__exact": "inspecting"})) == {inspecting.number}
    assert listed(client.get(CHANGELIST, {"warranty_status__exact": "unknown"})) == {submitted.number}


def _changelist_queries(client, user):
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


@pytest.mark.parametrize("role", ["technician", "supervisor"])
def test_the_ticket_list_costs_the_same_queries_for_3_or_30_tickets(client, center, role, request):
    user = request.getfixturevalue(role)
    for _ in range(3):
        make_ticket(center=center)
    few, shown = _changelist_queries(client, user)
    assert shown == 3
    for index in range(27):
        if index % 3:
            make_ticket(center=center, device_model=None, device_other=f"Phone {index}")
        else:
            make_ticket(center=center)
    many, shown = _changelist_queries(client, user)
    assert shown == 30
    assert many == few
    assert many <= 12


# --- Who sees which tickets ------------------------------------------------------------------


def test_staff_of_another_center_see_neither_the_ticket_in_the_list_nor_its_page(client, ticket, other_center):
    outsider = make_staff(TECHNICIAN, [other_center])
    client.force_login(outsider)
    assert ticket.number not in listed(client.get(CHANGELIST))
    response = client.get(change_url(ticket))
    assert response.status_code == 302
    assert response.url == reverse("admin:index")
    assert ticket.number not in client.get(response.url).content.decode()


def test_staff_of_another_center_cannot_move_the_ticket(client, ticket, other_center):
    outsider = make_staff(TECHNICIAN, [other_center])
    response = move(client, outsider, ticket, "receive_device")
    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED


def test_a_supervisor_sees_the_tickets_of_every_center(client, supervisor, ticket, other_center):
    elsewhere = make_ticket(center=other_center)
    client.force_login(supervisor)
    assert listed(client.get(CHANGELIST)) == {ticket.number, elsewhere.number}
    assert client.get(change_url(elsewhere)).status_code == 200


def test_the_center_filter_offers_only_the_users_own_centers(client, center, other_center):
    third = make_center("gz-tianhe", name="Guangzhou Tianhe")
    user = make_staff(TECHNICIAN, [center, third])
    client.force_login(user)
    html = client.get(CHANGELIST).content.decode()
    assert "Guangzhou Tianhe" in html
    assert "Beijing Chaoyang" not in html


def test_the_center_filter_offers_every_center_to_a_supervisor(client, supervisor, center, other_center):
    client.force_login(supervisor)
    html = client.get(CHANGELIST).content.decode()
    assert "Shanghai Xuhui" in html and "Beijing Chaoyang" in html


def test_customers_cannot_open_the_back_office(client, customer, ticket):
    client.force_login(customer)
    response = client.get(change_url(ticket))
    assert response.status_code == 302
    assert reverse("admin:login") in response.url


# --- The "Move this ticket" panel -------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "stage", "expected"),
    [
        ("technician", "submitted", ["receive_device", "cancel"]),
        ("technician", "inspecting", ["order_parts", "start_repair", "cancel"]),
        ("technician", "repairing", ["order_parts", "send_to_testing", "cancel"]),
        ("technician", "testing", ["fail_testing", "pass_testing"]),
        ("technician", "ready_for_pickup", []),
        ("clerk", "submitted", ["receive_device", "cancel"]),
        ("clerk", "inspecting", ["cancel"]),
        ("clerk", "ready_for_pickup", ["hand_over"]),
        ("clerk", "awaiting_return_shipment", ["ship_back"]),
        ("phone_agent", "submitted", ["cancel"]),
        ("phone_agent", "testing", []),
        ("supervisor", "testing", ["fail_testing", "pass_testing"]),
        ("supervisor", "completed", []),
    ],
)
def test_staff_see_only_the_buttons_they_may_use_now(client, request, center, role, stage, expected):
    user = request.getfixturevalue(role)
    ticket = make_ticket_at(stage, center=center)
    client.force_login(user)
    response = client.get(change_url(ticket))
    assert response.status_code == 200
    assert sorted(offered_actions(response)) == sorted(expected)
    assert offered_actions(response) == [a for a in ticket.available_actions(user) if a in expected]


def test_technician_sees_only_the_buttons_they_may_use_now(client, technician, center):
    ticket = make_ticket_at("inspecting", center=center)
    client.force_login(technician)
    response = client.get(change_url(ticket))
    html = response.content.decode()
    assert offered_actions(response) == ["order_parts", "start_repair", "cancel"]
    assert ">Start repair</button>" in html
    assert "Receive device" not in html
    assert f'name="expected_status" value="{Status.INSPECTING}"' in html


def test_the_panel_stands_outside_the_change_form(client, technician, ticket):
    client.force_login(technician)
    html = client.get(change_url(ticket)).content.decode()
    panel_start = html.index('<section class="ticket-moves"')
    panel_end = html.index("</section>", panel_start)
    change_form_start = html.index('id="ticket_form"')
    assert panel_end < change_form_start
    panel = html[panel_start:panel_end]
    assert panel.count("<form") == panel.count("</form>") >= 1
    assert "style=" not in panel and "<script" not in panel and "onclick" not in panel


def test_the_cancel_form_offers_only_the_staff_reasons(client, technician, ticket):
    client.force_login(technician)
    html = client.get(change_url(ticket)).content.decode()
    reasons = re.search(r'<select id="cancel-reason".*?</select>', html, re.S).group(0)
    values = re.findall(r'value="([a-z_]*)"', reasons)
    assert values == ["", "out_of_warranty", "damage_not_covered", "incomplete_information", "staff_other"]


def test_every_panel_input_has_a_label(client, clerk, center):
    for stage in ("submitted", "ready_for_pickup", "awaiting_return_shipment"):
        ticket = make_ticket_at(stage, center=center)
        client.force_login(clerk)
        html = client.get(change_url(ticket)).content.decode()
        panel = re.search(r'<section class="ticket-moves".*?</section>', html, re.S).group(0)
        ids = re.findall(r'<(?:input|textarea|select)(?![^>]*type="hidden")[^>]*id="([^"]+)"', panel)
        assert ids
        for input_id in ids:
            assert f'for="{input_id}"' in panel, input_id


def test_posting_an_action_moves_the_ticket_and_writes_one_stage_event(
    client, technician, ticket, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = move(
            client, technician, ticket, "receive_device", public_note="We have your phone.", internal_note="Box dented."
        )
    assert response.status_code == 302
    assert response.url == change_url(ticket)
    ticket.refresh_from_db()
    assert ticket.status == Status.INSPECTING
    assert ticket.received_at is not None
    event = ticket.events.get(from_status=Status.SUBMITTED)
    assert (event.to_status, event.actor, event.actor_kind) == (Status.INSPECTING, technician, "staff")
    assert (event.public_note, event.internal_note) == ("We have your phone.", "Box dented.")
    assert ticket.events.count() == 2
    notifications = Notification.objects.filter(event=event, recipient=ticket.customer)
    assert "We have your phone." in notifications.get(channel="in_app").body
    assert not notifications.filter(body__contains="Box dented.").exists()
    assert messages_of(response) == [f"Ticket {ticket.number} is now “Inspecting”."]


def test_getting_the_transition_url_is_refused(client, technician, ticket):
    client.force_login(technician)
    response = client.get(transition_url(ticket), {"action": "receive_device", "expected_status": "submitted"})
    assert response.status_code == 405
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED


def test_the_transition_needs_a_csrf_token(technician, ticket):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = move(client, technician, ticket, "receive_device")
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED


def test_a_stale_page_changes_nothing_and_says_what_happened(client, technician, clerk, ticket):
    ticket.perform("receive_device", by=clerk)
    response = move(client, technician, ticket, "cancel", expected_status="submitted", reason="out_of_warranty")
    ticket.refresh_from_db()
    assert ticket.status == Status.INSPECTING
    assert ticket.events.count() == 2
    assert messages_of(response) == [
        "This ticket changed since you opened it: it is now “Inspecting”. Check it and try again."
    ]


def test_a_phone_agent_cannot_start_a_repair_by_posting_it(client, phone_agent, center):
    ticket = make_ticket_at("inspecting", center=center)
    response = move(client, phone_agent, ticket, "start_repair")
    ticket.refresh_from_db()
    assert ticket.status == Status.INSPECTING
    assert ticket.events.count() == 2
    assert messages_of(response) == ["You may not do this on this ticket."]


def test_an_action_not_possible_at_this_stage_changes_nothing(client, technician, ticket):
    response = move(client, technician, ticket, "pass_testing")
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED
    assert "not possible" in messages_of(response)[0]


def test_an_unknown_action_changes_nothing(client, technician, ticket):
    response = move(client, technician, ticket, "delete_everything")
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED
    assert messages_of(response)[0].startswith("Nothing was changed.")


def test_cancelling_without_a_reason_shows_an_error_and_changes_nothing(client, technician, ticket):
    response = move(client, technician, ticket, "cancel", note="Customer called.")
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED
    assert ticket.events.count() == 1
    assert messages_of(response) == ["“Cancel ticket” was not done: Choose a reason for the cancellation."]


def test_staff_cannot_cancel_with_a_customers_reason(client, technician, ticket):
    move(client, technician, ticket, "cancel", reason="solved_myself")
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED


def test_a_phone_agent_cancels_with_a_reason_and_a_note(
    client, phone_agent, ticket, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        move(
            client,
            phone_agent,
            ticket,
            "cancel",
            reason="incomplete_information",
            note="No receipt after two calls.",
            public_note="Please open a new ticket with the receipt.",
        )
    ticket.refresh_from_db()
    assert ticket.status == Status.CANCELLED
    assert (ticket.cancelled_by_kind, ticket.cancel_reason, ticket.cancel_note) == (
        "staff",
        "incomplete_information",
        "No receipt after two calls.",
    )
    assert ticket.notifications.filter(event__to_status=Status.CANCELLED, channel="in_app").count() == 1


def test_shipping_back_needs_the_carrier_and_tracking_number(client, clerk, center):
    ticket = make_ticket_at("awaiting_return_shipment", center=center)
    response = move(client, clerk, ticket, "ship_back", carrier="SF Express")
    ticket.refresh_from_db()
    assert ticket.status == Status.AWAITING_RETURN_SHIPMENT
    assert "Enter the carrier and the tracking number." in messages_of(response)[0]

    move(client, clerk, ticket, "ship_back", carrier="SF Express", tracking_number="SF100200300")
    ticket.refresh_from_db()
    assert ticket.status == Status.COMPLETED
    assert (ticket.return_carrier, ticket.return_tracking_number) == ("SF Express", "SF100200300")


def test_handing_over_needs_the_right_pickup_code_or_an_identity_check(client, clerk, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    wrong = "000000" if ticket.pickup_code != "000000" else "111111"
    response = move(client, clerk, ticket, "hand_over", check="pickup_code", pickup_code=wrong)
    ticket.refresh_from_db()
    assert ticket.status == Status.READY_FOR_PICKUP
    assert "The pickup code does not match this ticket." in messages_of(response)[0]

    response = move(client, clerk, ticket, "hand_over")
    ticket.refresh_from_db()
    assert ticket.status == Status.READY_FOR_PICKUP

    code = f"{ticket.pickup_code[:3]} {ticket.pickup_code[3:]}"
    move(client, clerk, ticket, "hand_over", pickup_code=code)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.handover_check, ticket.handed_over_by) == (Status.COMPLETED, "pickup_code", clerk)
    assert ticket.pickup_code not in str(ticket.events.last().details)


def test_handing_over_after_checking_an_identity_document(client, clerk, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    move(client, clerk, ticket, "hand_over", check="id_document")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.handover_check) == (Status.COMPLETED, "id_document")


def test_the_pickup_code_is_not_shown_in_the_back_office(client, supervisor, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    client.force_login(supervisor)
    html = client.get(change_url(ticket)).content.decode()
    assert ticket.pickup_code not in html
    assert "never read it out on the phone" in html


# --- Editing a ticket ------------------------------------------------------------------------


def test_the_stage_is_read_only_on_the_change_form(client, technician, ticket):
    client.force_login(technician)
    response = client.get(change_url(ticket))
    assert "status" not in response.context["adminform"].form.fields
    data = change_form_data(response)
    data["status"] = Status.COMPLETED
    data["contact_name"] = "Wang Wei (son)"
    response = client.post(change_url(ticket), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    ticket.refresh_from_db()
    assert ticket.status == Status.SUBMITTED
    assert ticket.contact_name == "Wang Wei (son)"
    assert ticket.events.count() == 1


def test_staff_correct_the_imei_and_it_is_stored_normalised(client, phone_agent, ticket):
    client.force_login(phone_agent)
    data = change_form_data(client.get(change_url(ticket)))
    data["imei_or_serial"] = "35-693803 5643809"
    assert client.post(change_url(ticket), data).status_code == 302
    ticket.refresh_from_db()
    assert ticket.imei_or_serial == "356938035643809"


def test_a_wrong_imei_is_refused_with_a_message(client, phone_agent, ticket):
    client.force_login(phone_agent)
    data = change_form_data(client.get(change_url(ticket)))
    data["imei_or_serial"] = "356938035643808"
    response = client.post(change_url(ticket), data)
    assert response.status_code == 200
    assert "This IMEI is not valid" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.imei_or_serial == VALID_IMEIS[0]


def test_a_technician_overrides_the_warranty_and_who_and_when_is_recorded(client, technician, ticket):
    assert ticket.warranty_status == WarrantyStatus.IN_WARRANTY
    client.force_login(technician)
    data = change_form_data(client.get(change_url(ticket)))
    data["warranty_status"] = WarrantyStatus.OUT_OF_WARRANTY
    response = client.post(change_url(ticket), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    ticket.refresh_from_db()
    assert ticket.warranty_status == WarrantyStatus.OUT_OF_WARRANTY
    assert ticket.warranty_confirmed_by == technician
    assert timezone.now() - ticket.warranty_confirmed_at < timedelta(minutes=1)
    page = client.get(change_url(ticket)).content.decode()
    assert technician.full_name in page


def test_a_technician_confirms_the_warranty_without_changing_it(client, technician, ticket):
    client.force_login(technician)
    data = change_form_data(client.get(change_url(ticket)))
    data["warranty_confirm"] = "on"
    client.post(change_url(ticket), data)
    ticket.refresh_from_db()
    assert ticket.warranty_status == WarrantyStatus.IN_WARRANTY
    assert ticket.warranty_confirmed_by == technician


def test_saving_other_fields_does_not_confirm_the_warranty(client, technician, ticket):
    client.force_login(technician)
    data = change_form_data(client.get(change_url(ticket)))
    data["os_version"] = "Android 15"
    client.post(change_url(ticket), data)
    ticket.refresh_from_db()
    assert ticket.os_version == "Android 15"
    assert ticket.warranty_confirmed_by is None


def test_a_phone_agent_cannot_change_the_warranty(client, phone_agent, ticket):
    client.force_login(phone_agent)
    response = client.get(change_url(ticket))
    assert "warranty_status" not in response.context["adminform"].form.fields
    data = change_form_data(response)
    data["warranty_status"] = WarrantyStatus.OUT_OF_WARRANTY
    data["warranty_confirm"] = "on"
    assert client.post(change_url(ticket), data).status_code == 302
    ticket.refresh_from_db()
    assert ticket.warranty_status == WarrantyStatus.IN_WARRANTY
    assert ticket.warranty_confirmed_by is None


def test_a_ship_back_ticket_needs_a_return_address(client, phone_agent, center):
    ticket = make_ticket(center=center, return_method="ship_back", return_address="1 Example Road")
    client.force_login(phone_agent)
    data = change_form_data(client.get(change_url(ticket)))
    data["return_address"] = "  "
    response = client.post(change_url(ticket), data)
    assert response.status_code == 200
    assert "enter the address" in response.content.decode()


# --- What the change page shows --------------------------------------------------------------


def test_the_change_page_shows_the_history_with_notes_and_who_acted(client, technician, clerk, ticket):
    ticket.perform("receive_device", by=clerk, public_note="Received at the counter.", internal_note="Scratched.")
    client.force_login(technician)
    html = client.get(change_url(ticket)).content.decode()
    assert "Stage history" in html
    assert "Received at the counter." in html
    assert "Scratched." in html
    assert clerk.full_name in html


def test_the_change_page_shows_the_customers_tracking_link(client, phone_agent, ticket):
    from tickets import tracking

    client.force_login(phone_agent)
    html = client.get(change_url(ticket)).content.decode()
    assert tracking.tracking_url(ticket) in html


def test_the_admin_history_of_a_ticket_opens(client, technician, ticket):
    client.force_login(technician)
    assert client.get(reverse("admin:tickets_ticket_history", args=[ticket.pk])).status_code == 200


def test_the_change_page_shows_photos_through_the_private_thumbnail_view(client, technician, ticket, customer):
    attachment = Attachment.add(ticket, AttachmentKind.RECEIPT, tiny_processed_image(), by=customer)
    client.force_login(technician)
    html = client.get(change_url(ticket)).content.decode()
    thumbnail = reverse("tickets:attachment_thumbnail", args=[attachment.public_id])
    full = reverse("tickets:attachment", args=[attachment.public_id])
    assert f'<a href="{full}" class="ticket-photo"><img src="{thumbnail}" alt="Purchase receipt"' in html
    assert client.get(thumbnail).status_code == 200


def test_staff_add_a_photo_and_it_goes_through_the_upload_pipeline(client, technician, ticket):
    client.force_login(technician)
    response = client.get(change_url(ticket))
    assert 'enctype="multipart/form-data"' in response.content.decode()
    data = change_form_data(response)
    data.update(
        {
            "attachments-TOTAL_FORMS": "1",
            "attachments-0-kind": AttachmentKind.DEVICE_PHOTO,
            "attachments-0-upload": png_upload(),
        }
    )
    response = client.post(change_url(ticket), data)
    assert response.status_code == 302, response.context["inline_admin_formsets"][1].formset.errors
    attachment = ticket.attachments.get()
    assert (attachment.kind, attachment.uploaded_by, attachment.width) == ("device_photo", technician, 40)
    with attachment.image.open("rb") as handle:
        assert handle.read(3) == b"\xff\xd8\xff"  # re-encoded as JPEG


def test_a_file_that_is_not_a_photo_is_refused(client, technician, ticket):
    client.force_login(technician)
    data = change_form_data(client.get(change_url(ticket)))
    data.update(
        {
            "attachments-TOTAL_FORMS": "1",
            "attachments-0-kind": AttachmentKind.RECEIPT,
            "attachments-0-upload": SimpleUploadedFile("receipt.png", b"not an image", content_type="image/png"),
        }
    )
    response = client.post(change_url(ticket), data)
    assert response.status_code == 200
    assert "not an image we can read" in response.content.decode()
    assert not ticket.attachments.exists()


def test_the_change_page_shows_contact_requests_with_the_customers_answer(client, phone_agent, ticket):
    request = ContactRequest.objects.create(
        ticket=ticket,
        kind=ContactRequestKind.MISSING_INFORMATION,
        message="Please send a photo of the receipt.",
        respond_by=timezone.now() + timedelta(days=3),
    )
    request.answer("I sent it by email.")
    client.force_login(phone_agent)
    html = client.get(change_url(ticket)).content.decode()
    assert "Please send a photo of the receipt." in html
    assert "I sent it by email." in html
    assert 'name="contact_requests-0-response"' not in html
    assert 'name="contact_requests-0-message"' not in html


def test_staff_ask_the_customer_something_from_the_ticket_page(
    client, phone_agent, ticket, django_capture_on_commit_callbacks
):
    client.force_login(phone_agent)
    data = change_form_data(client.get(change_url(ticket)))
    respond_by = timezone.localtime() + timedelta(days=5)
    data.update(
        {
            "contact_requests-TOTAL_FORMS": "1",
            "contact_requests-0-kind": ContactRequestKind.QUOTE,
            "contact_requests-0-message": "The screen costs 800 yuan. Shall we repair it?",
            "contact_requests-0-respond_by_0": respond_by.strftime("%Y-%m-%d"),
            "contact_requests-0-respond_by_1": respond_by.strftime("%H:%M:%S"),
            "contact_requests-0-response": "Sneaky answer",
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(change_url(ticket), data)
    assert response.status_code == 302, response.context["inline_admin_formsets"][2].formset.errors
    asked = ticket.contact_requests.get()
    assert (asked.kind, asked.created_by, asked.response, asked.responded_at) == ("quote", phone_agent, "", None)
    assert Notification.objects.filter(contact_request=asked, recipient=ticket.customer).exists()


def test_an_untouched_empty_contact_request_row_is_ignored(client, phone_agent, ticket):
    client.force_login(phone_agent)
    response = client.get(change_url(ticket))
    data = change_form_data(response)
    empty = response.context["inline_admin_formsets"][2].formset.empty_form
    initial = empty["respond_by"].value()
    data.update(
        {
            "contact_requests-TOTAL_FORMS": "1",
            "contact_requests-0-respond_by_0": initial.strftime("%Y-%m-%d"),
            "contact_requests-0-respond_by_1": initial.strftime("%H:%M:%S"),
            "initial-contact_requests-0-respond_by_0": initial.strftime("%Y-%m-%d"),
            "initial-contact_requests-0-respond_by_1": initial.strftime("%H:%M:%S"),
        }
    )
    assert client.post(change_url(ticket), data).status_code == 302
    assert not ticket.contact_requests.exists()


def test_the_change_page_shows_the_rating_and_the_notifications(
    client, supervisor, center, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket_at("completed", center=center)
    Rating.objects.create(ticket=ticket, stars=4, comment="Quick and friendly.")
    client.force_login(supervisor)
    html = client.get(change_url(ticket)).content.decode()
    assert "Quick and friendly." in html
    assert f"Ticket {ticket.number}: Completed" in html
    assert "Hand-over and shipping" in html


def _change_page_queries(client, user, ticket):
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(change_url(ticket))
    assert response.status_code == 200
    return len(queries)


def _loop_through_testing(ticket, technician, rounds):
    for _ in range(rounds):
        ticket.perform("send_to_testing", by=technician, public_note="Testing.", internal_note="Round.")
        ticket.perform("fail_testing", by=technician, internal_note="Still flickers.")


def test_the_change_page_costs_the_same_queries_with_a_long_history(
    client, technician, center, customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        short = make_ticket_at("repairing", center=center)
        _loop_through_testing(short, technician, 1)
        long = make_ticket_at("repairing", center=center)
        _loop_through_testing(long, technician, 20)
    for ticket in (short, long):
        Attachment.add(ticket, AttachmentKind.RECEIPT, tiny_processed_image(), by=customer)
    for _ in range(5):
        Attachment.add(long, AttachmentKind.DEVICE_PHOTO, tiny_processed_image(), by=technician)
        ContactRequest.objects.create(
            ticket=long, kind="other", message="?", respond_by=timezone.now() + timedelta(days=1), created_by=technician
        )
    assert long.events.count() > 40 and long.notifications.count() > 40
    few = _change_page_queries(client, technician, short)
    many = _change_page_queries(client, technician, long)
    assert many == few
    assert many <= 25


# --- Notifications, history and catalogues -------------------------------------------------------


def test_the_notification_list_shows_only_the_users_centers(
    client, technician, ticket, other_center, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        elsewhere = make_ticket(center=other_center)
        mine = make_ticket(center=ticket.service_center)
    client.force_login(technician)
    response = client.get(reverse("admin:tickets_notification_changelist"))
    shown = {n.ticket_id for n in response.context["cl"].result_list}
    assert mine.pk in shown and elsewhere.pk not in shown
    response = client.get(reverse("admin:tickets_notification_changelist"), {"q": mine.number.lower()})
    assert {n.ticket_id for n in response.context["cl"].result_list} == {mine.pk}
    assert client.get(reverse("admin:tickets_notification_add")).status_code == 403


def test_stage_history_is_a_read_only_list(client, supervisor, ticket):
    client.force_login(supervisor)
    response = client.get(reverse("admin:tickets_stageevent_changelist"))
    assert response.status_code == 200
    event = StageEvent.objects.get(ticket=ticket)
    assert client.post(reverse("admin:tickets_stageevent_change", args=[event.pk]), {}).status_code == 403


@pytest.mark.parametrize("model", ["servicecenter", "devicemodel", "faultcategory"])
def test_a_supervisor_manages_the_catalogues(client, supervisor, center, model):
    client.force_login(supervisor)
    assert client.get(reverse(f"admin:tickets_{model}_changelist"), {"q": "x"}).status_code == 200
    assert client.get(reverse(f"admin:tickets_{model}_add")).status_code == 200


def test_a_technician_reads_the_catalogues_but_does_not_change_them(client, technician, center):
    client.force_login(technician)
    assert client.get(reverse("admin:tickets_devicemodel_changelist")).status_code == 200
    assert client.get(reverse("admin:tickets_devicemodel_add")).status_code == 403


# --- Users ------------------------------------------------------------------------------------


def test_a_superuser_adds_a_user_with_email_and_the_password_twice(client, db):
    admin_user = User.objects.create_superuser("root@example.com", "correct horse battery", full_name="Root")
    client.force_login(admin_user)
    add_url = reverse("admin:accounts_user_add")
    form = client.get(add_url).context["adminform"].form
    assert "username" not in form.fields
    assert {"email", "full_name", "password1", "password2"} <= set(form.fields)
    new_tech = {"email": "New.Tech@Example.com", "full_name": "New Tech", "password1": "s3cret-Pass!"}

    response = client.post(add_url, {**new_tech, "password2": "s3cret-Pass"})
    assert response.status_code == 200
    assert not User.objects.filter(email="new.tech@example.com").exists()

    response = client.post(add_url, {**new_tech, "password2": "s3cret-Pass!"})
    assert response.status_code == 302
    assert User.objects.get(email="new.tech@example.com").check_password("s3cret-Pass!")

    twin = {**new_tech, "email": "NEW.TECH@example.com", "password2": "s3cret-Pass!"}
    response = client.post(add_url, twin)
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_a_superuser_puts_staff_in_service_centers(client, center, other_center):
    admin_user = User.objects.create_superuser("root@example.com", "correct horse battery", full_name="Root")
    agent = make_staff(PHONE_AGENT, [center])
    client.force_login(admin_user)
    response = client.get(reverse("admin:accounts_user_change", args=[agent.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="service_centers"' in html and 'class="selectfilter"' in html
    by_role = client.get(reverse("admin:accounts_user_changelist"), {"groups__id__exact": agent.groups.get().pk})
    assert agent in by_role.context["cl"].result_list


def test_the_user_list_costs_the_same_queries_whatever_the_number_of_users(client, db):
    admin_user = User.objects.create_superuser("root@example.com", "correct horse battery", full_name="Root")
    client.force_login(admin_user)
    url = reverse("admin:accounts_user_changelist")
    for role in (TECHNICIAN, SUPERVISOR):
        make_staff(role)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(10):
        make_staff(TECHNICIAN)
        make_customer()
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


def test_saving_the_change_form_after_someone_moved_the_ticket_saves_nothing_and_says_why(client, technician, center):
    from unittest import mock

    from django_fsm import ConcurrentTransition

    ticket = make_ticket_at("inspecting", center=center)
    client.force_login(technician)
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    with mock.patch("tickets.admin.admin.ModelAdmin.changeform_view", side_effect=ConcurrentTransition("moved")):
        response = client.post(url, {})
    assert (response.status_code, response.url) == (302, url)
    assert any("changed stage while you were editing" in str(m) for m in get_messages(response.wsgi_request))


def test_staff_see_the_customers_service_credit_and_why(client, technician, center, customer):
    lost = make_ticket(customer=customer, center=center)
    lost.perform("cancel", by=None, reason="no_response")
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    client.force_login(technician)
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert "service credit" in page.lower()
    assert "75 / 100" in page and lost.number in page and "No response to a contact request" in page


def test_the_back_office_never_shows_the_pickup_code_even_in_a_sent_message(client, phone_agent, center):
    ticket = make_ticket_at("ready_for_pickup", center=center)
    notification = ticket.notifications.filter(event__to_status="ready_for_pickup", channel="in_app").get()
    assert ticket.pickup_code in notification.body
    client.force_login(phone_agent)
    page = client.get(reverse("admin:tickets_notification_change", args=[notification.pk])).content.decode()
    assert ticket.pickup_code not in page and "••••••" in page


def test_a_closed_ticket_cannot_be_asked_anything(center, technician):
    from django.core.exceptions import ValidationError

    from tickets.models import ContactRequest

    ticket = make_ticket_at("completed", center=center)
    with pytest.raises(ValidationError):
        ContactRequest.ask(ticket, by=technician, kind="other", message="?", respond_by=timezone.now() + timedelta(days=1))
    assert not ticket.contact_requests.exists()
