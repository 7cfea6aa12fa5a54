"""Tracking a repair without an account: /track/ with a second factor, and the signed link /t/<token>/."""

import time
import types
import uuid

import pytest
from django.core import signing
from django.urls import reverse

from tickets import tracking
from tickets.models import Ticket
from tickets.views import track as track_views

from .factories import make_ticket, make_ticket_at, mover
from .test_customer_pages import add_photo, timeline_items

NOT_FOUND = "We could not find a ticket with these details"
TRACK = "/track/"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Each test counts failures in a cache of its own."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"track-{uuid.uuid4()}",
        }
    }


@pytest.fixture
def clock(monkeypatch):
    """Move the clock of the throttle and of the cache forward: ``clock.advance(seconds)``."""
    offset = {"seconds": 0.0}
    fake = types.SimpleNamespace(time=lambda: time.time() + offset["seconds"])
    for module in ("django.core.cache.backends.base", "django.core.cache.backends.locmem", "tickets.views.track"):
        monkeypatch.setattr(f"{module}.time", fake)
    return types.SimpleNamespace(advance=lambda seconds: offset.__setitem__("seconds", offset["seconds"] + seconds))


def attempt(client, number, factor, ip="198.51.100.7"):
    return client.post(TRACK, {"number": number, "factor": factor}, REMOTE_ADDR=ip)


@pytest.fixture
def tracked_ticket(customer, center):
    # The customer's phone is +8613800138000, the email wei@example.com.
    return make_ticket_at("inspecting", customer=customer, center=center)


# --- Finding the ticket ---------------------------------------------------------------------------


def test_the_track_page_asks_for_the_number_and_a_second_factor(client, db):
    response = client.get(TRACK)

    content = response.content.decode()
    assert response.status_code == 200
    assert response.context["nav"] == "track"
    assert '<label for="id_number">Ticket number' in content
    assert '<label for="id_factor">Last four digits of your phone number, or your email' in content


def test_the_last_four_digits_of_the_phone_open_the_tracking_link(client, tracked_ticket):
    response = attempt(client, tracked_ticket.number, "8000")

    assert response.status_code == 302
    assert response["Location"] == tracking.tracking_path(tracked_ticket)


def test_the_email_in_another_case_opens_the_tracking_link(client, tracked_ticket):
    response = attempt(client, tracked_ticket.number, "  Wei@EXAMPLE.com ")

    assert response["Location"] == tracking.tracking_path(tracked_ticket)


def test_the_number_may_be_typed_loosely(client, tracked_ticket):
    loose = tracked_ticket.number.replace("-", " ").lower()

    response = attempt(client, loose, "8000")

    assert response["Location"] == tracking.tracking_path(tracked_ticket)


@pytest.mark.parametrize(
    "number, factor",
    [
        ("bad-check-symbol", "8000"),  # a typo: caught before any look-up
        ("not a number", "8000"),
        ("known-number-unknown-ticket", "8000"),
        ("the-ticket", "1234"),  # wrong phone digits
        ("the-ticket", "38000"),  # five digits are not four
        ("the-ticket", "li@example.com"),  # someone else's email
        ("the-ticket", "800"),
    ],
)
def test_every_failure_gets_the_same_answer(client, tracked_ticket, number, factor):
    if number == "the-ticket":
        number = tracked_ticket.number
    elif number == "bad-check-symbol":
        last = tracked_ticket.number[-1]
        number = tracked_ticket.number[:-1] + ("0" if last != "0" else "1")
    elif number == "known-number-unknown-ticket":
        number = _valid_number_of_no_ticket()

    response = attempt(client, number, factor)

    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert len(errors) == 1 and errors[0].startswith(NOT_FOUND)
    assert NOT_FOUND in response.content.decode()


def _valid_number_of_no_ticket():
    from tickets import numbers

    while True:
        number = numbers.generate()
        if not Ticket.objects.filter(number=number).exists():
            return number


def test_an_unknown_number_and_a_wrong_factor_look_exactly_alike(client, tracked_ticket):
    unknown = attempt(client, _valid_number_of_no_ticket(), "8000")
    wrong = attempt(client, tracked_ticket.number, "1234")

    assert unknown.status_code == wrong.status_code == 200
    assert unknown.context["form"].non_field_errors() == wrong.context["form"].non_field_errors()


def test_a_ticket_without_email_is_not_found_by_an_empty_looking_email(client, customer, center):
    ticket = make_ticket(customer=customer, center=center, contact_email="")

    response = attempt(client, ticket.number, "@")

    assert response.status_code == 200
    assert NOT_FOUND in response.content.decode()


def test_empty_fields_are_asked_for_again(client, db):
    response = attempt(client, "", "")

    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"number", "factor"}


# --- The throttle -------------------------------------------------------------------------------------


