"""The report pages of the staff admin: ``/admin/reports/`` and one page per report.

For staff holding ``tickets.view_reports`` (supervisors; the role migration
gives it to them), inside the admin (``admin.site.admin_view``: signed-in
staff only). Staff see the figures of their own service centers,
supervisors those of every center; a center outside the user's reach is
not even offered in the filter.

Every page shows the same filters (a date range in the desk's time zone,
a service center, the grain of time series), a few headline figures, and
tables, each with its chart (tickets.templatetags.charts) and a CSV download
(``?format=csv&table=<key>`` with the same filters). The numbers come from
tickets.reports; this module only labels and formats them.

``install(site)`` adds the URLs to an AdminSite (tickets/admin.py calls it).
"""

import csv
from dataclasses import dataclass, field
from datetime import timedelta

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.http import urlencode
from django.utils.translation import get_language, gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from .. import reports
from ..models import ActorKind, CancelReason, ServiceCenter, Status
from ..templatetags.charts import Chart, Series

PERMISSION = "tickets.view_reports"

# Lists (not aggregates) show this many rows on the page; their CSV has them all.
LIST_LIMIT = 100
COMMENTS_ON_PAGE = 20
# A time series has at most this many buckets: choose a coarser grain beyond it.
MAX_BUCKETS = 400
MAX_DAYS = 5 * 366
DEFAULT_DAYS = 30


# --- filters -------------------------------------------------------------------------------


class ReportFilterForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    end = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    center = forms.TypedChoiceField(label=_("Service center"), required=False, coerce=int, empty_value=None)
    grain = forms.ChoiceField(
        label=_("Per"),
        required=False,
        choices=[("", _("Automatic")), (reports.DAY, _("Day")), (reports.WEEK, _("Week")), (reports.MONTH, _("Month"))],
    )

    def __init__(self, data, *, centers, all_label):
        today = timezone.localdate()
        defaults = {"start": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), "end": today.isoformat()}
        data = {key: data.get(key) or defaults.get(key, "") for key in ("start", "end", "center", "grain")}
        super().__init__(data)
        self.fields["center"].choices = [("", all_label)] + [(center.pk, center.name) for center in centers]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError(_("The period ends before it starts."))
            if (end - start).days + 1 > MAX_DAYS:
                raise forms.ValidationError(_("Choose a period of at most five years."))
            grain = cleaned.get("grain") or reports.auto_grain(start, end)
            if len(reports.Period(start, end, grain).buckets()) > MAX_BUCKETS:
                self.add_error("grain", _("Too many points for this period: choose weeks or months."))
            cleaned["grain"] = grain
        return cleaned


@dataclass
class Scope:
    period: reports.Period
    centers: list | None  # None: every center
    center_name: str
    now: object

    @property
    def description(self):
        return gettext("%(center)s, %(start)s to %(end)s") % {
            "center": self.center_name,
            "start": date_format(self.period.start, "SHORT_DATE_FORMAT"),
            "end": date_format(self.period.end, "SHORT_DATE_FORMAT"),
        }


def _visible_centers(user):
    centers = ServiceCenter.objects.order_by("name", "pk")
    if not (user.is_superuser or user.sees_all_centers):
        centers = centers.filter(staff=user)
    return list(centers)


# --- tables and their cells ------------------------------------------------------------------

# Kinds of cells: how each is shown on the page and written to the CSV file.
TEXT, INT, SHARE, DURATION, AVERAGE, BUCKET, DATETIME, TICKET = (
    "text", "int", "share", "duration", "average", "bucket", "datetime", "ticket"
)


@dataclass
class Column:
    key: str
    label: str
    kind: str = TEXT
    csv_label: str = ""

    @property
    def numeric(self):
        return self.kind in (INT, SHARE, DURATION, AVERAGE)


@dataclass
class Table:
    key: str
    title: str
    columns: list
    rows: list
    chart: Chart | None = None
    description: str = ""
    total: int | None = None  # for lists: how many there are when only LIST_LIMIT are shown
    grain: str = reports.DAY
    cells: list = field(default_factory=list)

    @property
    def wide(self):
        """Too many columns to stand beside its chart: the table goes under it."""
        return len(self.columns) > 5

    @property
    def truncated(self):
        return self.total is not None and self.total > len(self.rows)


