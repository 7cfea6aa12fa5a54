"""Reports: every figure on a known set of tickets and histories, the CSV exports, scoping and permissions.

The story (times are the desk's, Asia/Shanghai, UTC+8), March 2024:

| ticket | center | model | fault | history (hours in each stage) | end |
| --- | --- | --- | --- | --- | --- |
| T1 | A | m1 | screen | submitted 4, inspecting 24, repairing 24, testing 2 (failed), repairing 24, testing 1, ready 24 | completed 5 Mar, 103 h; 5★ "Great" published |
| T2 | A | m1 | screen | submitted 2, inspecting 24, awaiting parts 168, repairing 24, testing 2, ready 24 | completed 12 Mar, 244 h; 2★ "Slow" private |
| T3 | A | m2 | battery | submitted 24 | cancelled by the customer from submitted |
| T4 | B | m3 | water | opened 1 Mar 00:30 (29 Feb in UTC); submitted 10, inspecting 48, repairing 24, testing 2, return shipment 8 | completed 4 Mar, 92 h; 4★ "OK" published |
| T5 | B | m3 | screen | submitted 1, inspecting 24 | cancelled by staff |
| T6 | A | m1 | screen | same IMEI as T1, opened 20 Mar: a repeat repair | inspecting now |
| T7 | A | m2 | battery | opened 25 Mar | submitted now |
| T8 | B | (other) | water | submitted 48 | cancelled by the system |
| T9 | A | m1 | battery | opened 20 Feb: submitted 24, inspecting 2, repairing 24, testing 1, ready 216 (29 Feb!) | completed 2 Mar, 267 h; 3★ no comment |
| T11 | A | m2 | screen | opened 15 Mar, IMEI last repaired (T0) in November 2023: not a repeat | submitted now |

"Now" is 31 March 2024, 12:00.
"""

import csv
import io
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import TECHNICIAN
from tickets import reports
from tickets.models import Rating

from .factories import make_center, make_customer, make_device_model, make_fault, make_staff, make_ticket, mover

SHANGHAI = ZoneInfo("Asia/Shanghai")
MARCH = reports.Period(date(2024, 3, 1), date(2024, 3, 31))
NOW = datetime(2024, 3, 31, 12, 0, tzinfo=SHANGHAI)
H = 3600.0

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_ratings():
    """The public ratings are cached: each test starts (and leaves) without them."""
    from django.core.cache import cache

    from tickets.reports import PUBLIC_RATINGS_CACHE_KEY

    cache.delete(PUBLIC_RATINGS_CACHE_KEY)
    yield
    cache.delete(PUBLIC_RATINGS_CACHE_KEY)


@pytest.fixture(autouse=True)
def _desk_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    settings.REPORT_SLA_HOURS = {}  # the defaults, whatever settings.py says
    settings.REPORT_REPEAT_REPAIR_DAYS = 90


_REAL_NOW = timezone.now


@contextmanager
def clock(when):
    """Run the block as if it were ``when``: timezone.now() and every ``default=timezone.now`` field.

    Customer notifications are not recorded meanwhile: the reports do not
    read them, and rendering them is most of the cost of a stage change.
    """
    fake_now = lambda: when  # noqa: E731
    with ExitStack() as stack:
        stack.enter_context(mock.patch("django.utils.timezone.now", fake_now))
        stack.enter_context(mock.patch("tickets.models._notify_stage_change", lambda event: None))
        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if field.default is _REAL_NOW:
                    stack.enter_context(mock.patch.object(field, "_get_default", fake_now))
        yield


def at(month, day, hour, minute=0, year=2024):
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


DETAILS = {
    "hand_over": {"check": "id_document"},
    "ship_back": {"carrier": "SF Express", "tracking_number": "SF1234567890"},
}


def story(opened, steps, **ticket_kw):
    """A ticket opened at ``opened`` whose history is ``steps``: [(when, action, by, details)]."""
    with clock(opened):
        ticket = make_ticket(**ticket_kw)
    for when, action, *rest in steps:
        by = rest[0] if rest else mover()
        details = rest[1] if len(rest) > 1 else DETAILS.get(action, {})
        with clock(when):
            ticket.perform(action, by=by, **details)
    return ticket


def rate(ticket, stars, when, comment="", publish=False):
    return Rating.objects.create(ticket=ticket, stars=stars, comment=comment, publish=publish, created_at=when)


