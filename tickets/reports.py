"""The figures behind the staff reports and the public ratings, as SQL aggregates.

One function per figure or table. Each takes a ``Period`` (a range of days
in the desk's ``TIME_ZONE`` and the grain of its time series) and the
centers in scope (``None``: every center; otherwise an iterable of ids,
possibly empty) and returns plain rows: a list of dicts whose values are
numbers, strings, dates and ``None``, ready for a template, a chart or a
CSV file.

Every number is counted, summed, averaged or ranked by the database; Python
only fills empty buckets with zeros, turns two aggregated numbers into a
share, and interpolates a percentile between the two neighbouring values
the database picked. Each function runs a fixed number of queries, whatever
the number of tickets.

Days, weeks (Monday to Sunday) and months are the desk's, not UTC's: the
range's limits are local midnights and buckets are truncated with
``tzinfo=`` the desk's time zone, on SQLite and PostgreSQL alike.

Stage times come from the stage history: a ticket enters a stage with the
StageEvent whose ``to_status`` is that stage and leaves it with its next
event, whose ``from_status`` is that stage. A ticket that went through a
stage twice (testing failed, back to repairing) counts the sum of both
visits. Medians and 90th percentiles are ``percentile_cont`` (linear
interpolation between the two nearest ranks), computed portably: the
database ranks the durations (``ROW_NUMBER``/``COUNT`` over each stage) and
returns, per stage, only the two values around each percentile's rank.
See docs/reports.md.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Avg, Count, Exists, F, Min, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber, TruncDate, TruncMonth, TruncWeek
from django.utils import timezone

from .models import (
    CANCEL_REASONS_BY_ACTOR,
    OPEN_STATUSES,
    ActorKind,
    Rating,
    ServiceCenter,
    StageEvent,
    Status,
    Ticket,
)

DAY, WEEK, MONTH = "day", "week", "month"
GRAINS = (DAY, WEEK, MONTH)

# The stages a ticket spends time in, in lifecycle order, then the whole repair.
TIMED_STAGES = (
    Status.SUBMITTED,
    Status.INSPECTING,
    Status.AWAITING_PARTS,
    Status.REPAIRING,
    Status.TESTING,
    Status.READY_FOR_PICKUP,
    Status.AWAITING_RETURN_SHIPMENT,
)
END_TO_END = "end_to_end"
OPEN_STAGES = tuple(stage for stage in TIMED_STAGES if stage in OPEN_STATUSES)

# Targets in hours (settings.REPORT_SLA_HOURS overrides any of them; None: no target).
# Submitted and ready-for-pickup are mostly the customer's time (bringing and
# collecting the device); the others are the desk's.
DEFAULT_SLA_HOURS = {
    Status.SUBMITTED: 7 * 24,
    Status.INSPECTING: 24,
    Status.AWAITING_PARTS: 5 * 24,
    Status.REPAIRING: 48,
    Status.TESTING: 24,
    Status.READY_FOR_PICKUP: 7 * 24,
    Status.AWAITING_RETURN_SHIPMENT: 24,
    END_TO_END: 10 * 24,
}
DEFAULT_REPEAT_REPAIR_DAYS = 90

# Open tickets by age (days since they were opened): upper limits, the last band open-ended.
AGE_BAND_DAYS = (1, 3, 7, 14)

PERCENTILES = (50, 90)


def sla_hours():
    """{stage or END_TO_END: target hours or None}, the defaults overridden by settings.REPORT_SLA_HOURS."""
    targets = dict(DEFAULT_SLA_HOURS)
    targets.update(getattr(settings, "REPORT_SLA_HOURS", None) or {})
    return {str(stage): hours for stage, hours in targets.items()}


def repeat_repair_days():
    return int(getattr(settings, "REPORT_REPEAT_REPAIR_DAYS", DEFAULT_REPEAT_REPAIR_DAYS))


def desk_timezone():
    return timezone.get_default_timezone()


# --- The period -----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Days ``start`` to ``end`` (both included) in the desk's time zone, in buckets of ``grain``."""

    start: date
    end: date
    grain: str = DAY

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError("The period ends before it starts.")
        if self.grain not in GRAINS:
            raise ValueError(f"Unknown grain {self.grain!r}")

    @property
    def since(self):
        return datetime.combine(self.start, time.min, tzinfo=desk_timezone())

    @property
    def until(self):
        """The first moment after the period (local midnight after ``end``)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=desk_timezone())

    @property
    def days(self):
        return (self.end - self.start).days + 1

    def contains(self, field):
        """Q: ``field`` (a datetime column) falls in the period."""
        return Q(**{f"{field}__gte": self.since, f"{field}__lt": self.until})

    def trunc(self, field):
        tz = desk_timezone()
        if self.grain == DAY:
            return TruncDate(field, tzinfo=tz)
        if self.grain == WEEK:
            return TruncWeek(field, tzinfo=tz)
        return TruncMonth(field, tzinfo=tz)

    def bucket_start(self, day):
        if self.grain == WEEK:
            return day - timedelta(days=day.weekday())
        if self.grain == MONTH:
            return day.replace(day=1)
        return day

    def buckets(self):
        """The first day of every bucket that overlaps the period, in order."""
        current, result = self.bucket_start(self.start), []
        while current <= self.end:
            result.append(current)
            if self.grain == DAY:
                current += timedelta(days=1)
            elif self.grain == WEEK:
                current += timedelta(days=7)
            else:
                current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
        return result


def auto_grain(start, end):
    days = (end - start).days + 1
    if days <= 62:
        return DAY
    if days <= 366:
        return WEEK
    return MONTH


def _bucket_date(value):
    """A truncated value as the local date it starts (TruncDate gives dates; TruncWeek/Month datetimes)."""
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = value.astimezone(desk_timezone())
        return value.date()
    return value


# --- Scope -------------------------------------------------------------------------------


def _tickets(centers):
    queryset = Ticket.objects.order_by()
    if centers is not None:
        queryset = queryset.filter(service_center_id__in=list(centers))
    return queryset


def _share(part, whole):
    return part / whole if whole else None


# --- Volume -------------------------------------------------------------------------------

MILESTONES = (("opened", "created_at"), ("completed", "completed_at"), ("cancelled", "cancelled_at"))


def volume_over_time(period, centers):
    """Tickets opened, completed and cancelled in each bucket: [{bucket, opened, completed, cancelled}].

    Three queries, one per milestone column.
    """
    counts = {}
    for name, field in MILESTONES:
        rows = (
            _tickets(centers)
            .filter(period.contains(field))
            .annotate(bucket=period.trunc(field))
            .values("bucket")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            counts[name, _bucket_date(row["bucket"])] = row["n"]
    return [
        {"bucket": bucket, **{name: counts.get((name, bucket), 0) for name, _field in MILESTONES}}
        for bucket in period.buckets()
    ]


def volume_by_center(period, centers):
    """Per service center: tickets opened, completed and cancelled in the period. One query."""
    opened, completed, cancelled = (period.contains(field) for _name, field in MILESTONES)
    rows = (
        _tickets(centers)
        .filter(opened | completed | cancelled)
        .values("service_center_id", "service_center__name")
        .annotate(
            opened=Count("pk", filter=opened),
            completed=Count("pk", filter=completed),
            cancelled=Count("pk", filter=cancelled),
        )
        .order_by("service_center__name", "service_center_id")
    )
    return [
        {
            "center_id": row["service_center_id"],
            "center": row["service_center__name"],
            "opened": row["opened"],
            "completed": row["completed"],
            "cancelled": row["cancelled"],
        }
        for row in rows
    ]


def age_bands():
    """[(key, lower days, upper days or None)] for the work-in-progress age bands."""
    bands, lower = [], 0
    for upper in AGE_BAND_DAYS:
        bands.append((f"age_{lower}_{upper}", lower, upper))
        lower = upper
    bands.append((f"age_{lower}_plus", lower, None))
    return bands


def work_in_progress(centers, now=None):
    """Open tickets per stage right now, with their age (since opened) in bands and the oldest's start.

    [{stage, count, oldest_created_at, age_…}] for every open stage in
    lifecycle order, zeros included. One query. The date range does not
    apply: this is the desk as it stands.
    """
    now = now or timezone.now()
    aggregates = {"count": Count("pk"), "oldest_created_at": Min("created_at")}
    for key, lower, upper in age_bands():
        condition = Q(created_at__lte=now - timedelta(days=lower))
        if upper is not None:
            condition &= Q(created_at__gt=now - timedelta(days=upper))
        aggregates[key] = Count("pk", filter=condition)
    found = {
        row["status"]: row
        for row in _tickets(centers).filter(status__in=OPEN_STAGES).values("status").annotate(**aggregates).order_by()
    }
    empty = {key: 0 for key in aggregates} | {"oldest_created_at": None}
    return [{"stage": stage, **{k: found.get(stage, empty)[k] for k in aggregates}} for stage in OPEN_STAGES]


# --- Time ----------------------------------------------------------------------------------


def _epoch(column_sql):
    """SQL for a timestamp column as seconds since an epoch (a number: differences are durations)."""
    if connection.vendor == "postgresql":
        # date_part gives double precision; EXTRACT's numeric is several times slower to sum and sort.
        return f"date_part('epoch', {column_sql})"
    if connection.vendor == "sqlite":
        # Django stores UTC text that julianday() reads; a day is 86,400 seconds.
        return f"(julianday({column_sql}) * 86400.0)"
    raise NotImplementedError(f"Stage times are not written for {connection.vendor}.")


def _target_case(column, targets):
    """SQL CASE giving each stage's target in seconds (NULL: no target), with its parameters."""
    whens, params = [], []
    for stage, hours in targets.items():
        if hours is not None:
            whens.append("WHEN %s THEN %s")
            params += [stage, float(hours) * 3600]
    if not whens:
        return "NULL", []
    return f"(CASE {column} {' '.join(whens)} ELSE NULL END)", params