def format_duration(seconds):
    """3 d 4 h, 5.5 h, 40 min."""
    if seconds is None:
        return "–"
    hours = seconds / 3600
    if hours < 1:
        return gettext("%(minutes)s min") % {"minutes": round(seconds / 60)}
    if hours < 48:
        return gettext("%(hours)s h") % {"hours": number_format(hours, decimal_pos=1, use_l10n=True)}
    days, rest = divmod(round(hours), 24)
    if not rest:
        return ngettext("%(days)s day", "%(days)s days", days) % {"days": days}
    return gettext("%(days)s d %(hours)s h") % {"days": days, "hours": rest}


def bucket_label(day, grain, short=False):
    """A time series' bucket: in full for tables, short for a chart's axis (a translatable date format)."""
    if grain == reports.MONTH:
        return date_format(day, pgettext("date format of a month on a chart axis", "M Y") if short else "YEAR_MONTH_FORMAT")
    if short:
        return date_format(day, pgettext("date format of a day on a chart axis", "j M"))
    if grain == reports.WEEK:
        return gettext("Week of %(day)s") % {"day": date_format(day, "DATE_FORMAT")}
    return date_format(day, "DATE_FORMAT")


def _display(value, kind, grain):
    if value is None:
        return "–"
    if kind == INT:
        return number_format(value, use_l10n=True, force_grouping=True)
    if kind == SHARE:
        return f"{number_format(value * 100, decimal_pos=1, use_l10n=True)} %"
    if kind == AVERAGE:
        return number_format(value, decimal_pos=2, use_l10n=True)
    if kind == DURATION:
        return format_duration(value)
    if kind == BUCKET:
        return bucket_label(value, grain)
    if kind == DATETIME:
        return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    return str(value)


def _csv_value(value, kind):
    if value is None:
        return ""
    if kind == SHARE:
        return f"{value * 100:.1f}"
    if kind == AVERAGE:
        return f"{value:.2f}"
    if kind == DURATION:
        return f"{value / 3600:.2f}"
    if kind == BUCKET:
        return value.isoformat()
    if kind == DATETIME:
        return timezone.localtime(value).isoformat(timespec="minutes")
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # A customer's comment must not become a spreadsheet formula.
        return "'" + value
    return value


def _stage(stage):
    if stage == reports.END_TO_END:
        return gettext("End to end (completed)")
    try:
        return str(Status(stage).label)
    except ValueError:
        return stage


def _actor(actor):
    try:
        return str(ActorKind(actor).label)
    except ValueError:
        return actor or "–"


def _reason(reason):
    try:
        return str(CancelReason(reason).label)
    except ValueError:
        return reason or "–"


def _model(brand, model):
    if brand is None and model is None:
        return gettext("Not in the catalogue")
    return f"{brand} {model}" if brand else str(model)


def _brand(brand):
    return brand if brand is not None else gettext("Not in the catalogue")


def _fault(row):
    if (get_language() or "").lower().startswith("zh") and row.get("fault_zh_hans"):
        return row["fault_zh_hans"]
    return row["fault"]


def _limit(full, key, limit=None):
    """How many rows of list ``key`` to fetch: all of them for its CSV file (``full`` is its key)."""
    return None if full == key else (limit or LIST_LIMIT)


def _percent(value):
    return None if value is None else value * 100


def _hours(value):
    return None if value is None else value / 3600


# --- the reports ---------------------------------------------------------------------------------