def test_too_many_failures_block_the_client_even_with_the_right_details(client, tracked_ticket, settings):
    settings.TRACK_MAX_FAILURES = 3
    for _ in range(3):
        assert attempt(client, tracked_ticket.number, "0000").status_code == 200

    response = attempt(client, tracked_ticket.number, "8000")

    assert response.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in response.content.decode()
    assert int(response["Retry-After"]) <= 15 * 60
    assert NOT_FOUND not in response.content.decode()


def test_the_throttle_counts_per_client_address(client, tracked_ticket, settings):
    settings.TRACK_MAX_FAILURES = 2
    for _ in range(2):
        attempt(client, tracked_ticket.number, "0000", ip="203.0.113.1")

    assert attempt(client, tracked_ticket.number, "8000", ip="203.0.113.1").status_code == 429
    assert attempt(client, tracked_ticket.number, "8000", ip="203.0.113.2").status_code == 302


def test_a_success_does_not_reset_the_count_of_failures(client, tracked_ticket, settings):
    settings.TRACK_MAX_FAILURES = 3
    attempt(client, tracked_ticket.number, "0000")
    attempt(client, tracked_ticket.number, "0000")
    assert attempt(client, tracked_ticket.number, "8000").status_code == 302
    attempt(client, tracked_ticket.number, "0000")

    assert attempt(client, tracked_ticket.number, "8000").status_code == 429


def test_the_block_lifts_when_the_window_ends(client, tracked_ticket, settings, clock):
    settings.TRACK_MAX_FAILURES = 2
    settings.TRACK_WINDOW_SECONDS = 600
    attempt(client, tracked_ticket.number, "0000")
    attempt(client, tracked_ticket.number, "0000")

    clock.advance(9 * 60 + 1)
    waiting = attempt(client, tracked_ticket.number, "8000")
    clock.advance(60)
    later = attempt(client, tracked_ticket.number, "8000")

    assert waiting.status_code == 429
    assert "Try again in 1 minute." in waiting.content.decode()
    assert later.status_code == 302


def test_the_default_throttle_is_ten_failures_in_fifteen_minutes(client, tracked_ticket):
    for _ in range(10):
        assert attempt(client, tracked_ticket.number, "0000").status_code == 200

    assert attempt(client, tracked_ticket.number, "8000").status_code == 429
    assert track_views.DEFAULT_WINDOW_SECONDS == 15 * 60


# --- The tracking view ------------------------------------------------------------------------------


def test_the_tracking_link_shows_the_number_device_stage_and_public_progress(client, customer, center):
    ticket = make_ticket_at("inspecting", customer=customer, center=center)
    ticket.perform("start_repair", by=mover(), public_note="New screen on its way.", internal_note="Fragile frame")

    response = client.get(tracking.tracking_path(ticket))

    content = response.content.decode()
    assert response.status_code == 200
    assert ticket.number in content
    assert ticket.device_label in content
    items = timeline_items(response)
    assert [item["stage"] for item in items][:3] == ["Submitted", "Inspecting", "Repairing"]
    assert items[2]["current"] == "step"
    assert items[2]["notes"] == ["New screen on its way."]
    assert "Fragile frame" not in content


def test_the_tracking_view_shows_no_personal_data_and_no_photos(client, customer, center):
    center.address = "88 Caoxi Road, Xuhui"
    center.save()
    ticket = make_ticket_at(
        "ready_for_pickup", customer=customer, center=center, return_address="Flat 5, 12 Secret Lane"
    )
    Ticket.objects.filter(pk=ticket.pk).update(pickup_code="QZ7W3K")
    photo = add_photo(ticket, customer)

    content = client.get(tracking.tracking_path(ticket)).content.decode()

    for private in (
        customer.full_name,
        "Wang",
        "+8613800138000",
        "13800138000",
        "wei@example.com",
        ticket.imei_or_serial,
        "QZ7W3K",
        "Secret Lane",
        str(photo.public_id),
        "/attachments/",
    ):
        assert private not in content, private
    assert "<img" not in content


def test_the_tracking_view_offers_to_log_in_to_see_everything(client, tracked_ticket):
    content = client.get(tracking.tracking_path(tracked_ticket)).content.decode()

    assert "Log in to see everything" in content
    assert f"next=%2Fmy%2Ftickets%2F{tracked_ticket.number}%2F" in content


def test_a_tracking_link_with_a_changed_signature_is_not_found(client, tracked_ticket):
    token = tracking.token_for(tracked_ticket)
    number, signature = token.rsplit(".", 1)
    forged = f"{number}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}"

    assert client.get(reverse("tickets:track_token", args=[forged])).status_code == 404


def test_another_tickets_number_with_this_signature_is_not_found(client, tracked_ticket, customer, center):
    other = make_ticket(customer=customer, center=center)
    signature = tracking.token_for(tracked_ticket).rsplit(".", 1)[1]

    response = client.get(reverse("tickets:track_token", args=[f"{other.number}.{signature}"]))

    assert response.status_code == 404