class Desk:
    """The known set of tickets described at the top of this file."""

    def __init__(self, center_a, center_b):
        self.a, self.b = center_a, center_b
        self.m1 = make_device_model(brand="Acme", name="Phone 1")
        self.m2 = make_device_model(brand="Acme", name="Phone 2")
        self.m3 = make_device_model(brand="Zeta", name="Tab")
        self.screen = make_fault(code="screen", name="Screen", name_zh_hans="屏幕", sort_order=1)
        self.battery = make_fault(code="battery", name="Battery", sort_order=2)
        self.water = make_fault(code="water", name="Water damage", sort_order=3)
        with clock(at(3, 1, 8)):
            mover()
            self.customer = make_customer()
        customer = self.customer
        common = {"customer": customer}

        self.t1 = story(
            at(3, 1, 9),
            [
                (at(3, 1, 13), "receive_device"),
                (at(3, 2, 13), "start_repair"),
                (at(3, 3, 13), "send_to_testing"),
                (at(3, 3, 15), "fail_testing"),
                (at(3, 4, 15), "send_to_testing"),
                (at(3, 4, 16), "pass_testing"),
                (at(3, 5, 16), "hand_over"),
            ],
            center=self.a, device_model=self.m1, fault_category=self.screen, imei_or_serial="SN0001", **common,
        )
        self.t2 = story(
            at(3, 2, 10),
            [
                (at(3, 2, 12), "receive_device"),
                (at(3, 3, 12), "order_parts"),
                (at(3, 10, 12), "start_repair"),
                (at(3, 11, 12), "send_to_testing"),
                (at(3, 11, 14), "pass_testing"),
                (at(3, 12, 14), "hand_over"),
            ],
            center=self.a, device_model=self.m1, fault_category=self.screen, imei_or_serial="SN0002", **common,
        )
        self.t3 = story(
            at(3, 5, 10),
            [(at(3, 6, 10), "cancel", customer, {"reason": "solved_myself"})],
            center=self.a, device_model=self.m2, fault_category=self.battery, imei_or_serial="SN0003", **common,
        )
        self.t4 = story(
            at(3, 1, 0, 30),
            [
                (at(3, 1, 10, 30), "receive_device"),
                (at(3, 3, 10, 30), "start_repair"),
                (at(3, 4, 10, 30), "send_to_testing"),
                (at(3, 4, 12, 30), "pass_testing"),
                (at(3, 4, 20, 30), "ship_back"),
            ],
            center=self.b, device_model=self.m3, fault_category=self.water, imei_or_serial="SN0004",
            return_method="ship_back", return_address="1 Example Road, Beijing", **common,
        )
        self.t5 = story(
            at(3, 10, 10),
            [(at(3, 10, 11), "receive_device"), (at(3, 11, 11), "cancel", mover(), {"reason": "out_of_warranty"})],
            center=self.b, device_model=self.m3, fault_category=self.screen, imei_or_serial="SN0005", **common,
        )
        self.t6 = story(
            at(3, 20, 10),
            [(at(3, 20, 12), "receive_device")],
            center=self.a, device_model=self.m1, fault_category=self.screen, imei_or_serial="SN0001", **common,
        )
        self.t7 = story(
            at(3, 25, 10), [],
            center=self.a, device_model=self.m2, fault_category=self.battery, imei_or_serial="SN0006", **common,
        )
        self.t8 = story(
            at(3, 28, 10),
            [(at(3, 30, 10), "cancel", None, {"reason": "device_not_received"})],
            center=self.b, device_model=None, device_other="Foo X", fault_category=self.water,
            imei_or_serial="SN0007", **common,
        )
        self.t9 = story(
            at(2, 20, 10),
            [
                (at(2, 21, 10), "receive_device"),
                (at(2, 21, 12), "start_repair"),
                (at(2, 22, 12), "send_to_testing"),
                (at(2, 22, 13), "pass_testing"),
                (at(3, 2, 13), "hand_over"),
            ],
            center=self.a, device_model=self.m1, fault_category=self.battery, imei_or_serial="SN0008", **common,
        )
        self.t0 = story(
            at(10, 20, 10, year=2023),
            [
                (at(10, 21, 10, year=2023), "receive_device"),
                (at(10, 22, 10, year=2023), "start_repair"),
                (at(10, 23, 10, year=2023), "send_to_testing"),
                (at(10, 23, 12, year=2023), "pass_testing"),
                (at(11, 1, 10, year=2023), "hand_over"),
            ],
            center=self.a, device_model=self.m2, fault_category=self.screen, imei_or_serial="SN0009", **common,
        )
        self.t11 = story(
            at(3, 15, 10), [],
            center=self.a, device_model=self.m2, fault_category=self.screen, imei_or_serial="SN0009", **common,
        )
        # In the order customers gave them.
        rate(self.t9, 3, at(3, 3, 10))
        rate(self.t4, 4, at(3, 5, 10), "OK", publish=True)
        rate(self.t1, 5, at(3, 6, 10), "Great", publish=True)
        rate(self.t2, 2, at(3, 13, 10), "Slow", publish=False)


@pytest.fixture
def desk(center, other_center):
    return Desk(center, other_center)


def by(rows, key):
    return {row[key]: row for row in rows}


# --- Volume -------------------------------------------------------------------------------


def test_volume_per_day_counts_each_milestone_on_the_desks_local_day(desk):
    rows = reports.volume_over_time(MARCH, None)

    assert [row["bucket"] for row in rows] == [date(2024, 3, d) for d in range(1, 32)]
    days = {row["bucket"].day: (row["opened"], row["completed"], row["cancelled"]) for row in rows}
    # T4 was opened at 00:30 on 1 March in Shanghai, still 29 February in UTC.
    assert days[1] == (2, 0, 0)
    assert days[2] == (1, 1, 0)  # T2 opened; T9 completed
    assert days[4] == (0, 1, 0)  # T4 shipped back at 20:30 (12:30 UTC)
    assert days[5] == (1, 1, 0)
    assert days[6] == (0, 0, 1)
    assert days[10] == (1, 0, 0)
    assert days[11] == (0, 0, 1)
    assert days[12] == (0, 1, 0)
    assert days[15] == (1, 0, 0)
    assert days[20] == (1, 0, 0)
    assert days[25] == (1, 0, 0)
    assert days[28] == (1, 0, 0)
    assert days[30] == (0, 0, 1)
    quiet = set(range(1, 32)) - {1, 2, 4, 5, 6, 10, 11, 12, 15, 20, 25, 28, 30}
    assert all(days[d] == (0, 0, 0) for d in quiet)
    assert sum(r["opened"] for r in rows) == 9
    assert sum(r["completed"] for r in rows) == 4
    assert sum(r["cancelled"] for r in rows) == 3


def test_a_ticket_opened_after_local_midnight_is_not_counted_on_the_utc_day_before(desk):
    leap_day = reports.Period(date(2024, 2, 29), date(2024, 2, 29))
    assert reports.volume_over_time(leap_day, None) == [
        {"bucket": date(2024, 2, 29), "opened": 0, "completed": 0, "cancelled": 0}
    ]


def test_volume_per_week_starts_on_monday_and_per_month(desk):
    weeks = reports.volume_over_time(reports.Period(MARCH.start, MARCH.end, reports.WEEK), None)
    assert [(r["bucket"], r["opened"], r["completed"], r["cancelled"]) for r in weeks] == [
        (date(2024, 2, 26), 3, 1, 0),  # 1–3 March only: the period starts on Friday 1 March
        (date(2024, 3, 4), 2, 2, 1),  # Sunday 10 March still belongs to this week
        (date(2024, 3, 11), 1, 1, 1),
        (date(2024, 3, 18), 1, 0, 0),
        (date(2024, 3, 25), 2, 0, 1),
    ]
    months = reports.volume_over_time(reports.Period(date(2024, 2, 1), MARCH.end, reports.MONTH), None)
    assert [(r["bucket"], r["opened"], r["completed"], r["cancelled"]) for r in months] == [
        (date(2024, 2, 1), 1, 0, 0),  # T9
        (date(2024, 3, 1), 9, 4, 3),
    ]


def test_volume_by_center(desk):
    rows = by(reports.volume_by_center(MARCH, None), "center")
    assert (rows["Shanghai Xuhui"]["opened"], rows["Shanghai Xuhui"]["completed"], rows["Shanghai Xuhui"]["cancelled"]) == (6, 3, 1)
    assert (rows["Beijing Chaoyang"]["opened"], rows["Beijing Chaoyang"]["completed"], rows["Beijing Chaoyang"]["cancelled"]) == (3, 1, 2)
    assert [r["center"] for r in reports.volume_by_center(MARCH, None)] == ["Beijing Chaoyang", "Shanghai Xuhui"]