def _volume(scope, full=None):
    period, centers = scope.period, scope.centers
    over_time = reports.volume_over_time(period, centers)
    by_center = reports.volume_by_center(period, centers)
    wip = reports.work_in_progress(centers, now=scope.now)
    for row in wip:
        row["stage_label"] = _stage(row["stage"])
        row["oldest_age"] = (scope.now - row["oldest_created_at"]).total_seconds() if row["oldest_created_at"] else None
    bands = reports.age_bands()
    band_labels = {}
    for key, lower, upper in bands:
        if upper is None:
            band_labels[key] = ngettext("%(n)s day or more", "%(n)s days or more", lower) % {"n": lower}
        elif lower == 0:
            band_labels[key] = ngettext("under %(n)s day", "under %(n)s days", upper) % {"n": upper}
        else:
            band_labels[key] = gettext("%(lower)s–%(upper)s days") % {"lower": lower, "upper": upper}
    labels = [bucket_label(row["bucket"], period.grain, short=True) for row in over_time]
    names = {"opened": gettext("Opened"), "completed": gettext("Completed"), "cancelled": gettext("Cancelled")}
    tables = [
        Table(
            "over_time",
            gettext("Opened, completed and cancelled"),
            [Column("bucket", gettext("Period"), BUCKET)] + [Column(k, v, INT) for k, v in names.items()],
            over_time,
            Chart(
                "line", "chart-volume-time", gettext("Tickets opened, completed and cancelled"),
                gettext("Line chart per %(grain)s, %(scope)s.") % {"grain": _grain_name(period.grain), "scope": scope.description},
                labels, [Series(v, [row[k] for row in over_time]) for k, v in names.items()],
            ),
            description=gettext("Each ticket counts on the day (in the desk's time zone) it was opened, completed or cancelled."),
        ),
        Table(
            "by_center",
            gettext("Per service center"),
            [Column("center", gettext("Service center"))] + [Column(k, v, INT) for k, v in names.items()],
            by_center,
            Chart(
                "hbar", "chart-volume-center", gettext("Tickets per service center"),
                gettext("Bar chart, %(scope)s.") % {"scope": scope.description},
                [row["center"] for row in by_center], [Series(v, [row[k] for row in by_center]) for k, v in names.items()],
            ),
        ),
        Table(
            "work_in_progress",
            gettext("Open now, by stage and age"),
            [Column("stage_label", gettext("Stage")), Column("count", gettext("Open tickets"), INT)]
            + [Column(key, band_labels[key], INT) for key, _lower, _upper in bands]
            + [Column("oldest_age", gettext("Oldest"), DURATION, gettext("Oldest (hours)"))],
            wip,
            Chart(
                "hbar", "chart-volume-wip", gettext("Open tickets by stage and age"),
                gettext("Stacked bar chart of the tickets open now, by age since they were opened; the date range does not apply."),
                [row["stage_label"] for row in wip], [Series(band_labels[key], [row[key] for row in wip]) for key, _l, _u in bands],
                stacked=True,
            ),
            description=gettext("The desk as it stands now: the date range does not apply. Age counts from the day the ticket was opened."),
        ),
    ]
    figures = [
        (gettext("Opened"), _display(sum(r["opened"] for r in over_time), INT, None)),
        (gettext("Completed"), _display(sum(r["completed"] for r in over_time), INT, None)),
        (gettext("Cancelled"), _display(sum(r["cancelled"] for r in over_time), INT, None)),
        (gettext("Open now"), _display(sum(r["count"] for r in wip), INT, None)),
    ]
    return figures, tables


