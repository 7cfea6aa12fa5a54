"""Plain factory functions for tests: ``make_ticket(**kw)`` and friends."""

import itertools
from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from tickets.models import DeviceCategory, DeviceModel, FaultCategory, ServiceCenter, Ticket

_seq = itertools.count(1)

# 15-digit IMEIs that pass the Luhn check.
VALID_IMEIS = ["490154203237518", "356938035643809", "353918057312734", "352099001761481"]


def make_center(code=None, **kw):
    n = next(_seq)
    code = code or f"c{n}"
    return ServiceCenter.objects.create(code=code, name=kw.pop("name", f"Center {code}"), **kw)


def make_device_model(**kw):
    n = next(_seq)
    kw.setdefault("brand", "Acme")
    kw.setdefault("name", f"Phone {n}")
    kw.setdefault("category", DeviceCategory.PHONE)
    kw.setdefault("warranty_months", 12)
    return DeviceModel.objects.create(**kw)


def make_fault(**kw):
    n = next(_seq)
    kw.setdefault("code", f"fault-{n}")
    kw.setdefault("name", f"Fault {n}")
    return FaultCategory.objects.create(**kw)


def make_customer(**kw):
    n = next(_seq)
    kw.setdefault("email", f"customer{n}@example.com")
    kw.setdefault("full_name", f"Customer {n}")
    kw.setdefault("phone", f"+861380013{n % 10000:04d}")
    return User.objects.create_user(password=kw.pop("password", "correct horse battery"), **kw)


def make_staff(role, centers=(), **kw):
    n = next(_seq)
    kw.setdefault("email", f"staff{n}@example.com")
    kw.setdefault("full_name", f"{role} {n}")
    user = User.objects.create_user(password=kw.pop("password", "correct horse battery"), is_staff=True, **kw)
    user.groups.add(Group.objects.get(name=role))
    user.service_centers.set(centers)
    return user


def make_ticket(**kw):
    """A ticket in ``submitted``, created through Ticket.open_ticket (so it has its first event)."""
    customer = kw.pop("customer", None) or make_customer()
    by = kw.pop("by", customer)
    kw.setdefault("service_center", kw.pop("center", None) or make_center())
    kw.setdefault("fault_category", make_fault())
    if "device_model" not in kw:
        kw["device_model"] = make_device_model()
    kw.setdefault("imei_or_serial", VALID_IMEIS[0])
    kw.setdefault("symptom_description", "The screen stays black after a drop.")
    kw.setdefault("contact_name", customer.full_name)
    kw.setdefault("contact_phone", customer.phone or "+8613800138000")
    kw.setdefault("contact_email", customer.email)
    kw.setdefault("purchase_date", timezone.localdate() - timedelta(days=100))
    return Ticket.open_ticket(by=by, customer=customer, **kw)


# The path of actions that brings a fresh ticket to each stage.
PATH_TO = {
    "submitted": [],
    "inspecting": ["receive_device"],
    "awaiting_parts": ["receive_device", "order_parts"],
    "repairing": ["receive_device", "start_repair"],
    "testing": ["receive_device", "start_repair", "send_to_testing"],
    "ready_for_pickup": ["receive_device", "start_repair", "send_to_testing", "pass_testing"],
    "awaiting_return_shipment": ["receive_device", "start_repair", "send_to_testing", "pass_testing"],
    "completed": ["receive_device", "start_repair", "send_to_testing", "pass_testing", "hand_over"],
    "cancelled": ["cancel"],
}

DETAILS = {
    "hand_over": {"check": "id_document"},
    "ship_back": {"carrier": "SF Express", "tracking_number": "SF1234567890"},
    "cancel": {"reason": "out_of_warranty"},
}


def mover():
    """A supervisor (all centers, every stage permission) who moves tickets in test set-ups."""
    user = User.objects.filter(email="mover@example.com").first()
    return user or make_staff("Supervisor", email="mover@example.com", full_name="Test Mover")


def advance(ticket, status, by=None):
    """Move ``ticket`` (fresh, submitted) to ``status`` through the one door."""
    if status == "awaiting_return_shipment" and ticket.return_method != "ship_back":
        raise ValueError("make the ticket with return_method='ship_back'")
    by = by or mover()
    for action in PATH_TO[status]:
        ticket.perform(action, by=by, **DETAILS.get(action, {}))
    return ticket


def make_ticket_at(status, **kw):
    if status == "awaiting_return_shipment":
        kw.setdefault("return_method", "ship_back")
        kw.setdefault("return_address", "1 Example Road, Shanghai")
    return advance(make_ticket(**kw), status)