def test_work_in_progress_counts_open_tickets_per_stage_with_their_age(desk):
    rows = reports.work_in_progress(None, now=NOW)

    assert [row["stage"] for row in rows] == [
        "submitted", "inspecting", "awaiting_parts", "repairing", "testing", "ready_for_pickup", "awaiting_return_shipment",
    ]
    stages = by(rows, "stage")
    # T7 (6 days old) and T11 (16 days old) wait for their devices; T6 (11 days) is being inspected.
    assert stages["submitted"]["count"] == 2
    assert (stages["submitted"]["age_3_7"], stages["submitted"]["age_14_plus"]) == (1, 1)
    assert stages["submitted"]["oldest_created_at"] == desk.t11.created_at
    assert stages["inspecting"]["count"] == 1
    assert stages["inspecting"]["age_7_14"] == 1
    assert stages["inspecting"]["oldest_created_at"] == desk.t6.created_at
    bands = [key for key, _lower, _upper in reports.age_bands()]
    assert bands == ["age_0_1", "age_1_3", "age_3_7", "age_7_14", "age_14_plus"]
    for stage in ("awaiting_parts", "repairing", "testing", "ready_for_pickup", "awaiting_return_shipment"):
        assert stages[stage]["count"] == 0 and stages[stage]["oldest_created_at"] is None
        assert all(stages[stage][band] == 0 for band in bands)
    assert sum(stages["submitted"][band] for band in bands) == 2


# --- Time -----------------------------------------------------------------------------------

# (tickets, median hours, p90 hours, target hours, over target) per stage, for the tickets closed in March.
EXPECTED_TIMES = {
    "submitted": (7, 10, 33.6, 168, 0),  # 1 2 4 10 24 24 48 (T3 and T8 cancelled from submitted count too)
    "inspecting": (5, 24, 38.4, 24, 1),  # 2 24 24 24 48: exactly on target is not over
    "awaiting_parts": (1, 168, 168, 120, 1),
    "repairing": (4, 24, 40.8, 48, 0),  # T1's two visits add up: 24 24 24 48
    "testing": (4, 2, 2.7, 24, 0),  # 1 2 2 3
    "ready_for_pickup": (3, 24, 177.6, 168, 1),  # 24 24 216 (2024 has a 29 February)
    "awaiting_return_shipment": (1, 8, 8, 24, 0),
    "end_to_end": (4, 173.5, 260.1, 240, 2),  # completed only: 92 103 244 267
}


def test_stage_times_give_median_and_90th_percentile_per_stage_and_end_to_end(desk):
    rows = reports.stage_times(MARCH, None)

    assert [row["stage"] for row in rows] == list(EXPECTED_TIMES)
    for row in rows:
        tickets, median, p90, target, over = EXPECTED_TIMES[row["stage"]]
        assert row["tickets"] == tickets, row
        assert row["median_seconds"] == pytest.approx(median * H, abs=1), row
        assert row["p90_seconds"] == pytest.approx(p90 * H, abs=1), row
        assert row["target_seconds"] == target * H
        assert row["over_target"] == over, row