def _time(scope, full=None):
    period, centers = scope.period, scope.centers
    times, closed_list = reports.time_in_stages(period, centers, limit=_limit(full, "closed_over_target"))
    for row in times:
        row["stage_label"] = _stage(row["stage"])
    open_counts = reports.open_over_target_counts(centers, now=scope.now)
    for row in open_counts:
        row["stage_label"] = _stage(row["stage"])
    open_list = reports.open_over_target(centers, now=scope.now, limit=_limit(full, "open_over_target"))
    for row in open_list + closed_list:
        row["stage_label"] = _stage(row["stage"])
        row["excess"] = row["seconds"] - row["target_seconds"]
    open_total = sum(row["over_target"] or 0 for row in open_counts)
    closed_total = sum(row["over_target"] or 0 for row in times)
    timed = [row for row in times if row["tickets"]]
    tables = [
        Table(
            "stage_times",
            gettext("Time in each stage"),
            [
                Column("stage_label", gettext("Stage")),
                Column("tickets", gettext("Tickets"), INT),
                Column("median_seconds", gettext("Median"), DURATION, gettext("Median (hours)")),
                Column("p90_seconds", gettext("90th percentile"), DURATION, gettext("90th percentile (hours)")),
                Column("target_seconds", gettext("Target"), DURATION, gettext("Target (hours)")),
                Column("over_target", gettext("Over target"), INT),
            ],
            times,
            Chart(
                "hbar", "chart-time-stages", gettext("Median and 90th-percentile hours per stage"),
                gettext("Grouped bar chart in hours, tickets completed or cancelled: %(scope)s.") % {"scope": scope.description},
                [row["stage_label"] for row in timed],
                [
                    Series(gettext("Median"), [_hours(row["median_seconds"]) for row in timed]),
                    Series(gettext("90th percentile"), [_hours(row["p90_seconds"]) for row in timed]),
                ],
                decimals=1, unit=" h",
            ),
            description=gettext(
                "Tickets completed or cancelled in the period. A stage's time runs from the stage change that "
                "reached it to the next one; a ticket that went through a stage twice counts both visits. "
                "End to end runs from opening to completion, completed tickets only."
            ),
        ),
        Table(
            "open_over_target_counts",
            gettext("Open now, over the stage's target"),
            [
                Column("stage_label", gettext("Stage")),
                Column("tickets", gettext("Open tickets"), INT),
                Column("over_target", gettext("Over target"), INT),
                Column("target_seconds", gettext("Target"), DURATION, gettext("Target (hours)")),
            ],
            open_counts,
            Chart(
                "hbar", "chart-time-open", gettext("Open tickets within and over their stage's target"),
                gettext("Stacked bar chart of the tickets open now; the date range does not apply."),
                [row["stage_label"] for row in open_counts],
                [
                    Series(gettext("Within target"), [row["tickets"] - (row["over_target"] or 0) for row in open_counts]),
                    Series(gettext("Over target"), [row["over_target"] or 0 for row in open_counts]),
                ],
                stacked=True,
            ),
            description=gettext("The desk as it stands now: the date range does not apply."),
        ),
        Table(
            "open_over_target",
            gettext("Open tickets over target"),
            [
                Column("number", gettext("Ticket"), TICKET),
                Column("center", gettext("Service center")),
                Column("stage_label", gettext("Stage")),
                Column("entered", gettext("In the stage since"), DATETIME),
                Column("seconds", gettext("Time in the stage"), DURATION, gettext("Time in the stage (hours)")),
                Column("target_seconds", gettext("Target"), DURATION, gettext("Target (hours)")),
            ],
            open_list,
            total=open_total,
            description=gettext("Longest in their stage first."),
        ),
        Table(
            "closed_over_target",
            gettext("Closed tickets that went over a target"),
            [
                Column("number", gettext("Ticket"), TICKET),
                Column("center", gettext("Service center")),
                Column("stage_label", gettext("Stage")),
                Column("seconds", gettext("Time"), DURATION, gettext("Time (hours)")),
                Column("target_seconds", gettext("Target"), DURATION, gettext("Target (hours)")),
                Column("excess", gettext("Over by"), DURATION, gettext("Over by (hours)")),
            ],
            closed_list,
            total=closed_total,
            description=gettext("Tickets completed or cancelled in the period, one line per stage over its target, largest excess first."),
        ),
    ]
    end_to_end = times[-1]
    figures = [
        (gettext("Median, end to end"), format_duration(end_to_end["median_seconds"])),
        (gettext("90th percentile, end to end"), format_duration(end_to_end["p90_seconds"])),
        (gettext("Completed tickets timed"), _display(end_to_end["tickets"], INT, None)),
        (gettext("Open now, over target"), _display(open_total, INT, None)),
    ]
    return figures, tables