@pytest.mark.parametrize("token", ["garbage", "7K3Q-9XWD-M2PA", "7K3Q-9XWD-M2PA."])
def test_a_damaged_tracking_link_is_not_found(client, db, token):
    assert client.get(reverse("tickets:track_token", args=[token])).status_code == 404


def test_a_validly_signed_number_of_a_deleted_ticket_is_not_found(client, db):
    token = signing.Signer(salt="tickets.tracking-link", sep=".").sign("7K3Q-9XWD-M2P0")

    assert client.get(reverse("tickets:track_token", args=[token])).status_code == 404


def test_with_redis_the_throttle_is_shared_by_every_app_server(client, tracked_ticket, settings):
    """At scale the cache is Redis (REDIS_URL): failures counted by one server block the client on all."""
    import redis
    from django.core.cache import caches

    url = "redis://127.0.0.1:6379/14"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": f"t{uuid.uuid4().hex}"}}
    settings.TRACK_MAX_FAILURES = 2
    try:
        for _ in range(2):
            attempt(client, tracked_ticket.number, "0000", ip="203.0.113.9")
        # A second app server: a client of its own, a cache connection of its own, the same Redis.
        other_server = type(client)()
        caches["default"].close()
        del caches["default"]
        assert attempt(other_server, tracked_ticket.number, "8000", ip="203.0.113.9").status_code == 429
        assert redis.from_url(url).keys(f"{settings.CACHES['default']['KEY_PREFIX']}*")
    finally:
        caches["default"].clear()


def test_behind_trusted_proxies_the_client_is_the_address_the_first_proxy_saw(client, tracked_ticket, settings):
    settings.TRACK_MAX_FAILURES = 2
    settings.TRACK_TRUSTED_PROXIES = 1
    for _ in range(2):
        client.post(TRACK, {"number": tracked_ticket.number, "factor": "0000"}, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.20")
    blocked = client.post(TRACK, {"number": tracked_ticket.number, "factor": "8000"}, REMOTE_ADDR="10.0.0.3", HTTP_X_FORWARDED_FOR="9.9.9.9, 198.51.100.20")
    assert blocked.status_code == 429  # a forged left-hand entry does not change who is counted
    other_customer = client.post(TRACK, {"number": tracked_ticket.number, "factor": "8000"}, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.21")
    assert other_customer.status_code == 302  # someone else behind the same balancer is not blocked


def test_an_ipv6_subscriber_counts_as_its_64_network(client, tracked_ticket, settings):
    settings.TRACK_MAX_FAILURES = 2
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
        attempt(client, tracked_ticket.number, "0000", ip=host)
    assert attempt(client, tracked_ticket.number, "8000", ip="2001:db8:1:2:ffff::9").status_code == 429
    assert attempt(client, tracked_ticket.number, "8000", ip="2001:db8:1:3::1").status_code == 302


def test_guesses_at_one_ticket_from_many_addresses_are_limited(client, tracked_ticket, settings):
    settings.TRACK_MAX_FAILURES = 2
    for i in range(4):  # twice the per-client limit, from four addresses
        assert attempt(client, tracked_ticket.number, "0000", ip=f"198.51.100.{i + 1}").status_code == 200
    assert attempt(client, tracked_ticket.number, "8000", ip="198.51.100.99").status_code == 429


def test_a_burst_of_parallel_guesses_cannot_outrun_the_limit(tracked_ticket, settings):
    """Each attempt is counted before the look-up, so at most the limit are ever checked."""
    from unittest import mock

    from tickets.views import track as track_view

    settings.TRACK_MAX_FAILURES = 3
    checked = []
    real_find = track_view._find

    def slow_find(*args):
        checked.append(1)
        return real_find(*args)

    from django.test import RequestFactory

    factory = RequestFactory()
    with mock.patch.object(track_view, "_find", side_effect=slow_find):
        statuses = []
        for _ in range(10):  # interleaving does not matter: the count is taken before _find runs
            request = factory.post(TRACK, {"number": tracked_ticket.number, "factor": "0000"}, REMOTE_ADDR="203.0.113.50")
            request._dont_enforce_csrf_checks = True
            from django.contrib.messages.storage.fallback import FallbackStorage
            from django.contrib.sessions.backends.cache import SessionStore

            request.session = SessionStore()
            request._messages = FallbackStorage(request)
            request.user = type("Anon", (), {"is_authenticated": False, "is_staff": False})()
            statuses.append(track_view.track(request).status_code)
    assert len(checked) == 3
    assert statuses.count(429) == 7


def test_the_tracking_view_does_not_echo_a_device_name_the_customer_typed(client, customer, center):
    from tickets import tracking

    from .factories import make_ticket

    ticket = make_ticket(customer=customer, center=center, device_model=None, device_other="Wang Wei's phone 13800138000")
    page = client.get(tracking.tracking_path(ticket)).content.decode()
    assert "13800138000" not in page and "Other device" in page