@pytest.mark.postgres
def test_the_percentiles_match_postgresqls_percentile_cont(desk):
    durations_sql, params = reports._durations_sql(MARCH, None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""{durations_sql}
            SELECT stage, percentile_cont(0.5) WITHIN GROUP (ORDER BY secs),
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY secs)
            FROM durations GROUP BY stage""",
            params,
        )
        expected = {stage: (median, p90) for stage, median, p90 in cursor.fetchall()}
    for row in reports.stage_times(MARCH, None):
        if row["tickets"]:
            assert (row["median_seconds"], row["p90_seconds"]) == pytest.approx(expected[row["stage"]], abs=0.01)


def test_a_stage_no_ticket_reached_has_no_times(desk):
    only_b = reports.stage_times(MARCH, [desk.b.pk])
    stages = by(only_b, "stage")
    # Center B: T4 (shipped back), T5 (cancelled while inspecting), T8 (cancelled from submitted).
    assert stages["awaiting_parts"] == {
        "stage": "awaiting_parts", "tickets": 0, "median_seconds": None, "p90_seconds": None,
        "target_seconds": 120 * H, "over_target": 0,
    }
    assert stages["ready_for_pickup"]["tickets"] == 0
    assert stages["submitted"]["tickets"] == 3
    assert stages["submitted"]["median_seconds"] == pytest.approx(10 * H, abs=1)  # 1 10 48
    assert stages["end_to_end"]["tickets"] == 1
    assert stages["end_to_end"]["median_seconds"] == pytest.approx(92 * H, abs=1)


def test_a_ticket_cancelled_from_submitted_counts_only_in_submitted(center):
    customer = make_customer()
    story(at(3, 5, 10), [(at(3, 6, 10), "cancel", customer, {"reason": "no_longer_needed"})], center=center, customer=customer)
    stages = by(reports.stage_times(MARCH, None), "stage")
    assert stages["submitted"]["tickets"] == 1
    assert stages["submitted"]["median_seconds"] == pytest.approx(24 * H, abs=1)
    assert stages["submitted"]["p90_seconds"] == pytest.approx(24 * H, abs=1)
    assert all(stages[s]["tickets"] == 0 for s in stages if s != "submitted")


def test_sla_targets_come_from_settings(desk, settings):
    settings.REPORT_SLA_HOURS = {"inspecting": 47, "testing": None, "end_to_end": 100}
    stages = by(reports.stage_times(MARCH, None), "stage")
    assert (stages["inspecting"]["target_seconds"], stages["inspecting"]["over_target"]) == (47 * H, 1)
    assert (stages["testing"]["target_seconds"], stages["testing"]["over_target"]) == (None, None)
    assert stages["end_to_end"]["over_target"] == 3  # 103, 244, 267 > 100
    assert stages["repairing"]["target_seconds"] == 48 * H  # the default stays


def test_closed_tickets_over_target_are_listed_largest_excess_first(desk):
    rows = reports.closed_over_target(MARCH, None)
    listed = [(row["number"], row["stage"], round(row["seconds"] / H, 2), row["target_seconds"] / H) for row in rows]
    # Excess: 48 h (a tie), 27 h, 24 h, 4 h.
    assert set(listed[:2]) == {(desk.t2.number, "awaiting_parts", 168, 120), (desk.t9.number, "ready_for_pickup", 216, 168)}
    assert listed[2:] == [
        (desk.t9.number, "end_to_end", 267, 240),
        (desk.t4.number, "inspecting", 48, 24),
        (desk.t2.number, "end_to_end", 244, 240),
    ]
    assert {row["center"] for row in rows} == {"Shanghai Xuhui", "Beijing Chaoyang"}
    assert len(reports.closed_over_target(MARCH, None, limit=2)) == 2
    assert reports.closed_over_target(MARCH, [desk.b.pk]) == [
        {"number": desk.t4.number, "center": "Beijing Chaoyang", "stage": "inspecting", "seconds": pytest.approx(48 * H, abs=1), "target_seconds": 24 * H}
    ]


def test_open_tickets_over_their_stage_target_now(desk):
    counts = by(reports.open_over_target_counts(None, now=NOW), "stage")
    assert (counts["submitted"]["tickets"], counts["submitted"]["over_target"]) == (2, 1)  # T11 (16 d); T7 6 d 2 h
    assert (counts["inspecting"]["tickets"], counts["inspecting"]["over_target"]) == (1, 1)  # T6 (11 d)
    assert all(counts[s]["tickets"] == counts[s]["over_target"] == 0 for s in ("awaiting_parts", "repairing", "testing"))

    rows = reports.open_over_target(None, now=NOW)
    assert [(r["number"], r["stage"]) for r in rows] == [(desk.t11.number, "submitted"), (desk.t6.number, "inspecting")]
    assert rows[0]["seconds"] == (NOW - at(3, 15, 10)).total_seconds()
    assert rows[0]["target_seconds"] == 168 * H
    assert rows[1]["entered"] == at(3, 20, 12)
    assert rows[1]["center"] == "Shanghai Xuhui"
    assert reports.open_over_target([desk.b.pk], now=NOW) == []


# --- Cancellations ------------------------------------------------------------------------


def test_cancellations_by_actor_and_reason_list_every_reason(desk):
    rows = reports.cancellations_by_reason(MARCH, None)
    assert [(r["actor"], r["reason"], r["count"]) for r in rows] == [
        ("customer", "solved_myself", 1),
        ("customer", "no_longer_needed", 0),
        ("customer", "customer_other", 0),
        ("staff", "out_of_warranty", 1),
        ("staff", "damage_not_covered", 0),
        ("staff", "incomplete_information", 0),
        ("staff", "staff_other", 0),
        ("system", "no_response", 0),
        ("system", "device_not_received", 1),
    ]
    assert [r["share"] for r in rows if r["count"]] == [pytest.approx(1 / 3)] * 3


def test_cancellations_over_time_by_actor(desk):
    rows = by(reports.cancellations_over_time(MARCH, None), "bucket")
    assert rows[date(2024, 3, 6)] == {"bucket": date(2024, 3, 6), "customer": 1, "staff": 0, "system": 0, "total": 1}
    assert rows[date(2024, 3, 11)] == {"bucket": date(2024, 3, 11), "customer": 0, "staff": 1, "system": 0, "total": 1}
    assert rows[date(2024, 3, 30)] == {"bucket": date(2024, 3, 30), "customer": 0, "staff": 0, "system": 1, "total": 1}
    assert sum(row["total"] for row in rows.values()) == 3


def test_cancellation_rate_per_center_and_per_model_of_the_tickets_opened(desk):
    centers = by(reports.cancellation_rate_by_center(MARCH, None), "center")
    a, b = centers["Shanghai Xuhui"], centers["Beijing Chaoyang"]
    assert (a["opened"], a["cancelled"], a["by_customer"], a["by_staff"], a["by_system"]) == (6, 1, 1, 0, 0)
    assert a["rate"] == pytest.approx(1 / 6)
    assert (b["opened"], b["cancelled"], b["by_customer"], b["by_staff"], b["by_system"]) == (3, 2, 0, 1, 1)
    assert b["rate"] == pytest.approx(2 / 3)

    models = reports.cancellation_rate_by_model(MARCH, None)
    assert [(m["brand"], m["model"], m["opened"], m["cancelled"]) for m in models] == [
        ("Acme", "Phone 2", 3, 1),
        ("Zeta", "Tab", 2, 1),
        (None, None, 1, 1),  # not in the catalogue
        ("Acme", "Phone 1", 3, 0),
    ]
    assert [m["rate"] for m in models] == [pytest.approx(1 / 3), 0.5, 1.0, 0.0]


# --- Faults -----------------------------------------------------------------------------------


def test_top_faults_per_model_and_per_brand(desk):
    rows = reports.top_faults_by_model(MARCH, None)
    assert [(r["brand"], r["model"], r["fault"], r["count"], r["rank"]) for r in rows] == [
        ("Acme", "Phone 1", "Screen", 3, 1),
        ("Acme", "Phone 2", "Battery", 2, 1),
        ("Acme", "Phone 2", "Screen", 1, 2),
        ("Zeta", "Tab", "Screen", 1, 1),  # a tie: the catalogue's order decides
        ("Zeta", "Tab", "Water damage", 1, 2),
        (None, None, "Water damage", 1, 1),
    ]
    assert rows[0]["fault_zh_hans"] == "屏幕"
    assert [(r["model"], r["fault"]) for r in reports.top_faults_by_model(MARCH, None, top=1)] == [
        ("Phone 1", "Screen"), ("Phone 2", "Battery"), ("Tab", "Screen"), (None, "Water damage"),
    ]
    brands = reports.top_faults_by_brand(MARCH, None)
    assert [(r["brand"], r["fault"], r["count"], r["rank"]) for r in brands] == [
        ("Acme", "Screen", 4, 1),
        ("Acme", "Battery", 2, 2),
        ("Zeta", "Screen", 1, 1),
        ("Zeta", "Water damage", 1, 2),
        (None, "Water damage", 1, 1),
    ]


def test_repeat_repairs_are_the_same_imei_back_within_90_days_of_a_completed_repair(desk):
    rows = reports.repeat_repairs_by_model(MARCH, None)
    assert [(r["brand"], r["model"], r["tickets"], r["repeats"]) for r in rows] == [
        ("Acme", "Phone 1", 3, 1),  # T6 came back 15 days after T1
        ("Acme", "Phone 2", 3, 0),  # T11's device was last repaired in November: too long ago
        ("Zeta", "Tab", 2, 0),
        (None, None, 1, 0),
    ]
    assert rows[0]["rate"] == pytest.approx(1 / 3)
    assert reports.repeat_repairs(MARCH, None) == [
        {
            "number": desk.t6.number,
            "center": "Shanghai Xuhui",
            "brand": "Acme",
            "model": "Phone 1",
            "imei_or_serial": "SN0001",
            "created_at": desk.t6.created_at,
            "previous_number": desk.t1.number,
            "previous_completed_at": at(3, 5, 16),
        }
    ]


def test_the_repeat_window_comes_from_settings(desk, settings):
    settings.REPORT_REPEAT_REPAIR_DAYS = 14  # T6 came back after 15 days
    assert reports.repeat_repairs(MARCH, None) == []
    settings.REPORT_REPEAT_REPAIR_DAYS = 200  # T11's device was repaired 135 days before
    assert {r["number"] for r in reports.repeat_repairs(MARCH, None)} == {desk.t6.number, desk.t11.number}


def test_test_failures_per_center(desk):
    rows = by(reports.test_failures_by_center(MARCH, None), "center")
    assert rows["Shanghai Xuhui"] == {"center": "Shanghai Xuhui", "tested": 2, "failed": 1, "failures": 1, "rate": 0.5}
    assert rows["Beijing Chaoyang"] == {"center": "Beijing Chaoyang", "tested": 1, "failed": 0, "failures": 0, "rate": 0.0}


# --- Satisfaction ------------------------------------------------------------------------------


def test_rating_summary_distribution_and_csat(desk):
    summary = reports.rating_summary(MARCH, None)
    assert summary == {"count": 4, "average": 3.5, "satisfied": 2, "csat": 0.5}
    assert [(r["stars"], r["count"], r["share"]) for r in reports.rating_distribution(MARCH, None)] == [
        (1, 0, 0.0), (2, 1, 0.25), (3, 1, 0.25), (4, 1, 0.25), (5, 1, 0.25),
    ]


def test_ratings_per_center_and_over_time(desk):
    centers = by(reports.ratings_by_center(MARCH, None), "center")
    assert centers["Shanghai Xuhui"]["count"] == 3
    assert centers["Shanghai Xuhui"]["average"] == pytest.approx(10 / 3)
    assert centers["Shanghai Xuhui"]["csat"] == pytest.approx(1 / 3)
    assert centers["Beijing Chaoyang"] == {"center": "Beijing Chaoyang", "count": 1, "average": 4.0, "satisfied": 1, "csat": 1.0}

    days = by(reports.ratings_over_time(MARCH, None), "bucket")
    assert len(days) == 31
    assert days[date(2024, 3, 3)] == {"bucket": date(2024, 3, 3), "count": 1, "average": 3.0, "satisfied": 0, "csat": 0.0}
    assert days[date(2024, 3, 5)]["average"] == 4.0
    assert days[date(2024, 3, 6)]["csat"] == 1.0
    assert days[date(2024, 3, 13)]["average"] == 2.0
    assert days[date(2024, 3, 1)] == {"bucket": date(2024, 3, 1), "count": 0, "average": None, "satisfied": 0, "csat": None}


def test_latest_comments_for_staff_include_unpublished_ones(desk):
    rows = reports.latest_comments(MARCH, None)
    assert [(r["number"], r["stars"], r["comment"], r["publish"]) for r in rows] == [
        (desk.t2.number, 2, "Slow", False),
        (desk.t1.number, 5, "Great", True),
        (desk.t4.number, 4, "OK", True),
    ]
    assert len(reports.latest_comments(MARCH, None, limit=1)) == 1


# --- Edge cases and scope --------------------------------------------------------------------------


def test_a_period_without_data_gives_zeros_and_no_averages(desk):
    empty = reports.Period(date(2025, 1, 1), date(2025, 1, 31))
    assert all(r["opened"] == r["completed"] == r["cancelled"] == 0 for r in reports.volume_over_time(empty, None))
    assert reports.volume_by_center(empty, None) == []
    assert all(r["tickets"] == 0 and r["median_seconds"] is None and r["p90_seconds"] is None for r in reports.stage_times(empty, None))
    assert reports.closed_over_target(empty, None) == []
    assert all(r["count"] == 0 and r["share"] is None for r in reports.cancellations_by_reason(empty, None))
    assert all(r["total"] == 0 for r in reports.cancellations_over_time(empty, None))
    assert reports.cancellation_rate_by_center(empty, None) == []
    assert reports.cancellation_rate_by_model(empty, None) == []
    assert reports.top_faults_by_model(empty, None) == reports.top_faults_by_brand(empty, None) == []
    assert reports.repeat_repairs_by_model(empty, None) == reports.repeat_repairs(empty, None) == []
    assert reports.test_failures_by_center(empty, None) == []
    assert reports.rating_summary(empty, None) == {"count": 0, "average": None, "satisfied": 0, "csat": None}
    assert all(r["count"] == 0 and r["share"] is None for r in reports.rating_distribution(empty, None))
    assert reports.ratings_by_center(empty, None) == []
    assert all(r["count"] == 0 for r in reports.ratings_over_time(empty, None))
    assert reports.latest_comments(empty, None) == []


def test_an_empty_desk_gives_zeros(db):
    assert all(r["count"] == 0 for r in reports.work_in_progress(None))
    assert all(r["tickets"] == 0 for r in reports.stage_times(MARCH, None))
    assert all(r["tickets"] == 0 for r in reports.open_over_target_counts(None))


def test_every_figure_is_limited_to_the_centers_in_scope(desk):
    a = [desk.a.pk]
    assert sum(r["opened"] for r in reports.volume_over_time(MARCH, a)) == 6
    assert [r["center"] for r in reports.volume_by_center(MARCH, a)] == ["Shanghai Xuhui"]
    assert sum(r["count"] for r in reports.work_in_progress(a, now=NOW)) == 3
    assert by(reports.stage_times(MARCH, a), "stage")["submitted"]["tickets"] == 4  # T1 T2 T3 T9
    assert {r["number"] for r in reports.open_over_target(a, now=NOW)} == {desk.t6.number, desk.t11.number}
    assert [r["count"] for r in reports.cancellations_by_reason(MARCH, a) if r["count"]] == [1]
    assert [r["center"] for r in reports.cancellation_rate_by_center(MARCH, a)] == ["Shanghai Xuhui"]
    assert {r["brand"] for r in reports.top_faults_by_brand(MARCH, a)} == {"Acme"}
    assert [r["center"] for r in reports.test_failures_by_center(MARCH, a)] == ["Shanghai Xuhui"]
    assert reports.rating_summary(MARCH, a)["count"] == 3
    assert {r["number"] for r in reports.latest_comments(MARCH, a)} == {desk.t1.number, desk.t2.number}
    # No center at all (a staff member without one) sees nothing.
    assert sum(r["opened"] for r in reports.volume_over_time(MARCH, [])) == 0
    assert reports.rating_summary(MARCH, [])["count"] == 0


def test_days_follow_the_configured_time_zone(desk, settings):
    settings.TIME_ZONE = "UTC"
    rows = by(reports.volume_over_time(reports.Period(date(2024, 2, 29), date(2024, 3, 1)), None), "bucket")
    # In UTC, T4 (00:30 in Shanghai on 1 March) was opened on 29 February, T1 (09:00) at 01:00 on 1 March.
    assert rows[date(2024, 2, 29)]["opened"] == 1
    assert rows[date(2024, 3, 1)]["opened"] == 1


# --- Public ratings -------------------------------------------------------------------------------


def test_public_ratings_per_center_and_published_comments_only(desk):
    from tickets.models import ServiceCenter

    centers = {c.name: c for c in reports.with_public_rating(ServiceCenter.objects.all())}
    assert (centers["Shanghai Xuhui"].rating_count, centers["Beijing Chaoyang"].rating_count) == (3, 1)
    assert centers["Shanghai Xuhui"].rating_average == pytest.approx(10 / 3)
    assert centers["Beijing Chaoyang"].rating_average == 4.0
    comments = reports.public_comments()
    assert [(c["comment"], c["stars"], c["center"]) for c in comments] == [
        ("Great", 5, "Shanghai Xuhui"),
        ("OK", 4, "Beijing Chaoyang"),
    ]
    assert set(comments[0]) == {"created_at", "stars", "comment", "center"}  # nothing about the customer


# --- The pages: permission, scope, CSV, query budgets -------------------------------------------------

REPORT_NAMES = ("volume", "time", "cancellations", "faults", "satisfaction")
MARCH_QUERY = {"start": "2024-03-01", "end": "2024-03-31"}
# Per report: the request's own queries (session, user, permissions, the centers for the filter) and the report's.
QUERY_BUDGETS = {"volume": 5 + 5, "time": 5 + 3, "cancellations": 5 + 4, "faults": 5 + 5, "satisfaction": 5 + 5}
TABLES = {
    "volume": ["over_time", "by_center", "work_in_progress"],
    "time": ["stage_times", "open_over_target_counts", "open_over_target", "closed_over_target"],
    "cancellations": ["by_reason", "over_time", "by_center", "by_model"],
    "faults": ["by_model", "by_brand", "repeats_by_model", "repeats", "test_failures"],
    "satisfaction": ["distribution", "by_center", "over_time", "comments"],
}


def url(name):
    return reverse("admin:reports" if name == "index" else f"admin:reports_{name}")


def get(client, name, **params):
    with mock.patch("django.utils.timezone.now", lambda: NOW):
        return client.get(url(name), {**MARCH_QUERY, **params})


def read_csv(response):
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.fixture
def reporter(center):
    """A technician of center A who was also given the report permission."""
    user = make_staff(TECHNICIAN, [center], email="reporter@example.com")
    user.user_permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="tickets"))
    return user


def test_supervisors_hold_the_report_permission_and_other_roles_do_not(supervisor, technician, phone_agent, clerk):
    assert supervisor.has_perm("tickets.view_reports")
    assert not any(user.has_perm("tickets.view_reports") for user in (technician, phone_agent, clerk))


def test_the_admin_index_links_to_the_reports_for_those_who_may_read_them(client, supervisor, technician):
    client.force_login(supervisor)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="reports-module"' in page and url("index") in page and url("volume") in page
    client.force_login(technician)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="reports-module"' not in page


@pytest.mark.parametrize("name", ("index",) + REPORT_NAMES)
def test_staff_without_the_report_permission_get_403(client, technician, name):
    client.force_login(technician)
    assert client.get(url(name)).status_code == 403
    assert client.get(url(name), {"format": "csv", "table": TABLES.get(name, ["x"])[0]}).status_code == 403


@pytest.mark.parametrize("name", ("index",) + REPORT_NAMES)
def test_customers_and_visitors_are_sent_to_the_admin_login(client, customer, name):
    assert client.get(url(name)).status_code == 302
    client.force_login(customer)
    response = client.get(url(name))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_the_reports_index_lists_every_report(client, supervisor):
    client.force_login(supervisor)
    page = client.get(url("index")).content.decode()
    for name in REPORT_NAMES:
        assert url(name) in page


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_each_report_page_has_a_chart_and_a_table_per_figure_and_a_csv_link(client, supervisor, desk, name):
    client.force_login(supervisor)
    response = get(client, name)
    assert response.status_code == 200
    page = response.content.decode()
    tables = response.context["tables"]
    assert [table.key for table in tables] == TABLES[name]
    for table in tables:
        assert f'id="{table.key}-heading"' in page
        assert f"format=csv&amp;table={table.key}" in page
        if table.chart is not None:
            assert f'aria-labelledby="{table.chart.key}-title {table.chart.key}-desc"' in page
            assert f'<title id="{table.chart.key}-title">' in page
    assert page.count('role="img"') >= sum(1 for t in tables if t.chart and not t.chart.is_empty)
    assert " style=" not in page.split('id="content-main"')[1]  # nothing the CSP would block


def test_the_volume_page_shows_its_figures(client, supervisor, desk):
    client.force_login(supervisor)
    response = get(client, "volume")
    assert response.context["figures"] == [("Opened", "9"), ("Completed", "4"), ("Cancelled", "3"), ("Open now", "3")]
    assert "Showing: All service centers, 03/01/2024 to 03/31/2024" in response.content.decode()


def test_the_time_page_shows_its_figures(client, supervisor, desk):
    client.force_login(supervisor)
    response = get(client, "time")
    assert response.context["figures"] == [
        ("Median, end to end", "7 d 6 h"),  # 173.5 h
        ("90th percentile, end to end", "10 d 20 h"),  # 260.1 h
        ("Completed tickets timed", "4"),
        ("Open now, over target", "2"),
    ]
    page = response.content.decode()
    assert desk.t11.number in page and desk.t6.number in page  # the open tickets over target, linked
    assert f"?q={desk.t11.number}" in page


def test_the_cancellations_faults_and_satisfaction_pages_show_their_figures(client, supervisor, desk):
    client.force_login(supervisor)
    assert get(client, "cancellations").context["figures"] == [
        ("Cancelled", "3"), ("By customer", "33.3 %"), ("By staff", "33.3 %"), ("By system", "33.3 %"),
        ("Of the tickets opened", "33.3 %"),
    ]
    assert get(client, "faults").context["figures"] == [
        ("Tickets opened", "9"), ("Repeat repairs", "1"), ("Repeat rate", "11.1 %"), ("Failed testing", "33.3 %"),
    ]
    response = get(client, "satisfaction")
    assert response.context["figures"] == [("Ratings", "4"), ("Average stars", "3.50"), ("CSAT", "50.0 %")]
    assert "Slow" in response.content.decode()  # staff read unpublished comments too


def test_csv_of_the_volume_over_time_and_work_in_progress(client, supervisor, desk):
    client.force_login(supervisor)
    rows = read_csv(get(client, "volume", format="csv", table="over_time", grain="week"))
    assert rows == [
        ["Period", "Opened", "Completed", "Cancelled"],
        ["2024-02-26", "3", "1", "0"],
        ["2024-03-04", "2", "2", "1"],
        ["2024-03-11", "1", "1", "1"],
        ["2024-03-18", "1", "0", "0"],
        ["2024-03-25", "2", "0", "1"],
    ]
    rows = read_csv(get(client, "volume", format="csv", table="work_in_progress"))
    assert rows[0] == ["Stage", "Open tickets", "under 1 day", "1–3 days", "3–7 days", "7–14 days", "14 days or more", "Oldest (hours)"]
    assert rows[1] == ["Submitted", "2", "0", "0", "1", "0", "1", f"{(NOW - at(3, 15, 10)).total_seconds() / H:.2f}"]
    assert rows[2] == ["Inspecting", "1", "0", "0", "0", "1", "0", f"{(NOW - at(3, 20, 10)).total_seconds() / H:.2f}"]
    assert rows[3] == ["Waiting for parts", "0", "0", "0", "0", "0", "0", ""]


def test_csv_of_the_stage_times_in_hours(client, supervisor, desk):
    client.force_login(supervisor)
    rows = read_csv(get(client, "time", format="csv", table="stage_times"))
    assert rows[0] == ["Stage", "Tickets", "Median (hours)", "90th percentile (hours)", "Target (hours)", "Over target"]
    assert rows[1:] == [
        ["Submitted", "7", "10.00", "33.60", "168.00", "0"],
        ["Inspecting", "5", "24.00", "38.40", "24.00", "1"],
        ["Waiting for parts", "1", "168.00", "168.00", "120.00", "1"],
        ["Repairing", "4", "24.00", "40.80", "48.00", "0"],
        ["Testing", "4", "2.00", "2.70", "24.00", "0"],
        ["Ready for pickup", "3", "24.00", "177.60", "168.00", "1"],
        ["Awaiting return shipment", "1", "8.00", "8.00", "24.00", "0"],
        ["End to end (completed)", "4", "173.50", "260.10", "240.00", "2"],
    ]


def test_csv_of_the_cancellations_and_satisfaction(client, supervisor, desk):
    client.force_login(supervisor)
    rows = read_csv(get(client, "cancellations", format="csv", table="by_center"))
    assert rows == [
        ["Service center", "Opened", "Cancelled", "By customer", "By staff", "By system", "Rate (%)"],
        ["Beijing Chaoyang", "3", "2", "0", "1", "1", "66.7"],
        ["Shanghai Xuhui", "6", "1", "1", "0", "0", "16.7"],
    ]
    rows = read_csv(get(client, "satisfaction", format="csv", table="distribution"))
    assert rows == [
        ["Stars", "Ratings", "Share (%)"],
        ["1 star", "0", "0.0"], ["2 stars", "1", "25.0"], ["3 stars", "1", "25.0"], ["4 stars", "1", "25.0"], ["5 stars", "1", "25.0"],
    ]
    rows = read_csv(get(client, "satisfaction", format="csv", table="comments"))
    assert [row[1:] for row in rows] == [
        ["Ticket", "Service center", "Stars", "May be published", "Comment"],
        [desk.t2.number, "Shanghai Xuhui", "2", "no", "Slow"],
        [desk.t1.number, "Shanghai Xuhui", "5", "yes", "Great"],
        [desk.t4.number, "Beijing Chaoyang", "4", "yes", "OK"],
    ]
    assert rows[1][0] == "2024-03-13T10:00+08:00"


def test_csv_of_the_faults(client, supervisor, desk):
    client.force_login(supervisor)
    rows = read_csv(get(client, "faults", format="csv", table="by_model"))
    assert rows == [
        ["Device model", "Rank", "Fault category", "Tickets"],
        ["Acme Phone 1", "1", "Screen", "3"],
        ["Acme Phone 2", "1", "Battery", "2"],
        ["Acme Phone 2", "2", "Screen", "1"],
        ["Zeta Tab", "1", "Screen", "1"],
        ["Zeta Tab", "2", "Water damage", "1"],
        ["Not in the catalogue", "1", "Water damage", "1"],
    ]
    rows = read_csv(get(client, "faults", format="csv", table="repeats"))
    assert rows[1][:6] == [desk.t6.number, "Shanghai Xuhui", "Acme Phone 1", "SN0001", "2024-03-20T10:00+08:00", desk.t1.number]
    assert rows[1][7] == f"{(at(3, 20, 10) - at(3, 5, 16)).total_seconds() / H:.2f}"
    assert read_csv(get(client, "faults", format="csv", table="test_failures"))[1:] == [
        ["Beijing Chaoyang", "1", "0", "0", "0.0"],
        ["Shanghai Xuhui", "2", "1", "1", "50.0"],
    ]


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_every_table_downloads_as_csv_with_the_rows_of_the_page(client, supervisor, desk, name):
    client.force_login(supervisor)
    page = get(client, name)
    for table in page.context["tables"]:
        rows = read_csv(get(client, name, format="csv", table=table.key))
        assert rows[0] == [column.csv_label or column.label for column in table.columns]
        assert len(rows) - 1 == len(table.rows)
    assert get(client, name, format="csv", table="nope").status_code == 404


def test_lists_on_the_page_are_cut_but_their_csv_is_whole(client, supervisor, desk, monkeypatch):
    from tickets.views import reports as views

    monkeypatch.setattr(views, "LIST_LIMIT", 2)
    client.force_login(supervisor)
    response = get(client, "time")
    closed = next(t for t in response.context["tables"] if t.key == "closed_over_target")
    assert (len(closed.rows), closed.total, closed.truncated) == (2, 5, True)
    assert "The first 2 of 5 are listed here" in response.content.decode()
    assert len(read_csv(get(client, "time", format="csv", table="closed_over_target"))) == 1 + 5


def test_a_comment_cannot_become_a_spreadsheet_formula(client, supervisor, center):
    ticket = story(at(3, 1, 9), [], center=center)
    rate(ticket, 1, at(3, 2, 9), "=HYPERLINK(\"http://evil\")")
    client.force_login(supervisor)
    rows = read_csv(get(client, "satisfaction", format="csv", table="comments"))
    assert rows[1][-1] == "'=HYPERLINK(\"http://evil\")"


def test_staff_see_only_their_centers(client, reporter, desk):
    client.force_login(reporter)
    response = get(client, "volume")
    assert response.status_code == 200
    assert [choice[1] for choice in response.context["form"].fields["center"].choices] == ["All my service centers", "Shanghai Xuhui"]
    assert read_csv(get(client, "volume", format="csv", table="by_center"))[1:] == [["Shanghai Xuhui", "6", "3", "1"]]
    assert read_csv(get(client, "satisfaction", format="csv", table="by_center"))[1:] == [["Shanghai Xuhui", "3", "3.33", "33.3"]]
    assert "Beijing" not in get(client, "cancellations").content.decode()
    # Another center is not a choice: asking for it is refused, not answered.
    assert get(client, "volume", center=desk.b.pk).status_code == 400
    assert get(client, "volume", center=desk.b.pk, format="csv", table="by_center").status_code == 400
    assert get(client, "volume", center=desk.a.pk).status_code == 200


def test_a_staff_member_without_a_center_sees_nothing(client, desk):
    user = make_staff(TECHNICIAN, [], email="nowhere@example.com")
    user.user_permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="tickets"))
    client.force_login(user)
    assert read_csv(get(client, "volume", format="csv", table="by_center")) == [["Service center", "Opened", "Completed", "Cancelled"]]


def test_supervisors_may_narrow_the_report_to_one_center(client, supervisor, desk):
    client.force_login(supervisor)
    response = get(client, "volume", center=desk.b.pk)
    assert response.context["figures"][0] == ("Opened", "3")
    assert "Beijing Chaoyang, 03/01/2024 to 03/31/2024" in response.content.decode()
    # The CSV links keep the filters.
    assert f"center={desk.b.pk}" in response.context["tables"][0].csv_url


def test_the_filters_default_to_the_last_30_days_and_refuse_nonsense(client, supervisor):
    client.force_login(supervisor)
    response = client.get(url("volume"))
    period = response.context["scope"].period
    assert (period.end - period.start).days == 29 and period.end == timezone.localdate()
    assert period.grain == "day"
    assert client.get(url("volume"), {"start": "2024-03-31", "end": "2024-03-01"}).status_code == 400
    assert client.get(url("volume"), {"start": "2010-01-01", "end": "2024-03-01"}).status_code == 400
    assert client.get(url("volume"), {"start": "2022-01-01", "end": "2024-03-01", "grain": "day"}).status_code == 400
    assert client.get(url("volume"), {"start": "nope", "end": "2024-03-01"}).status_code == 400
    assert client.get(url("volume"), {"start": "2023-01-01", "end": "2024-03-01"}).context["scope"].period.grain == "month"
    assert client.get(url("volume"), {"start": "2023-12-01", "end": "2024-03-01"}).context["scope"].period.grain == "week"


def test_an_empty_period_renders_every_report(client, supervisor):
    client.force_login(supervisor)
    for name in REPORT_NAMES:
        response = client.get(url(name), {"start": "2025-01-01", "end": "2025-01-31"})
        assert response.status_code == 200
        assert "Nothing in this period." in response.content.decode() or "Nothing to draw" in response.content.decode()


def test_the_pages_render_in_chinese(client, supervisor, desk):
    supervisor.language = "zh-hans"
    supervisor.save()
    client.force_login(supervisor)
    response = client.get(url("volume"), {**MARCH_QUERY}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200


def add_more_data(center_a, center_b):
    """More of everything: tickets in every state, centers, models, ratings, repeats."""
    extra_center = make_center("gz-tianhe", name="Guangzhou Tianhe")
    for n, center in enumerate((center_a, center_b, extra_center) * 3):
        model = make_device_model(brand=f"Brand {n % 4}")
        fault = make_fault()
        serial = f"SNX{n:04d}"
        done = story(
            at(3, 2, 9),
            [(at(3, 3, 9), "receive_device"), (at(3, 4, 9), "start_repair"), (at(3, 5, 9), "send_to_testing"),
             (at(3, 5, 10), "fail_testing"), (at(3, 6, 9), "send_to_testing"), (at(3, 6, 10), "pass_testing"),
             (at(3, 7, 9), "hand_over")],
            center=center, device_model=model, fault_category=fault, imei_or_serial=serial,
        )
        rate(done, 1 + n % 5, at(3, 8, 9), f"Comment {n}", publish=n % 2 == 0)
        story(at(3, 20, 9), [(at(3, 21, 9), "receive_device")], center=center, device_model=model, fault_category=fault, imei_or_serial=serial)
        story(at(3, 22, 9), [(at(3, 23, 9), "cancel", mover(), {"reason": "staff_other"})], center=center, fault_category=fault)


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_each_report_runs_a_fixed_number_of_queries_whatever_the_data(client, supervisor, reporter, desk, name, django_assert_max_num_queries):
    client.force_login(supervisor)
    with CaptureQueriesContext(connection) as small:
        assert get(client, name).status_code == 200
    add_more_data(desk.a, desk.b)
    with django_assert_max_num_queries(QUERY_BUDGETS[name]):
        assert get(client, name).status_code == 200
    with CaptureQueriesContext(connection) as large:
        get(client, name)
    assert len(large) == len(small) == QUERY_BUDGETS[name]
    client.force_login(reporter)  # staff of one center: the same count
    with CaptureQueriesContext(connection) as scoped:
        assert get(client, name).status_code == 200
    assert len(scoped) == QUERY_BUDGETS[name]


# --- Public ratings on the customer pages -----------------------------------------------------------


def test_the_start_page_shows_each_centers_rating_and_only_published_comments(client, desk):
    page = client.get(reverse("tickets:start")).content.decode()
    assert "What our customers say" in page
    assert "Shanghai Xuhui" in page and "3.3" in page and "3 ratings" in page
    assert "Beijing Chaoyang" in page and "4.0" in page and "1 rating" in page
    assert "Great" in page and "OK" in page
    assert "Slow" not in page  # the customer did not agree to publish it
    assert desk.t1.number not in page and desk.customer.full_name not in page


def test_a_center_without_ratings_says_so(client, center):
    assert "No ratings yet" in client.get(reverse("tickets:start")).content.decode()


def test_the_start_page_runs_a_fixed_number_of_queries_whatever_the_ratings(client, desk, settings):
    settings.PUBLIC_RATINGS_CACHE_SECONDS = 0  # computed every time
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("tickets:start"))
    add_more_data(desk.a, desk.b)
    with CaptureQueriesContext(connection) as large:
        page = client.get(reverse("tickets:start")).content.decode()
    assert len(large) == len(small) == 2  # anonymous: the centers with their ratings, the comments
    assert "Comment 8" in page  # the newest published comment of the new data


def test_the_public_averages_are_cached_with_the_same_number_of_queries(client, desk):
    from tickets.reports import PUBLIC_RATINGS_CACHE_KEY

    with CaptureQueriesContext(connection) as miss:
        assert "3 ratings" in client.get(reverse("tickets:start")).content.decode()
    rate(desk.t6, 1, at(3, 21, 9))  # (not a completed ticket, but it counts the same)
    with CaptureQueriesContext(connection) as hit:
        assert "3 ratings" in client.get(reverse("tickets:start")).content.decode()  # still the cached numbers
    assert len(hit) == len(miss) == 2
    assert "Sum" not in hit[0]["sql"] and "AVG" not in hit[0]["sql"].upper()  # the plain centers query
    from django.core.cache import cache

    cache.delete(PUBLIC_RATINGS_CACHE_KEY)  # expired
    assert "4 ratings" in client.get(reverse("tickets:start")).content.decode()


def test_the_center_picker_shows_each_centers_rating(client, customer, desk):
    from tickets.forms import SubmitRepairForm

    client.force_login(customer)
    page = client.get(reverse("tickets:submit")).content.decode()
    assert "3.3" in page and "3 ratings" in page and "1 rating" in page
    form = SubmitRepairForm(customer=customer)
    labels = dict(form.fields["service_center"].choices)
    assert labels[str(desk.a.pk)] == "Shanghai Xuhui (3.3 out of 5 (3 ratings))"
    assert labels[str(desk.b.pk)] == "Beijing Chaoyang (4.0 out of 5 (1 rating))"