def _cancellations(scope, full=None):
    period, centers = scope.period, scope.centers
    by_reason = reports.cancellations_by_reason(period, centers)
    for row in by_reason:
        row["actor_label"], row["reason_label"] = _actor(row["actor"]), _reason(row["reason"])
    over_time = reports.cancellations_over_time(period, centers)
    by_center = reports.cancellation_rate_by_center(period, centers)
    by_model = reports.cancellation_rate_by_model(period, centers)
    for row in by_model:
        row["model_label"] = _model(row["brand"], row["model"])
    actors = {actor: _actor(actor) for actor in reports.ACTORS}
    actor_columns = [Column(f"by_{a}", gettext("By %(actor)s") % {"actor": label.lower()}, INT) for a, label in actors.items()]
    charted_models = by_model[:15]
    tables = [
        Table(
            "by_reason",
            gettext("By who cancelled, and why"),
            [
                Column("actor_label", gettext("Cancelled by")),
                Column("reason_label", gettext("Reason")),
                Column("count", gettext("Tickets"), INT),
                Column("share", gettext("Share"), SHARE, gettext("Share (%)")),
            ],
            by_reason,
            Chart(
                "hbar", "chart-cancel-reason", gettext("Cancellations by reason"),
                gettext("Bar chart of the tickets cancelled, %(scope)s.") % {"scope": scope.description},
                [f"{row['actor_label']} · {row['reason_label']}" for row in by_reason], [Series(gettext("Tickets"), [row["count"] for row in by_reason])],
            ),
            description=gettext("Tickets cancelled in the period."),
        ),
        Table(
            "over_time",
            gettext("Over time"),
            [Column("bucket", gettext("Period"), BUCKET)] + [Column(a, label, INT) for a, label in actors.items()] + [Column("total", gettext("Total"), INT)],
            over_time,
            Chart(
                "columns", "chart-cancel-time", gettext("Cancellations over time, by who cancelled"),
                gettext("Stacked column chart per %(grain)s, %(scope)s.") % {"grain": _grain_name(period.grain), "scope": scope.description},
                [bucket_label(row["bucket"], period.grain, short=True) for row in over_time],
                [Series(label, [row[a] for row in over_time]) for a, label in actors.items()],
                stacked=True,
            ),
        ),
        Table(
            "by_center",
            gettext("Cancellation rate per service center"),
            [Column("center", gettext("Service center")), Column("opened", gettext("Opened"), INT), Column("cancelled", gettext("Cancelled"), INT)]
            + actor_columns + [Column("rate", gettext("Rate"), SHARE, gettext("Rate (%)"))],
            by_center,
            Chart(
                "hbar", "chart-cancel-center", gettext("Cancellation rate per service center"),
                gettext("Bar chart in percent of the tickets opened, %(scope)s.") % {"scope": scope.description},
                [row["center"] for row in by_center], [Series(gettext("Rate"), [_percent(row["rate"]) for row in by_center])],
                decimals=1, unit=" %",
            ),
            description=gettext("Of the tickets opened in the period, the share cancelled so far."),
        ),
        Table(
            "by_model",
            gettext("Cancellation rate per device model"),
            [Column("model_label", gettext("Device model")), Column("opened", gettext("Opened"), INT), Column("cancelled", gettext("Cancelled"), INT)]
            + actor_columns + [Column("rate", gettext("Rate"), SHARE, gettext("Rate (%)"))],
            by_model,
            Chart(
                "hbar", "chart-cancel-model", gettext("Cancellation rate per device model"),
                gettext("Bar chart in percent of the tickets opened, the %(n)s models with the most cancellations, %(scope)s.")
                % {"n": len(charted_models), "scope": scope.description},
                [row["model_label"] for row in charted_models], [Series(gettext("Rate"), [_percent(row["rate"]) for row in charted_models])],
                decimals=1, unit=" %",
            ),
            description=gettext("Of the tickets opened in the period, the share cancelled so far; most cancellations first."),
        ),
    ]
    cancelled = sum(row["count"] for row in by_reason)
    opened = sum(row["opened"] for row in by_center)
    figures = [(gettext("Cancelled"), _display(cancelled, INT, None))]
    for actor, label in actors.items():
        count = sum(row["count"] for row in by_reason if row["actor"] == actor)
        figures.append((gettext("By %(actor)s") % {"actor": label.lower()}, _display(reports._share(count, cancelled), SHARE, None)))
    figures.append(
        (gettext("Of the tickets opened"), _display(reports._share(sum(r["cancelled"] for r in by_center), opened), SHARE, None))
    )
    return figures, tables


