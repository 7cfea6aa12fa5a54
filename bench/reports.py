"""Time every report (tickets/reports.py and the admin pages) on many tickets with full histories.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/reports.py [--tickets 1000000]

On PostgreSQL the database named by ``--database`` (default ``bench_reports``,
on the server of DATABASE_URL; never ``test``) is dropped, created and
migrated, then seeded with bulk inserts (COPY): service centers, a device
and fault catalogue, customers, tickets spread over the last two years with
their whole stage histories (cancellations by customers, staff and the
system, parts orders, failed tests, repeat repairs) and ratings. Without
DATABASE_URL a temporary SQLite file is used (``--sqlite PATH`` keeps it:
handy for screenshots), with ordinary bulk inserts: fine for some
thousands of tickets, not for a million.

Then every report function is timed for the last 30 days (per day) and the
last 365 days (per week), for all centers and for one, and so are the
report pages themselves (HTML and a CSV) and the public ratings on the
start page. Each timing is the best of ``--repeat`` runs (after one warm-up
run, whose time is printed too), with a figure from its result.
"""

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK = 20_000

CENTERS = [
    ("sh-xuhui", "Shanghai Xuhui"), ("sh-pudong", "Shanghai Pudong"), ("bj-chaoyang", "Beijing Chaoyang"),
    ("bj-haidian", "Beijing Haidian"), ("gz-tianhe", "Guangzhou Tianhe"), ("sz-futian", "Shenzhen Futian"),
    ("sz-nanshan", "Shenzhen Nanshan"), ("cd-jinjiang", "Chengdu Jinjiang"), ("hz-xihu", "Hangzhou Xihu"),
    ("wh-wuchang", "Wuhan Wuchang"), ("nj-gulou", "Nanjing Gulou"), ("xa-yanta", "Xi'an Yanta"),
    ("cq-yuzhong", "Chongqing Yuzhong"), ("tj-heping", "Tianjin Heping"), ("sy-heping", "Shenyang Heping"),
    ("qd-shinan", "Qingdao Shinan"), ("xm-siming", "Xiamen Siming"), ("cs-yuelu", "Changsha Yuelu"),
    ("km-wuhua", "Kunming Wuhua"), ("hk-central", "Hong Kong Central"),
]
BRANDS = ["Acme", "Zeta", "Nova", "Orbit", "Lumen", "Pico", "Vela", "Quanta", "Helio", "Terra", "Nimbus", "Kite"]
FAULTS = [
    "Cracked screen", "Battery drains fast", "Does not charge", "No sound", "Camera blurry", "Water damage",
    "Wi-Fi drops", "Bluetooth", "Overheats", "Restarts by itself", "Touch not responding", "Buttons stuck",
    "Microphone", "SIM not detected", "GPS", "Fingerprint sensor", "Face unlock", "Speaker crackles",
    "Vibration motor", "Charging port loose", "Software update failed", "Display flickers", "Dead pixels",
    "Back glass broken", "Other",
]
COMMENTS = [
    "Fast and friendly, thank you!", "Took longer than promised.", "The phone works like new.",
    "Staff explained everything clearly.", "Had to come back twice.", "Great service at the counter.",
    "Nobody told me the parts were late.", "Repaired under warranty, no questions asked.",
    "Pickup was quick with the code.", "Shipping back took a week.",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--database", default="bench_reports", help="PostgreSQL database to (re)create")
    parser.add_argument("--days", type=int, default=730, help="tickets are opened over this many days up to now")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--sqlite", help="without DATABASE_URL: keep the SQLite database at this path")
    parser.add_argument("--no-seed", action="store_true", help="time the reports on the database as it is")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-reports-")
    postgres = bool(os.environ.get("DATABASE_URL"))
    if postgres:
        if args.database in ("test", "postgres") or args.database.startswith("test_"):
            sys.exit(f"Refusing to use database {args.database!r}: choose a dedicated one.")
        if not args.no_seed:
            _recreate_postgres_database(os.environ["DATABASE_URL"], args.database)
        os.environ["DATABASE_URL"] = _with_database(os.environ["DATABASE_URL"], args.database)
        os.environ["DATABASE_POOL"] = "0"
    else:
        os.environ["SQLITE_PATH"] = args.sqlite or os.path.join(tmp, "bench.sqlite3")
    os.environ.setdefault("PRIVATE_MEDIA_ROOT", os.path.join(tmp, "private"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "servicedesk.settings"
    os.environ["DJANGO_ZEAL"] = "0"
    # DEBUG stays on so that the admin pages render without collected static files;
    # its query log costs microseconds per query.
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ["Q_SYNC"] = "0"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    if not args.no_seed:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        print(f"migrated in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        counts = seed(args.tickets, args.days, random.Random(args.seed))
        print(f"seeded in {time.perf_counter() - started:.1f} s: " + ", ".join(f"{n:,} {what}" for what, n in counts.items()))
        if connection.vendor == "postgresql":
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")
    time_reports(args.repeat)


# --- The database -------------------------------------------------------------------------


def _with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _recreate_postgres_database(url, name):
    import psycopg
    from psycopg import sql

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


class Table:
    """Rows of one model, written by COPY (PostgreSQL) or bulk_create (SQLite).

    Every concrete column is written: those not given take the field's default,
    so the bench keeps working when a field with a default is added to a model.
    """

    def __init__(self, model, given):
        from django.db import connection

        self.model = model
        self.given = list(given)
        self.connection = connection
        fields = [f for f in model._meta.concrete_fields if not (f.primary_key and f.attname not in self.given)]
        self.fields = fields
        self.columns = [f.column for f in fields]
        self.defaults = {}
        for f in fields:
            if f.attname not in self.given:
                self.defaults[f.attname] = f.get_default() if f.has_default() else (None if f.null else "")
        self.order = [f.attname for f in fields]
        self.json = {f.attname for f in fields if f.get_internal_type() == "JSONField"}

    def write(self, rows):
        """``rows``: tuples in the order of ``given``."""
        if not rows:
            return
        if self.connection.vendor == "postgresql":
            self._copy(rows)
        else:
            objects = [self.model(**self.defaults, **dict(zip(self.given, row))) for row in rows]
            self.model.objects.bulk_create(objects, batch_size=2000)

    def _copy(self, rows):
        from psycopg import sql

        index = {name: i for i, name in enumerate(self.given)}
        default_values = {name: self._plain(name, value) for name, value in self.defaults.items()}
        plan = [(index.get(name), default_values.get(name), name in self.json) for name in self.order]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self.model._meta.db_table), sql.SQL(", ").join(map(sql.Identifier, self.columns))
        )
        with self.connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg's own cursor, under Django's wrapper
            with raw.copy(statement) as copy:
                for row in rows:
                    copy.write_row(
                        [
                            (json.dumps(row[i]) if is_json else row[i]) if i is not None else default
                            for i, default, is_json in plan
                        ]
                    )

    def _plain(self, name, value):
        if name in self.json:
            return json.dumps(value)
        if value is not None and not isinstance(value, (str, int, float, bool, datetime)):
            return str(value)
        return value


def _ticket_number(n):
    from tickets import numbers

    digits = []
    for _ in range(numbers.PAYLOAD_LENGTH):
        n, rest = divmod(n, numbers.BASE)
        digits.append(numbers.ALPHABET[rest])
    payload = "".join(reversed(digits))
    return numbers.format_compact(payload + numbers.check_symbol(payload))


def _hours(rng, median, sigma=0.8, cap=None):
    value = rng.lognormvariate(math.log(median), sigma)
    return min(value, cap) if cap else value


def _history(rng, created, now, ship_back):
    """One ticket's story: (status, milestones, [(from, to, at, actor_kind)])."""
    events = [("", "submitted", created, "customer")]
    milestones = {}
    state = {"status": "submitted", "at": created}

    def move(to, hours, kind="staff"):
        at = state["at"] + timedelta(hours=hours)
        if at > now:
            return False
        events.append((state["status"], to, at, kind))
        state["status"], state["at"] = to, at
        return True

    def cancel(hours, kind, reason):
        if move("cancelled", hours, kind):
            milestones.update(cancelled_at=state["at"], cancelled_by_kind=kind, cancel_reason=reason)
        return state["status"]

    roll = rng.random()
    if roll < 0.05:
        return cancel(_hours(rng, 20), "customer", rng.choice(["solved_myself", "no_longer_needed", "customer_other"])), milestones, events
    if roll < 0.08:
        return cancel(14 * 24, "system", "device_not_received"), milestones, events
    if not move("inspecting", _hours(rng, 30, cap=13 * 24)):
        return state["status"], milestones, events
    milestones["received_at"] = state["at"]
    roll = rng.random()
    if roll < 0.05:
        return cancel(_hours(rng, 10), "staff", rng.choice(["out_of_warranty", "damage_not_covered", "incomplete_information", "staff_other"])), milestones, events
    if roll < 0.07:
        return cancel(7 * 24, "system", "no_response"), milestones, events
    inspect = _hours(rng, 16)
    if rng.random() < 0.2:
        if not move("awaiting_parts", inspect):
            return state["status"], milestones, events
        if rng.random() < 0.03:
            return cancel(_hours(rng, 40), "customer", "no_longer_needed"), milestones, events
        if not move("repairing", _hours(rng, 90)):
            return state["status"], milestones, events
    elif not move("repairing", inspect):
        return state["status"], milestones, events
    failures = 2 if rng.random() < 0.02 else (1 if rng.random() < 0.1 else 0)
    for attempt in range(failures + 1):
        if not move("testing", _hours(rng, 26)):
            return state["status"], milestones, events
        if attempt < failures:
            if not move("repairing", _hours(rng, 4)):
                return state["status"], milestones, events
    ready = "awaiting_return_shipment" if ship_back else "ready_for_pickup"
    if not move(ready, _hours(rng, 5)):
        return state["status"], milestones, events
    milestones["ready_at"] = state["at"]
    if not move("completed", _hours(rng, 12 if ship_back else 36)):
        return state["status"], milestones, events
    milestones["completed_at"] = milestones["device_returned_at"] = state["at"]
    return "completed", milestones, events


def seed(total, days, rng):
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from tickets.models import DeviceModel, FaultCategory, Rating, ServiceCenter, StageEvent, Ticket

    now = timezone.now()
    start = now - timedelta(days=days)
    centers = [ServiceCenter.objects.create(code=code, name=name) for code, name in CENTERS]
    models = []
    for brand_index, brand in enumerate(BRANDS):
        for n in range(1, 18):
            models.append(DeviceModel(brand=brand, name=f"{'Phone' if n % 3 else 'Tab'} {n}", category="phone" if n % 3 else "tablet"))
    models = DeviceModel.objects.bulk_create(models)
    faults = FaultCategory.objects.bulk_create(
        [FaultCategory(code=f"f{n:02d}", name=name, sort_order=n) for n, name in enumerate(FAULTS)]
    )
    User.objects.create_superuser("bench@example.com", "bench-password", full_name="Bench Supervisor")

    # Popular models and common faults: Zipf-like weights.
    model_weights = list(_cumulative([1 / (i + 1) ** 0.8 for i in range(len(models))]))
    fault_weights = list(_cumulative([1 / (i + 1) for i in range(len(faults))]))
    center_weights = list(_cumulative([1 + (i % 5) for i in range(len(centers))]))

    customer_count = max(1, total // 5)
    users = Table(User, ["id", "email", "full_name", "password", "date_joined", "language"])
    password = make_password(None)
    first_user = User.objects.order_by("-pk").values_list("pk", flat=True).first() + 1
    with transaction.atomic():
        for low in range(0, customer_count, CHUNK * 5):
            users.write(
                [
                    (first_user + n, f"bench{n}@example.com", f"Customer {n}", password, start, "en")
                    for n in range(low, min(customer_count, low + CHUNK * 5))
                ]
            )

    tickets = Table(
        Ticket,
        [
            "id", "number", "status", "customer_id", "contact_name", "contact_phone", "contact_email",
            "service_center_id", "device_model_id", "imei_or_serial", "fault_category_id", "symptom_description",
            "return_method", "return_address", "pickup_code", "created_at", "updated_at", "received_at", "ready_at",
            "completed_at", "cancelled_at", "device_returned_at", "cancelled_by_kind", "cancel_reason",
        ],
    )
    events = Table(StageEvent, ["ticket_id", "from_status", "to_status", "at", "actor_kind", "details"])
    ratings = Table(Rating, ["ticket_id", "stars", "comment", "publish", "created_at"])
    counts = {"tickets": 0, "stage events": 0, "ratings": 0, "customers": customer_count}
    with _bulk_load(connection, [Ticket, StageEvent, Rating]):
        _seed_tickets(rng, total, now, start, centers, models, faults, model_weights, fault_weights, center_weights,
                      customer_count, first_user, tickets, events, ratings, counts)
    if connection.vendor == "postgresql":
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [User, Ticket, StageEvent, Rating]):
                cursor.execute(statement)
    return counts


@contextmanager
def _bulk_load(connection, models):
    """PostgreSQL: load without secondary indexes (rebuilt at the end), FK triggers or synchronous commits.

    The rows are generated consistent; unique constraints stay, so a
    duplicate ticket number or a second rating of a ticket still fails.
    """
    if connection.vendor != "postgresql":
        yield
        return
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.tablename = ANY(%s)
                 AND i.indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))""",
            [tables],
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for _name, definition in indexes:
                cursor.execute(definition)
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("SET synchronous_commit = on")
        print(f"  {len(indexes)} indexes rebuilt in {time.perf_counter() - started:.1f} s")


def _seed_tickets(rng, total, now, start, centers, models, faults, model_weights, fault_weights, center_weights,
                  customer_count, first_user, tickets, events, ratings, counts):
    from django.db import transaction

    span = (now - start).total_seconds()
    completed_serials = []  # (completed_at, serial) of recent repairs, for repeat repairs
    serial_counter = 0
    for low in range(0, total, CHUNK):
        high = min(total, low + CHUNK)
        offsets = sorted(rng.random() * span for _ in range(high - low))
        model_picks = rng.choices(models, cum_weights=model_weights, k=high - low)
        fault_picks = rng.choices(faults, cum_weights=fault_weights, k=high - low)
        center_picks = rng.choices(centers, cum_weights=center_weights, k=high - low)
        ticket_rows, event_rows, rating_rows = [], [], []
        for i, offset in enumerate(offsets):
            ticket_id = low + i + 1
            created = start + timedelta(seconds=offset)
            ship_back = rng.random() < 0.2
            if completed_serials and rng.random() < 0.04:
                serial = rng.choice(completed_serials[-2000:])[1]  # the device comes back
            else:
                serial_counter += 1
                serial = f"SN{serial_counter:010d}"
            model = model_picks[i] if rng.random() > 0.03 else None
            status, milestones, history = _history(rng, created, now, ship_back)
            if "completed_at" in milestones:
                completed_serials.append((milestones["completed_at"], serial))
            last = history[-1][2]
            ticket_rows.append(
                (
                    ticket_id, _ticket_number(ticket_id * 7919 + 104729), status, first_user + rng.randrange(customer_count),
                    "Bench Customer", "+8613800138000", "bench@example.com", center_picks[i].pk,
                    model.pk if model else None, serial, fault_picks[i].pk, "It stopped working after an update.",
                    "ship_back" if ship_back else "pickup", "1 Bench Road" if ship_back else "", "000000",
                    created, last, milestones.get("received_at"), milestones.get("ready_at"),
                    milestones.get("completed_at"), milestones.get("cancelled_at"), milestones.get("device_returned_at"),
                    milestones.get("cancelled_by_kind", ""), milestones.get("cancel_reason", ""),
                )
            )
            for from_status, to_status, at, kind in history:
                event_rows.append((ticket_id, from_status, to_status, at, kind, {}))
            if status == "completed" and rng.random() < 0.55:
                rated = milestones["completed_at"] + timedelta(hours=rng.uniform(1, 72))
                if rated <= now:
                    stars = rng.choices([1, 2, 3, 4, 5], weights=[5, 5, 10, 30, 50])[0]
                    comment = rng.choice(COMMENTS) if rng.random() < 0.3 else ""
                    rating_rows.append((ticket_id, stars, comment, bool(comment) and rng.random() < 0.5, rated))
        if len(completed_serials) > 10_000:
            del completed_serials[:-5_000]
        with transaction.atomic():
            tickets.write(ticket_rows)
            events.write(event_rows)
            ratings.write(rating_rows)
        counts["tickets"] += len(ticket_rows)
        counts["stage events"] += len(event_rows)
        counts["ratings"] += len(rating_rows)
        if (low // CHUNK) % 10 == 9:
            print(f"  … {counts['tickets']:,} tickets", flush=True)


def _cumulative(weights):
    total = 0
    for weight in weights:
        total += weight
        yield total


# --- Timing --------------------------------------------------------------------------------------


def _timed(call, repeat):
    started = time.perf_counter()
    result = call()
    first = time.perf_counter() - started
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        runs.append(time.perf_counter() - started)
    return result, first, min(runs) if runs else first


def _seconds(value):
    return "–" if value is None else f"{value / 3600:.1f} h"


def _pct(value):
    return "–" if value is None else f"{value * 100:.1f} %"


def time_reports(repeat):
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import User
    from tickets import reports
    from tickets.models import ServiceCenter, Ticket

    today = timezone.localdate()
    month = reports.Period(today - timedelta(days=29), today, reports.DAY)
    year = reports.Period(today - timedelta(days=364), today, reports.WEEK)
    busiest = (
        Ticket.objects.values("service_center_id").annotate(n=Count("pk")).order_by("-n").values_list("service_center_id", flat=True).first()
    )
    one = [busiest] if busiest else []
    print(f"\n{Ticket.objects.count():,} tickets; one center = {ServiceCenter.objects.filter(pk__in=one).first()}")

    def summary(name, rows):
        if name == "volume_over_time":
            return f"opened {sum(r['opened'] for r in rows):,}, completed {sum(r['completed'] for r in rows):,}, cancelled {sum(r['cancelled'] for r in rows):,}"
        if name == "volume_by_center":
            return f"{len(rows)} centers, opened {sum(r['opened'] for r in rows):,}"
        if name == "work_in_progress":
            return "open " + ", ".join(f"{r['stage']} {r['count']:,}" for r in rows)
        if name == "stage_times":
            return "; ".join(f"{r['stage']} n={r['tickets']:,} median {_seconds(r['median_seconds'])} p90 {_seconds(r['p90_seconds'])} over {r['over_target']}" for r in rows)
        if name == "open_over_target_counts":
            return "over target now " + ", ".join(f"{r['stage']} {r['over_target']}" for r in rows)
        if name == "cancellations_by_reason":
            return ", ".join(f"{r['reason']} {r['count']:,}" for r in rows if r["count"])
        if name in ("cancellation_rate_by_center", "cancellation_rate_by_model"):
            opened, cancelled = sum(r["opened"] for r in rows), sum(r["cancelled"] for r in rows)
            return f"{len(rows)} rows, {cancelled:,} of {opened:,} cancelled ({_pct(reports._share(cancelled, opened))})"
        if name == "repeat_repairs_by_model":
            return f"{sum(r['repeats'] for r in rows):,} repeats of {sum(r['tickets'] for r in rows):,} tickets"
        if name == "test_failures_by_center":
            return f"{sum(r['failed'] for r in rows):,} of {sum(r['tested'] for r in rows):,} tested failed"
        if name == "rating_summary":
            return f"{rows['count']:,} ratings, average {rows['average'] or 0:.2f}, CSAT {_pct(rows['csat'])}"
        if name == "rating_distribution":
            return ", ".join(f"{r['stars']}★ {r['count']:,}" for r in rows)
        if isinstance(rows, list):
            return f"{len(rows):,} rows"
        return str(rows)

    functions = [
        ("volume_over_time", lambda p, c: reports.volume_over_time(p, c)),
        ("volume_by_center", lambda p, c: reports.volume_by_center(p, c)),
        ("work_in_progress", lambda p, c: reports.work_in_progress(c)),
        ("stage_times", lambda p, c: reports.stage_times(p, c)),
        ("closed_over_target", lambda p, c: reports.closed_over_target(p, c, limit=100)),
        ("open_over_target_counts", lambda p, c: reports.open_over_target_counts(c)),
        ("open_over_target", lambda p, c: reports.open_over_target(c, limit=100)),
        ("cancellations_by_reason", lambda p, c: reports.cancellations_by_reason(p, c)),
        ("cancellations_over_time", lambda p, c: reports.cancellations_over_time(p, c)),
        ("cancellation_rate_by_center", lambda p, c: reports.cancellation_rate_by_center(p, c)),
        ("cancellation_rate_by_model", lambda p, c: reports.cancellation_rate_by_model(p, c)),
        ("top_faults_by_model", lambda p, c: reports.top_faults_by_model(p, c)),
        ("top_faults_by_brand", lambda p, c: reports.top_faults_by_brand(p, c)),
        ("repeat_repairs_by_model", lambda p, c: reports.repeat_repairs_by_model(p, c)),
        ("repeat_repairs", lambda p, c: reports.repeat_repairs(p, c, limit=100)),
        ("test_failures_by_center", lambda p, c: reports.test_failures_by_center(p, c)),
        ("rating_summary", lambda p, c: reports.rating_summary(p, c)),
        ("rating_distribution", lambda p, c: reports.rating_distribution(p, c)),
        ("ratings_by_center", lambda p, c: reports.ratings_by_center(p, c)),
        ("ratings_over_time", lambda p, c: reports.ratings_over_time(p, c)),
        ("latest_comments", lambda p, c: reports.latest_comments(p, c, limit=20)),
    ]
    for label, period in (("last 30 days, per day", month), ("last 365 days, per week", year)):
        for scope_label, centers in (("all centers", None), ("one center", one)):
            print(f"\n== {label}, {scope_label} ==")
            print(f"{'function':<28} {'first':>9} {'best':>9}  figures")
            for name, call in functions:
                result, first, best = _timed(lambda: call(period, centers), repeat)
                print(f"{name:<28} {first * 1000:>7.0f}ms {best * 1000:>7.0f}ms  {summary(name, result)}")

    print("\n== public ratings (start page and center picker) ==")
    from django.core.cache import cache

    from tickets.reports import PUBLIC_RATINGS_CACHE_KEY, centers_with_public_rating, public_comments, with_public_rating

    active = ServiceCenter.objects.filter(is_active=True)

    def start_page():
        response = Client(HTTP_HOST="localhost").get(reverse("tickets:start"))
        assert response.status_code == 200
        return response.content

    def cold_start_page():
        cache.delete(PUBLIC_RATINGS_CACHE_KEY)
        return start_page()

    for name, call in (
        ("averages, computed (miss)", lambda: list(with_public_rating(active))),
        ("averages, cached (hit)", lambda: centers_with_public_rating(active)),
        ("public_comments", lambda: public_comments()),
        ("start page, cache cold", cold_start_page),
        ("start page, cache warm", start_page),
    ):
        result, first, best = _timed(call, repeat)
        print(f"{name:<28} {first * 1000:>7.0f}ms {best * 1000:>7.0f}ms  {len(result):,} {'bytes' if isinstance(result, bytes) else 'rows'}")

    print("\n== report pages (whole request, as a supervisor) ==")
    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(email="bench@example.com"))
    for label, period in (("30 days", month), ("365 days", year)):
        query = {"start": period.start.isoformat(), "end": period.end.isoformat()}
        for name in ("volume", "time", "cancellations", "faults", "satisfaction"):
            path = reverse(f"admin:reports_{name}")

            def fetch():
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(path, query)
                assert response.status_code == 200, response.status_code
                return len(queries), len(response.content)

            (queries, size), first, best = _timed(fetch, repeat)
            print(f"{name + ' (' + label + ')':<28} {first * 1000:>7.0f}ms {best * 1000:>7.0f}ms  {queries} queries, {size:,} bytes")
        path = reverse("admin:reports_time")
        (queries, size), first, best = _timed(
            lambda: (0, len(client.get(path, {**query, "format": "csv", "table": "closed_over_target"}).content)), repeat
        )
        print(f"{'time CSV, all over target':<28} {first * 1000:>7.0f}ms {best * 1000:>7.0f}ms  {size:,} bytes")
    print(f"\n(times are wall clock on {os.cpu_count()} CPUs; medians and p90 are percentile_cont values)")


if __name__ == "__main__":
    main()