def _durations_sql(period, centers):
    """CTEs ending in ``durations(tid, stage, secs)``: the closed tickets' time per stage, and end to end.

    The cohort: tickets completed or cancelled in the period (in scope). A
    visit to a stage starts with the event whose ``to_status`` is the stage
    and ends with the next one, whose ``from_status`` is the stage; a closed
    ticket has left every stage it entered, so its time in a stage is the sum
    of the times it left it minus the sum of the times it entered it — a
    plain GROUP BY over its events, no window to sort (several visits add
    up). End to end is opened → completed, completed tickets only.
    """
    cohort = (
        _tickets(centers)
        .filter(period.contains("completed_at") | period.contains("cancelled_at"))
        .values(tid=F("pk"), opened=F("created_at"), closed=F("completed_at"))
    )
    cohort_sql, cohort_params = cohort.query.sql_with_params()
    qn = connection.ops.quote_name
    events = qn(StageEvent._meta.db_table)
    at = _epoch(f"e.{qn('at')}")
    sums, params = [], list(cohort_params)
    for index, stage in enumerate(TIMED_STAGES):
        sums.append(
            f"SUM(CASE WHEN e.from_status = %s THEN {at} WHEN e.to_status = %s THEN -{at} ELSE 0 END) AS s{index}, "
            f"SUM(CASE WHEN e.to_status = %s THEN 1 ELSE 0 END) AS v{index}"
        )
        params += [str(stage)] * 3
    unpivot = []
    for index, stage in enumerate(TIMED_STAGES):
        unpivot.append(f"SELECT tid, %s AS stage, s{index} AS secs FROM per_ticket WHERE v{index} > 0")
        params.append(str(stage))
    unpivot.append(f"SELECT tid, %s AS stage, {_epoch('closed')} - {_epoch('opened')} AS secs FROM cohort WHERE closed IS NOT NULL")
    params.append(END_TO_END)
    union = "\n            UNION ALL ".join(unpivot)
    sql = f"""
        WITH cohort AS ({cohort_sql}),
        per_ticket AS (
            SELECT e.ticket_id AS tid, {", ".join(sums)}
            FROM cohort c
            JOIN {events} e ON e.ticket_id = c.tid
            GROUP BY e.ticket_id
        ),
        durations AS (
            {union}
        )
    """
    return sql, params