def _faults(scope, full=None):
    period, centers = scope.period, scope.centers
    by_model = reports.top_faults_by_model(period, centers)
    for row in by_model:
        row["model_label"], row["fault_label"] = _model(row["brand"], row["model"]), _fault(row)
    by_brand = reports.top_faults_by_brand(period, centers)
    for row in by_brand:
        row["brand_label"], row["fault_label"] = _brand(row["brand"]), _fault(row)
    repeats_by_model = reports.repeat_repairs_by_model(period, centers)
    for row in repeats_by_model:
        row["model_label"] = _model(row["brand"], row["model"])
    repeats = reports.repeat_repairs(period, centers, limit=_limit(full, "repeats"))
    for row in repeats:
        row["model_label"] = _model(row["brand"], row["model"])
        row["days_since"] = (row["created_at"] - row["previous_completed_at"]).total_seconds()
    failures = reports.test_failures_by_center(period, centers)
    # The charts draw each model's (brand's) most common fault, the largest first; the tables have the top three.
    top_models = sorted((row for row in by_model if row["rank"] == 1), key=lambda row: -row["count"])[:15]
    top_brands = sorted((row for row in by_brand if row["rank"] == 1), key=lambda row: -row["count"])[:15]
    with_repeats = [row for row in repeats_by_model if row["repeats"]][:15]
    days = reports.repeat_repair_days()
    tables = [
        Table(
            "by_model",
            gettext("Top faults per device model"),
            [
                Column("model_label", gettext("Device model")),
                Column("rank", gettext("Rank"), INT),
                Column("fault_label", gettext("Fault category")),
                Column("count", gettext("Tickets"), INT),
            ],
            by_model,
            Chart(
                "hbar", "chart-faults-model", gettext("The most common fault of each device model"),
                gettext("Bar chart of tickets opened, the most common fault of the %(n)s models with the most tickets of one fault, %(scope)s.")
                % {"n": len(top_models), "scope": scope.description},
                [f"{row['model_label']} · {row['fault_label']}" for row in top_models], [Series(gettext("Tickets"), [row["count"] for row in top_models])],
            ),
            description=gettext("Tickets opened in the period: the three most common fault categories of each model."),
        ),
        Table(
            "by_brand",
            gettext("Top faults per brand"),
            [
                Column("brand_label", gettext("Brand")),
                Column("rank", gettext("Rank"), INT),
                Column("fault_label", gettext("Fault category")),
                Column("count", gettext("Tickets"), INT),
            ],
            by_brand,
            Chart(
                "hbar", "chart-faults-brand", gettext("The most common fault of each brand"),
                gettext("Bar chart of tickets opened, %(scope)s.") % {"scope": scope.description},
                [f"{row['brand_label']} · {row['fault_label']}" for row in top_brands], [Series(gettext("Tickets"), [row["count"] for row in top_brands])],
            ),
        ),
        Table(
            "repeats_by_model",
            gettext("Repeat repairs per device model"),
            [
                Column("model_label", gettext("Device model")),
                Column("tickets", gettext("Tickets opened"), INT),
                Column("repeats", gettext("Back within %(days)s days") % {"days": days}, INT),
                Column("rate", gettext("Rate"), SHARE, gettext("Rate (%)")),
            ],
            repeats_by_model,
            Chart(
                "hbar", "chart-faults-repeats", gettext("Repeat repairs per device model"),
                gettext("Bar chart in percent of the tickets opened, models with repeat repairs, %(scope)s.") % {"scope": scope.description},
                [row["model_label"] for row in with_repeats], [Series(gettext("Rate"), [_percent(row["rate"]) for row in with_repeats])],
                decimals=1, unit=" %",
            ),
            description=gettext(
                "A ticket is a repeat repair when the same IMEI or serial number had a repair completed "
                "(at any center) at most %(days)s days before it was opened."
            ) % {"days": days},
        ),
        Table(
            "repeats",
            gettext("Repeat repairs"),
            [
                Column("number", gettext("Ticket"), TICKET),
                Column("center", gettext("Service center")),
                Column("model_label", gettext("Device model")),
                Column("imei_or_serial", gettext("IMEI or serial number")),
                Column("created_at", gettext("Opened"), DATETIME),
                Column("previous_number", gettext("Earlier ticket"), TICKET),
                Column("previous_completed_at", gettext("Earlier repair completed"), DATETIME),
                Column("days_since", gettext("Back after"), DURATION, gettext("Back after (hours)")),
            ],
            repeats,
            total=sum(row["repeats"] for row in repeats_by_model),
            description=gettext("Newest first."),
        ),
        Table(
            "test_failures",
            gettext("Test failures per service center"),
            [
                Column("center", gettext("Service center")),
                Column("tested", gettext("Tickets tested"), INT),
                Column("failed", gettext("Failed at least once"), INT),
                Column("failures", gettext("Failures"), INT),
                Column("rate", gettext("Rate"), SHARE, gettext("Rate (%)")),
            ],
            failures,
            Chart(
                "hbar", "chart-faults-testing", gettext("Share of tested tickets that failed testing"),
                gettext("Bar chart in percent, per service center, %(scope)s.") % {"scope": scope.description},
                [row["center"] for row in failures], [Series(gettext("Rate"), [_percent(row["rate"]) for row in failures])],
                decimals=1, unit=" %",
            ),
            description=gettext("Tickets that left testing in the period (passed or failed); a failure sends the ticket back from testing to repairing."),
        ),
    ]
    opened = sum(row["tickets"] for row in repeats_by_model)
    repeat_count = sum(row["repeats"] for row in repeats_by_model)
    tested = sum(row["tested"] for row in failures)
    figures = [
        (gettext("Tickets opened"), _display(opened, INT, None)),
        (gettext("Repeat repairs"), _display(repeat_count, INT, None)),
        (gettext("Repeat rate"), _display(reports._share(repeat_count, opened), SHARE, None)),
        (gettext("Failed testing"), _display(reports._share(sum(r["failed"] for r in failures), tested), SHARE, None)),
    ]
    return figures, tables


def _satisfaction(scope, full=None):
    period, centers = scope.period, scope.centers
    summary = reports.rating_summary(period, centers)
    distribution = reports.rating_distribution(period, centers)
    for row in distribution:
        row["stars_label"] = ngettext("%(n)s star", "%(n)s stars", row["stars"]) % {"n": row["stars"]}
    by_center = reports.ratings_by_center(period, centers)
    over_time = reports.ratings_over_time(period, centers)
    comments = reports.latest_comments(period, centers, limit=_limit(full, "comments", COMMENTS_ON_PAGE))
    for row in comments:
        row["published"] = gettext("yes") if row["publish"] else gettext("no")
    rating_columns = [
        Column("count", gettext("Ratings"), INT),
        Column("average", gettext("Average stars"), AVERAGE),
        Column("csat", gettext("CSAT"), SHARE, gettext("CSAT (%)")),
    ]
    tables = [
        Table(
            "distribution",
            gettext("Ratings by stars"),
            [Column("stars_label", gettext("Stars")), Column("count", gettext("Ratings"), INT), Column("share", gettext("Share"), SHARE, gettext("Share (%)"))],
            distribution,
            Chart(
                "histogram", "chart-satisfaction-stars", gettext("Ratings by number of stars"),
                gettext("Histogram of the ratings given, %(scope)s.") % {"scope": scope.description},
                [row["stars_label"] for row in distribution], [Series(gettext("Ratings"), [row["count"] for row in distribution])],
            ),
            description=gettext("Ratings given in the period. CSAT is the share of 4 and 5 stars."),
        ),
        Table(
            "by_center",
            gettext("Per service center"),
            [Column("center", gettext("Service center"))] + rating_columns,
            by_center,
            Chart(
                "hbar", "chart-satisfaction-center", gettext("CSAT per service center"),
                gettext("Bar chart in percent of ratings with 4 or 5 stars, %(scope)s.") % {"scope": scope.description},
                [row["center"] for row in by_center], [Series(gettext("CSAT"), [_percent(row["csat"]) for row in by_center])],
                decimals=1, unit=" %", max_value=100,
            ),
        ),
        Table(
            "over_time",
            gettext("Over time"),
            [Column("bucket", gettext("Period"), BUCKET)] + rating_columns,
            over_time,
            Chart(
                "line", "chart-satisfaction-time", gettext("CSAT over time"),
                gettext("Line chart in percent per %(grain)s; periods without ratings are gaps, %(scope)s.")
                % {"grain": _grain_name(period.grain), "scope": scope.description},
                [bucket_label(row["bucket"], period.grain, short=True) for row in over_time],
                [Series(gettext("CSAT"), [_percent(row["csat"]) for row in over_time])],
                decimals=0, unit=" %", max_value=100,
            ),
        ),
        Table(
            "comments",
            gettext("Latest comments"),
            [
                Column("created_at", gettext("Rated"), DATETIME),
                Column("number", gettext("Ticket"), TICKET),
                Column("center", gettext("Service center")),
                Column("stars", gettext("Stars"), INT),
                Column("published", gettext("May be published")),
                Column("comment", gettext("Comment")),
            ],
            comments,
            total=None,
            description=gettext("Newest first, whether or not the customer agreed to publish them; the CSV file has every comment of the period."),
        ),
    ]
    figures = [
        (gettext("Ratings"), _display(summary["count"], INT, None)),
        (gettext("Average stars"), _display(summary["average"], AVERAGE, None)),
        (gettext("CSAT"), _display(summary["csat"], SHARE, None)),
    ]
    return figures, tables


def _grain_name(grain):
    return {reports.DAY: gettext("day"), reports.WEEK: gettext("week"), reports.MONTH: gettext("month")}[grain]