def _fetch(sql, params):
    """The rows of a raw report query.

    On PostgreSQL without JIT compilation: the planner overestimates these
    queries, and compiling them took longer than running them (bench/reports.py).
    ``SET LOCAL`` travels in the same round trip, so the query count is the
    same on both databases; it lasts until the end of the transaction.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off; " + sql, params)
            cursor.nextset()
        else:
            cursor.execute(sql, params)
        return cursor.fetchall()


def _percentile(n, percent, lower, upper):
    """percentile_cont from the values at ranks floor((n-1)·p)+1 and the next one."""
    if not n or lower is None:
        return None
    fraction = ((n - 1) * percent % 100) / 100
    if fraction == 0 or upper is None:
        return float(lower)
    return float(lower) + fraction * (float(upper) - float(lower))


def time_in_stages(period, centers, limit=None):
    """The stage-time figures and the tickets over target, from one pass over the closed tickets' history.

    Returns ``(times, over)``, as ``stage_times()`` and ``closed_over_target()``
    (``limit``: at most that many of the latter). One query: the history is
    read once for both tables of the Time report.
    """
    targets = sla_hours()
    durations_sql, params = _durations_sql(period, centers)
    target_sql, target_params = _target_case("stage", targets)
    qn = connection.ops.quote_name
    tickets, centers_table = qn(Ticket._meta.db_table), qn(ServiceCenter._meta.db_table)
    picks = []
    for percent in PERCENTILES:
        for offset in (1, 2):
            picks.append(f"MAX(CASE WHEN rn = (n - 1) * {percent} / 100 + {offset} THEN secs END)")
    limit_sql = "" if limit is None else f"LIMIT {int(limit)}"
    sql = f"""
        {durations_sql},
        ranked AS (
            SELECT stage, secs,
                   ROW_NUMBER() OVER (PARTITION BY stage ORDER BY secs) AS rn,
                   COUNT(*) OVER (PARTITION BY stage) AS n
            FROM durations
        ),
        over_target AS (
            SELECT d.stage, d.secs, {target_sql} AS target, t.number, c.name AS center
            FROM durations d
            JOIN {tickets} t ON t.id = d.tid
            JOIN {centers_table} c ON c.id = t.service_center_id
            WHERE d.secs > {target_sql}
        )
        SELECT 0 AS part, stage, MAX(n) AS n, SUM(CASE WHEN secs > {target_sql} THEN 1 ELSE 0 END) AS over_count,
               {picks[0]} AS v1, {picks[1]} AS v2, {picks[2]} AS v3, {picks[3]} AS v4,
               NULL AS number, NULL AS center
        FROM ranked
        GROUP BY stage
        UNION ALL
        SELECT * FROM (
            SELECT 1 AS part, stage, CAST(NULL AS BIGINT) AS n, CAST(NULL AS BIGINT) AS over_count,
                   secs AS v1, target AS v2, secs - target AS v3, CAST(NULL AS DOUBLE PRECISION) AS v4, number, center
            FROM over_target
            ORDER BY secs - target DESC, number, stage
            {limit_sql}
        ) listed
    """
    rows = _fetch(sql, [*params, *target_params, *target_params, *target_params])
    found = {row[1]: row[2:8] for row in rows if row[0] == 0}
    times = []
    for stage in (*[str(s) for s in TIMED_STAGES], END_TO_END):
        n, over, *values = found.get(stage, (0, 0) + (None,) * (2 * len(PERCENTILES)))
        n, hours = int(n or 0), targets.get(stage)
        row = {
            "stage": stage,
            "tickets": n,
            "target_seconds": None if hours is None else float(hours) * 3600,
            "over_target": int(over or 0) if hours is not None else None,
        }
        for index, percent in enumerate(PERCENTILES):
            name = "median_seconds" if percent == 50 else f"p{percent}_seconds"
            row[name] = _percentile(n, percent, values[2 * index], values[2 * index + 1])
        times.append(row)
    # The union's order is not the subquery's: a few rows (at most ``limit``) sorted again.
    over = sorted(
        (
            {"number": number, "center": center, "stage": stage, "seconds": float(secs), "target_seconds": float(target)}
            for part, stage, _n, _o, secs, target, _excess, _v4, number, center in rows
            if part == 1
        ),
        key=lambda r: (-(r["seconds"] - r["target_seconds"]), r["number"], r["stage"]),
    )
    return times, over


def stage_times(period, centers):
    """Median and 90th-percentile time in each stage, and end to end, with the count over target.

    The tickets are those completed or cancelled in the period. Rows, in
    lifecycle order then end to end: {stage, tickets, median_seconds,
    p90_seconds, target_seconds, over_target}. A stage no ticket of the
    cohort went through has ``tickets`` 0 and no times. One query.
    """
    return time_in_stages(period, centers, limit=0)[0]


def closed_over_target(period, centers, limit=None):
    """The tickets closed in the period that spent longer than the target in a stage (or end to end).

    One row per ticket and stage over target, the largest excess first:
    {number, center, stage, seconds, target_seconds}. One query.
    """
    return time_in_stages(period, centers, limit=limit)[1]


def _open_over_target(centers, now):
    """Open tickets whose current stage has lasted longer than its target, annotated with ``entered``."""
    targets = sla_hours()
    condition = Q(pk__in=[])
    for stage in OPEN_STAGES:
        hours = targets.get(str(stage))
        if hours is not None:
            condition |= Q(status=stage, entered__lt=now - timedelta(hours=float(hours)))
    entered = StageEvent.objects.filter(ticket=OuterRef("pk")).order_by("-at", "-pk").values("at")[:1]
    return _tickets(centers).filter(status__in=OPEN_STAGES).annotate(entered=Subquery(entered)).filter(condition)


def open_over_target_counts(centers, now=None):
    """Per open stage: tickets in it now, and how many have been in it longer than its target. One query."""
    now = now or timezone.now()
    targets = sla_hours()
    over = _open_over_target(centers, now).values("pk")
    found = {
        row["status"]: row
        for row in _tickets(centers)
        .filter(status__in=OPEN_STAGES)
        .values("status")
        .annotate(tickets=Count("pk"), over_target=Count("pk", filter=Q(pk__in=over)))
        .order_by()
    }
    rows = []
    for stage in OPEN_STAGES:
        hours = targets.get(str(stage))
        row = found.get(stage, {"tickets": 0, "over_target": 0})
        rows.append(
            {
                "stage": str(stage),
                "tickets": row["tickets"],
                "target_seconds": None if hours is None else float(hours) * 3600,
                "over_target": row["over_target"] if hours is not None else None,
            }
        )
    return rows


def open_over_target(centers, now=None, limit=None):
    """The open tickets over their current stage's target, longest in the stage first. One query.

    [{number, center, stage, entered, seconds, target_seconds}]
    """
    now = now or timezone.now()
    targets = sla_hours()
    queryset = (
        _open_over_target(centers, now)
        .order_by("entered", "number")
        .values("number", "service_center__name", "status", "entered")
    )
    if limit is not None:
        queryset = queryset[:limit]
    return [
        {
            "number": row["number"],
            "center": row["service_center__name"],
            "stage": row["status"],
            "entered": row["entered"],
            "seconds": (now - row["entered"]).total_seconds(),
            "target_seconds": float(targets[row["status"]]) * 3600,
        }
        for row in queryset
    ]


# --- Cancellations ------------------------------------------------------------------------


def cancellations_by_reason(period, centers):
    """Tickets cancelled in the period by who cancelled and why: [{actor, reason, count, share}].

    Every reason of every actor is listed, zeros included (customer, staff,
    system order), then anything unexpected found in the data. One query.
    """
    found = {
        (row["cancelled_by_kind"], row["cancel_reason"]): row["n"]
        for row in _tickets(centers)
        .filter(period.contains("cancelled_at"))
        .values("cancelled_by_kind", "cancel_reason")
        .annotate(n=Count("pk"))
        .order_by()
    }
    total = sum(found.values())
    keys = [(str(actor), str(reason)) for actor, reasons in CANCEL_REASONS_BY_ACTOR.items() for reason in reasons]
    keys += sorted(key for key in found if key not in keys)
    return [
        {"actor": actor, "reason": reason, "count": found.get((actor, reason), 0), "share": _share(found.get((actor, reason), 0), total)}
        for actor, reason in keys
    ]


ACTORS = tuple(str(kind) for kind in ActorKind)


def cancellations_over_time(period, centers):
    """Cancellations per bucket by who cancelled: [{bucket, customer, staff, system, total}]. One query."""
    counts = {}
    rows = (
        _tickets(centers)
        .filter(period.contains("cancelled_at"))
        .annotate(bucket=period.trunc("cancelled_at"))
        .values("bucket", "cancelled_by_kind")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        counts[_bucket_date(row["bucket"]), row["cancelled_by_kind"]] = row["n"]
    result = []
    for bucket in period.buckets():
        row = {"bucket": bucket, **{actor: counts.get((bucket, actor), 0) for actor in ACTORS}}
        row["total"] = sum(n for (b, _actor), n in counts.items() if b == bucket)
        result.append(row)
    return result


def _cancellation_counts():
    return {
        "opened": Count("pk"),
        "cancelled": Count("pk", filter=Q(status=Status.CANCELLED)),
        **{f"by_{actor}": Count("pk", filter=Q(status=Status.CANCELLED, cancelled_by_kind=actor)) for actor in ACTORS},
    }


def _with_rate(row):
    row["rate"] = _share(row["cancelled"], row["opened"])
    return row


def cancellation_rate_by_center(period, centers):
    """Of the tickets opened in the period, the share cancelled so far, per center. One query.

    [{center, opened, cancelled, by_customer, by_staff, by_system, rate}], by center name.
    """
    rows = (
        _tickets(centers)
        .filter(period.contains("created_at"))
        .values("service_center_id", "service_center__name")
        .annotate(**_cancellation_counts())
        .order_by("service_center__name", "service_center_id")
    )
    return [
        _with_rate({"center": row.pop("service_center__name"), "center_id": row.pop("service_center_id"), **row})
        for row in rows
    ]


def cancellation_rate_by_model(period, centers):
    """Of the tickets opened in the period, the share cancelled so far, per device model. One query.

    [{brand, model, opened, cancelled, by_…, rate}], most cancellations first;
    devices not in the catalogue are one row with ``brand`` and ``model`` None.
    """
    rows = (
        _tickets(centers)
        .filter(period.contains("created_at"))
        .values("device_model_id", "device_model__brand", "device_model__name")
        .annotate(**_cancellation_counts())
        .order_by("-cancelled", "-opened", "device_model__brand", "device_model__name")
    )
    return [
        _with_rate(
            {
                "brand": row.pop("device_model__brand"),
                "model": row.pop("device_model__name"),
                "model_id": row.pop("device_model_id"),
                **row,
            }
        )
        for row in rows
    ]


# --- Faults -----------------------------------------------------------------------------------


class _RankOverGroups(Window):
    """A window function over the groups of an aggregate query.

    Django 5.2 adds a window annotation of a grouped query to its GROUP BY,
    which the databases refuse when the window orders by an aggregate; the
    columns it partitions and orders by are grouped already (they are among
    the ``values()``), so it contributes nothing to the grouping.
    """

    def get_group_by_cols(self):
        return []


def _top_faults(period, centers, group, top):
    """(group…, fault) ticket counts ranked within each group, the ``top`` of each. One query."""
    return (
        _tickets(centers)
        .filter(period.contains("created_at"))
        .values(*group, "fault_category_id", "fault_category__sort_order", "fault_category__name", "fault_category__name_zh_hans")
        .annotate(
            count=Count("pk"),
            rank=_RankOverGroups(
                expression=RowNumber(),
                partition_by=[F(group[0])],
                order_by=[Count("pk").desc(), F("fault_category__sort_order").asc(), F("fault_category_id").asc()],
            ),
        )
        .filter(rank__lte=top)
        .order_by()
    )


def _fault_row(row):
    return {
        "fault": row["fault_category__name"],
        "fault_zh_hans": row["fault_category__name_zh_hans"],
        "count": row["count"],
        "rank": row["rank"],
    }


def top_faults_by_model(period, centers, top=3):
    """The ``top`` fault categories of each device model, tickets opened in the period. One query.

    [{brand, model, fault, fault_zh_hans, count, rank}], by brand, model and
    rank; devices not in the catalogue are one group with brand and model None.
    """
    rows = _top_faults(period, centers, ["device_model_id", "device_model__brand", "device_model__name"], top)
    result = [{"brand": row["device_model__brand"], "model": row["device_model__name"], **_fault_row(row)} for row in rows]
    # Sorting a few rows per model (top × models, whatever the number of tickets); None sorts last.
    result.sort(key=lambda r: (r["brand"] is None, r["brand"] or "", r["model"] or "", r["rank"]))
    return result


def top_faults_by_brand(period, centers, top=3):
    """The ``top`` fault categories of each brand, tickets opened in the period. One query.

    [{brand, fault, fault_zh_hans, count, rank}]; devices not in the catalogue have brand None.
    """
    rows = _top_faults(period, centers, ["device_model__brand"], top)
    result = [{"brand": row["device_model__brand"], **_fault_row(row)} for row in rows]
    result.sort(key=lambda r: (r["brand"] is None, r["brand"] or "", r["rank"]))
    return result


def _earlier_repair():
    """Subquery: a completed repair of the same IMEI/serial that ended at most REPEAT days before this ticket."""
    window = timedelta(days=repeat_repair_days())
    return (
        Ticket.objects.filter(
            imei_or_serial=OuterRef("imei_or_serial"),
            completed_at__isnull=False,
            completed_at__lte=OuterRef("created_at"),
            completed_at__gte=OuterRef("created_at") - window,
        )
        .exclude(pk=OuterRef("pk"))
        .order_by("-completed_at", "-pk")
    )


def repeat_repairs_by_model(period, centers):
    """Tickets opened in the period, and those whose device came back within the repeat window. One query.

    [{brand, model, tickets, repeats, rate}], most repeats first; a device is
    back when a completed repair of the same IMEI/serial (at any center)
    ended at most REPORT_REPEAT_REPAIR_DAYS before the new ticket was opened.
    """
    rows = (
        _tickets(centers)
        .filter(period.contains("created_at"))
        .values("device_model_id", "device_model__brand", "device_model__name")
        .annotate(tickets=Count("pk"), repeats=Count("pk", filter=Exists(_earlier_repair())))
        .order_by("-repeats", "-tickets", "device_model__brand", "device_model__name")
    )
    return [
        {
            "brand": row["device_model__brand"],
            "model": row["device_model__name"],
            "tickets": row["tickets"],
            "repeats": row["repeats"],
            "rate": _share(row["repeats"], row["tickets"]),
        }
        for row in rows
    ]


def repeat_repairs(period, centers, limit=None):
    """The repeat tickets themselves, newest first, with the earlier repair. One query.

    [{number, center, brand, model, imei_or_serial, created_at, previous_number, previous_completed_at}]
    """
    earlier = _earlier_repair()
    queryset = (
        _tickets(centers)
        .filter(period.contains("created_at"))
        .filter(Exists(earlier))
        .annotate(
            previous_number=Subquery(earlier.values("number")[:1]),
            previous_completed_at=Subquery(earlier.values("completed_at")[:1]),
        )
        .order_by("-created_at", "-pk")
        .values(
            "number",
            "service_center__name",
            "device_model__brand",
            "device_model__name",
            "device_other",
            "imei_or_serial",
            "created_at",
            "previous_number",
            "previous_completed_at",
        )
    )
    if limit is not None:
        queryset = queryset[:limit]
    return [
        {
            "number": row["number"],
            "center": row["service_center__name"],
            "brand": row["device_model__brand"],
            "model": row["device_model__name"] or row["device_other"] or None,
            "imei_or_serial": row["imei_or_serial"],
            "created_at": row["created_at"],
            "previous_number": row["previous_number"],
            "previous_completed_at": row["previous_completed_at"],
        }
        for row in queryset
    ]


def test_failures_by_center(period, centers):
    """Per center: tickets that left testing in the period, those that failed it (testing → repairing). One query.

    [{center, tested, failed, failures, rate}]: ``tested`` counts tickets
    that passed or failed testing in the period, ``failed`` those that failed
    at least once, ``failures`` every failure; ``rate`` is failed / tested.
    """
    events = StageEvent.objects.filter(period.contains("at"), from_status=Status.TESTING).order_by()
    if centers is not None:
        events = events.filter(ticket__service_center_id__in=list(centers))
    failed = Q(to_status=Status.REPAIRING)
    rows = (
        events.values("ticket__service_center_id", "ticket__service_center__name")
        .annotate(
            tested=Count("ticket_id", distinct=True),
            failed=Count("ticket_id", distinct=True, filter=failed),
            failures=Count("pk", filter=failed),
        )
        .order_by("ticket__service_center__name", "ticket__service_center_id")
    )
    return [
        {
            "center": row["ticket__service_center__name"],
            "tested": row["tested"],
            "failed": row["failed"],
            "failures": row["failures"],
            "rate": _share(row["failed"], row["tested"]),
        }
        for row in rows
    ]


# --- Satisfaction -------------------------------------------------------------------------------

SATISFIED_STARS = 4  # CSAT: the share of ratings with at least this many stars


def _ratings(period, centers):
    ratings = Rating.objects.filter(period.contains("created_at")).order_by()
    if centers is not None:
        ratings = ratings.filter(ticket__service_center_id__in=list(centers))
    return ratings


def _rating_aggregates():
    return {"count": Count("pk"), "average": Avg("stars"), "satisfied": Count("pk", filter=Q(stars__gte=SATISFIED_STARS))}


def _with_csat(row):
    row["csat"] = _share(row["satisfied"], row["count"])
    return row


def rating_summary(period, centers):
    """Ratings given in the period: {count, average, satisfied, csat}. One query."""
    return _with_csat(dict(_ratings(period, centers).aggregate(**_rating_aggregates())))


def rating_distribution(period, centers):
    """How many ratings of 1 to 5 stars: [{stars, count, share}], all five. One query."""
    found = {row["stars"]: row["n"] for row in _ratings(period, centers).values("stars").annotate(n=Count("pk"))}
    total = sum(found.values())
    return [{"stars": stars, "count": found.get(stars, 0), "share": _share(found.get(stars, 0), total)} for stars in range(1, 6)]


def ratings_by_center(period, centers):
    """Per center: {center, count, average, satisfied, csat}, by name. One query."""
    rows = (
        _ratings(period, centers)
        .values("ticket__service_center_id", "ticket__service_center__name")
        .annotate(**_rating_aggregates())
        .order_by("ticket__service_center__name", "ticket__service_center_id")
    )
    return [
        _with_csat(
            {
                "center": row["ticket__service_center__name"],
                "count": row["count"],
                "average": row["average"],
                "satisfied": row["satisfied"],
            }
        )
        for row in rows
    ]


def ratings_over_time(period, centers):
    """Per bucket: {bucket, count, average, satisfied, csat}, empty buckets included. One query."""
    found = {
        _bucket_date(row["bucket"]): row
        for row in _ratings(period, centers)
        .annotate(bucket=period.trunc("created_at"))
        .values("bucket")
        .annotate(**_rating_aggregates())
    }
    empty = {"count": 0, "average": None, "satisfied": 0}
    return [
        _with_csat({"bucket": bucket, **{k: found.get(bucket, empty)[k] for k in empty}}) for bucket in period.buckets()
    ]


def latest_comments(period, centers, limit=20):
    """The newest ratings with a comment, published or not (staff read them all). One query.

    [{created_at, stars, comment, publish, number, center}]
    """
    rows = (
        _ratings(period, centers)
        .exclude(comment="")
        .order_by("-created_at", "-pk")
        .values("created_at", "stars", "comment", "publish", "ticket__number", "ticket__service_center__name")
    )
    if limit is not None:
        rows = rows[:limit]
    return [
        {
            "created_at": row["created_at"],
            "stars": row["stars"],
            "comment": row["comment"],
            "publish": row["publish"],
            "number": row["ticket__number"],
            "center": row["ticket__service_center__name"],
        }
        for row in rows
    ]


# --- Public ratings (customer pages) -------------------------------------------------------------

PUBLIC_RATINGS_CACHE_KEY = "tickets:public-ratings"
DEFAULT_PUBLIC_RATINGS_CACHE_SECONDS = 300


def public_ratings_cache_seconds():
    return int(getattr(settings, "PUBLIC_RATINGS_CACHE_SECONDS", DEFAULT_PUBLIC_RATINGS_CACHE_SECONDS))


def with_public_rating(centers):
    """``centers`` (a ServiceCenter queryset) with ``rating_count`` and ``rating_average`` of all their ratings.

    Two aggregates on the same query. Every rating counts towards the
    average; only comments need the customer's consent.
    """
    return centers.annotate(rating_count=Count("tickets__rating"), rating_average=Avg("tickets__rating__stars"))


def centers_with_public_rating(centers):
    """The centers of a queryset, as a list, each with ``rating_count`` and ``rating_average``. One query.

    Averaging every rating of every center reads the whole rating history
    (seconds with a million tickets), too slow for each visit to the public
    pages, so the numbers are cached for PUBLIC_RATINGS_CACHE_SECONDS (0: not
    cached). The query count is the same either way: on a miss the centers
    query carries the aggregates (``with_public_rating``); on a hit it is the
    plain centers query the page needs anyway. A center missing from the
    cached numbers (new since) shows no rating until they expire.
    """
    seconds = public_ratings_cache_seconds()
    numbers = cache.get(PUBLIC_RATINGS_CACHE_KEY) if seconds > 0 else None
    if numbers is None:
        rows = list(with_public_rating(centers))
        if seconds > 0:
            cache.set(PUBLIC_RATINGS_CACHE_KEY, {c.pk: (c.rating_average, c.rating_count) for c in rows}, seconds)
        return rows
    rows = list(centers)
    for center in rows:
        center.rating_average, center.rating_count = numbers.get(center.pk, (None, 0))
    return rows


def public_comments(limit=5):
    """The newest comments customers agreed to publish: [{created_at, stars, comment, center}]. One query.

    Newest by id (ratings are numbered as they are given): the primary key's
    index finds them without reading the rating history. Nothing that
    identifies the customer or the ticket.
    """
    rows = (
        Rating.objects.filter(publish=True)
        .exclude(comment="")
        .order_by("-pk")
        .values("created_at", "stars", "comment", "ticket__service_center__name")[:limit]
    )
    return [
        {
            "created_at": row["created_at"],
            "stars": row["stars"],
            "comment": row["comment"],
            "center": row["ticket__service_center__name"],
        }
        for row in rows
    ]


def center_rating_text(center):
    """A center's public rating in words, from ``with_public_rating``: "4.6 out of 5 (128 ratings)"."""
    from django.utils.formats import number_format
    from django.utils.translation import gettext, ngettext

    if not center.rating_count:
        return gettext("no ratings yet")
    return ngettext(
        "%(average)s out of 5 (%(count)s rating)",
        "%(average)s out of 5 (%(count)s ratings)",
        center.rating_count,
    ) % {"average": number_format(center.rating_average, decimal_pos=1, use_l10n=True), "count": center.rating_count}