REPORTS = {
    "volume": (_("Volume"), _("Tickets opened, completed and cancelled over time; open tickets per stage and their age."), _volume),
    "time": (_("Time"), _("Median and 90th-percentile time in each stage and end to end; tickets over their target."), _time),
    "cancellations": (_("Cancellations"), _("Who cancels and why, over time; rates per service center and device model."), _cancellations),
    "faults": (_("Faults"), _("Top faults per device model and brand; repeat repairs; test failures per center."), _faults),
    "satisfaction": (_("Satisfaction"), _("Ratings, average stars and CSAT per center and over time; the latest comments."), _satisfaction),
}


# --- views -------------------------------------------------------------------------------------


def _require_permission(request):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def _context(request, site, **extra):
    return {**site.each_context(request), **extra}


def index_view(site):
    @require_safe
    def index(request):
        _require_permission(request)
        return _index(request, site)

    return index


def _index(request, site):
    links = [
        {"name": name, "title": title, "description": description, "url": reverse(f"admin:reports_{name}")}
        for name, (title, description, _build) in REPORTS.items()
    ]
    return TemplateResponse(
        request, "admin/reports/index.html", _context(request, site, title=gettext("Reports"), reports=links)
    )


def report_view(name, site):
    title, description, build = REPORTS[name]

    @require_safe
    def view(request):
        _require_permission(request)
        centers = _visible_centers(request.user)
        sees_all = request.user.is_superuser or request.user.sees_all_centers
        all_label = gettext("All service centers") if sees_all else gettext("All my service centers")
        form = ReportFilterForm(request.GET, centers=centers, all_label=all_label)
        context = _context(
            request, site, title=str(title), report_name=name, description=description, form=form,
            reports_url=reverse("admin:reports"),
        )
        if not form.is_valid():
            return TemplateResponse(request, "admin/reports/report.html", context, status=400)
        data = form.cleaned_data
        chosen = data["center"]
        names = {center.pk: center.name for center in centers}
        scope = Scope(
            period=reports.Period(data["start"], data["end"], data["grain"]),
            centers=[chosen] if chosen else (None if sees_all else sorted(names)),
            center_name=names[chosen] if chosen else all_label,
            now=timezone.now(),
        )
        wants_csv = request.GET.get("format") == "csv"
        figures, tables = build(scope, full=request.GET.get("table") if wants_csv else None)
        for table in tables:
            table.grain = scope.period.grain
        if wants_csv:
            wanted = request.GET.get("table")
            table = next((t for t in tables if t.key == wanted), None)
            if table is None:
                return HttpResponse(gettext("Unknown table."), status=404, content_type="text/plain; charset=utf-8")
            return _csv(name, scope, table)
        query = {"start": data["start"].isoformat(), "end": data["end"].isoformat()}
        if chosen:
            query["center"] = chosen
        if request.GET.get("grain"):
            query["grain"] = data["grain"]
        ticket_list = reverse("admin:tickets_ticket_changelist")
        for table in tables:
            table.csv_url = "?" + urlencode({**query, "format": "csv", "table": table.key})
            table.cells = [
                [
                    {
                        "text": _display(row.get(column.key), column.kind, table.grain),
                        "numeric": column.numeric,
                        "url": f"{ticket_list}?{urlencode({'q': row[column.key]})}" if column.kind == TICKET and row.get(column.key) else "",
                    }
                    for column in table.columns
                ]
                for row in table.rows
            ]
        context.update(scope=scope, figures=figures, tables=tables, time_zone=settings.TIME_ZONE)
        return TemplateResponse(request, "admin/reports/report.html", context)

    view.__name__ = f"{name}_report"
    return view


def _csv(name, scope, table):
    filename = f"{name}-{table.key}-{scope.period.start.isoformat()}-{scope.period.end.isoformat()}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")  # so that spreadsheet programs read UTF-8 (Chinese names) correctly
    writer = csv.writer(response)
    writer.writerow([column.csv_label or column.label for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_value(row.get(column.key), column.kind) for column in table.columns])
    return response


def urls(site):
    return [
        path("reports/", site.admin_view(index_view(site)), name="reports"),
        *[path(f"reports/{name}/", site.admin_view(report_view(name, site)), name=f"reports_{name}") for name in REPORTS],
    ]


def install(site):
    """Serve the reports under ``/admin/reports/`` of ``site``, ahead of the admin's own catch-all URL."""
    original = site.get_urls

    def get_urls():
        return [*urls(site), *original()]

    site.get_urls = get_urls
