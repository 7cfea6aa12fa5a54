"""The staff back office: tickets, their history, photos and conversation, and the catalogues.

Staff see the tickets of their own service centers (supervisors all of them):
every ticket query here starts from ``Ticket.objects.for_staff(request.user)``,
so a ticket of another center is simply not found. The stage is never a form
field; it changes only through the "Move this ticket" panel, which posts to
``transition_view`` and from there to ``Ticket.perform()``.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from django_fsm import ConcurrentTransition

from accounts.credit import credit_for

from . import numbers, tracking
from .forms import (
    DETAILED_ACTIONS,
    TICKET_WARRANTY_FIELDS,
    AttachmentAdminForm,
    ContactRequestAdminForm,
    TicketAdminForm,
    TicketWarrantyAdminForm,
    TransitionForm,
)
from .models import (
    ACTION_LABELS,
    CANCEL_REASONS_BY_ACTOR,
    ActorKind,
    Attachment,
    ContactRequest,
    DeviceModel,
    FaultCategory,
    HandoverCheck,
    Notification,
    Rating,
    ServiceCenter,
    StageEvent,
    Status,
    Ticket,
    TicketChanged,
    TransitionNotAllowed,
)

# --- Finding tickets ------------------------------------------------------------------


class OwnServiceCenterFilter(admin.RelatedFieldListFilter):
    """Offers only the centers whose tickets the user sees."""

    def field_choices(self, field, request, model_admin):
        centers = ServiceCenter.objects.all()
        user = request.user
        if not (user.is_superuser or user.sees_all_centers):
            centers = centers.filter(staff=user)
        return [(center.pk, str(center)) for center in centers.order_by("name")]


# --- Inlines on the ticket's page ---------------------------------------------------------


class ReadOnlyInline(admin.TabularInline):
    """A record staff read on the ticket's page but never add, change or delete here."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StageEventInline(ReadOnlyInline):
    model = StageEvent
    verbose_name = _("stage change")
    verbose_name_plural = _("stage history")
    fields = ("at", "from_status", "to_status", "actor_name", "actor_kind", "public_note", "internal_note")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("by"))
    def actor_name(self, event):
        if event.actor is None:
            return "—"
        return event.actor.full_name or event.actor.email


class AttachmentInline(admin.TabularInline):
    """The ticket's photos; staff may add one (TicketAdmin.save_formset stores it), never change or delete."""

    model = Attachment
    form = AttachmentAdminForm
    extra = 0
    can_delete = False
    fields = ("kind", "upload", "preview", "dimensions", "size", "uploaded_at", "uploaded_by_name")
    readonly_fields = ("preview", "dimensions", "size", "uploaded_at", "uploaded_by_name")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("uploaded_by")

    def upload(self, attachment):
        # A photo already stored shows nothing in the "add a photo" column.
        return ""

    @admin.display(description=_("photo"))
    def preview(self, attachment):
        if attachment.pk is None:
            return ""
        return format_html(
            '<a href="{}" class="ticket-photo"><img src="{}" alt="{}" class="ticket-photo__thumbnail"></a>',
            reverse("tickets:attachment", args=[attachment.public_id]),
            reverse("tickets:attachment_thumbnail", args=[attachment.public_id]),
            attachment.get_kind_display(),
        )

    @admin.display(description=_("pixels"))
    def dimensions(self, attachment):
        return f"{attachment.width} × {attachment.height}" if attachment.pk else ""

    @admin.display(description=_("size"))
    def size(self, attachment):
        return filesizeformat(attachment.byte_size) if attachment.pk else ""

    @admin.display(description=_("uploaded by"))
    def uploaded_by_name(self, attachment):
        user = attachment.uploaded_by
        return (user.full_name or user.email) if user else "—"


class ContactRequestInline(admin.TabularInline):
    """Staff ask the customer something; a request already sent is not edited."""

    model = ContactRequest
    form = ContactRequestAdminForm
    extra = 0
    can_delete = False
    fields = ("kind", "message", "respond_by", "created_by_name", "created_at", "response", "responded_at")
    readonly_fields = ("created_by_name", "created_at", "response", "responded_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def has_add_permission(self, request, obj=None):
        # Only an open ticket can still be asked something (an answer could no longer change anything).
        return obj is not None and obj.is_open and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("asked by"))
    def created_by_name(self, contact_request):
        user = contact_request.created_by
        return (user.full_name or user.email) if user else "—"


class RatingInline(ReadOnlyInline):
    model = Rating
    fields = ("stars", "comment", "publish", "created_at")
    readonly_fields = fields


class NotificationInline(ReadOnlyInline):
    model = Notification
    fields = ("created_at", "channel", "kind", "subject", "status", "sent_at", "error")
    readonly_fields = fields


# --- Tickets ------------------------------------------------------------------------------


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    form = TicketAdminForm
    list_display = ("number", "stage", "service_center", "device", "age", "warranty_status", "created")
    list_filter = (
        "status",
        ("service_center", OwnServiceCenterFilter),
        "warranty_status",
        "created_at",
    )
    list_select_related = ("service_center", "device_model")
    # The search itself is get_search_results(); this only switches the box on.
    search_fields = ("number",)
    search_help_text = _(
        "Ticket number, IMEI or serial number, phone number, email address, or part of the contact's name."
    )
    ordering = ("-created_at", "-pk")
    inlines = (StageEventInline, AttachmentInline, ContactRequestInline, RatingInline, NotificationInline)
    change_form_template = "admin/tickets/ticket/change_form.html"
    change_list_template = "admin/tickets/ticket/change_list.html"

    # Shown, never edited here. Transitions (the "Move this ticket" panel) write them.
    readonly_fields = (
        "number",
        "status",
        "service_center",
        "customer_account",
        "customer_credit",
        "tracking_link",
        "created_at",
        "updated_at",
        "age",
        "warranty_expires",
        "warranty_confirmed_by",
        "warranty_confirmed_at",
        "arrival_method",
        "return_method",
        "pickup_code_hint",
        "received_at",
        "ready_at",
        "completed_at",
        "cancelled_at",
        "device_returned_at",
        "cancelled_by_kind",
        "cancel_reason",
        "cancel_note",
        "handed_over_by",
        "handover_check",
        "return_carrier",
        "return_tracking_number",
        "resubmitted_from",
    )
    # Loaded with the ticket on its page, so no read-only field costs a query of its own.
    change_select_related = (
        "service_center",
        "device_model",
        "fault_category",
        "customer",
        "warranty_confirmed_by",
        "handed_over_by",
        "resubmitted_from",
    )

    # --- who sees and does what ---------------------------------------------------------

    def get_queryset(self, request):
        return Ticket.objects.for_staff(request.user)

    def get_object(self, request, object_id, from_field=None):
        queryset = self.get_queryset(request).select_related(*self.change_select_related)
        field = Ticket._meta.pk if from_field is None else Ticket._meta.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (Ticket.DoesNotExist, ValidationError, ValueError):
            return None

    def has_add_permission(self, request):
        # Customers open tickets on the website and clerks at the counter terminal.
        return False

    def has_delete_permission(self, request, obj=None):
        # A ticket and its history are kept: cancel it instead.
        return False

    def get_list_display(self, request):
        user = request.user
        if not (user.is_superuser or user.sees_all_centers) and len(user.center_ids) <= 1:
            # Everything listed is from the user's one center: give the room to the other columns.
            return tuple(name for name in self.list_display if name != "service_center")
        return self.list_display

    def get_search_results(self, request, queryset, search_term):
        # Exact look-ups on indexed columns instead of icontains across every search field.
        return queryset.search(search_term), False

    @staticmethod
    def may_confirm_warranty(request):
        return request.user.has_perm("tickets.confirm_warranty")

    # --- the change page ------------------------------------------------------------------

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        if obj is None or obj.status != Status.COMPLETED:
            # Only a completed repair can be rated.
            inlines = [inline for inline in inlines if not isinstance(inline, RatingInline)]
        return inlines

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self.may_confirm_warranty(request):
            kwargs["form"] = TicketWarrantyAdminForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if self.may_confirm_warranty(request):
            return self.readonly_fields
        return self.readonly_fields + TICKET_WARRANTY_FIELDS

    def get_fieldsets(self, request, obj=None):
        warranty = ["purchase_date", "warranty_expires", "warranty_status"]
        if self.may_confirm_warranty(request):
            warranty.append("warranty_confirm")
        warranty += ["warranty_confirmed_by", "warranty_confirmed_at"]
        fieldsets = [
            (
                None,
                {
                    "fields": (
                        "number",
                        "status",
                        "service_center",
                        "customer_account",
                        "customer_credit",
                        "tracking_link",
                        "created_at",
                        "age",
                    )
                },
            ),
            (_("Contact"), {"fields": ("contact_name", "contact_phone", "contact_email")}),
            (_("Device"), {"fields": ("device_model", "device_other", "imei_or_serial", "os_version")}),
            (_("Fault"), {"fields": ("fault_category", "symptom_description", "fault_frequency", "condition_notes")}),
            (
                _("Warranty"),
                {
                    "fields": warranty,
                    "description": _(
                        "Only staff who may confirm the warranty (technicians, supervisors) change the purchase "
                        "date and the status, after checking the receipt or the warranty card."
                    ),
                },
            ),
            (
                _("Arrival and return"),
                {"fields": ("arrival_method", "return_method", "return_address", "pickup_code_hint")},
            ),
            (
                _("Milestones"),
                {"fields": ("received_at", "ready_at", "completed_at", "cancelled_at", "device_returned_at")},
            ),
        ]
        if obj is not None and obj.status == Status.CANCELLED:
            fieldsets.append((_("Cancellation"), {"fields": ("cancelled_by_kind", "cancel_reason", "cancel_note")}))
        if obj is not None and (obj.handed_over_by_id or obj.handover_check or obj.return_carrier):
            fieldsets.append(
                (
                    _("Hand-over and shipping"),
                    {"fields": ("handed_over_by", "handover_check", "return_carrier", "return_tracking_number")},
                )
            )
        if obj is not None and obj.resubmitted_from_id:
            fieldsets.append((_("Earlier ticket"), {"fields": ("resubmitted_from",)}))
        fieldsets.append((_("Record"), {"fields": ("updated_at",), "classes": ("collapse",)}))
        return fieldsets

    def save_model(self, request, obj, form, change):
        """Save only what the form changed; a warranty decision goes through confirm_warranty()."""
        warranty = getattr(form, "warranty_to_confirm", None)
        model_fields = {field.name for field in Ticket._meta.concrete_fields}
        fields = [name for name in form.changed_data if name in model_fields and name != "warranty_status"]
        if "warranty_status" in form.changed_data:
            obj.warranty_status = form.initial["warranty_status"]
        if fields:
            obj.save(update_fields=[*fields, "updated_at"])
        if warranty is not None:
            obj.confirm_warranty(warranty, by=request.user)

    def save_formset(self, request, form, formset, change):
        """New photos and contact requests go through their model's own door; nothing else is saved here.

        Existing rows of every inline are read-only, so only added rows count.
        """
        formset.save(commit=False)  # sets the lists construct_change_message() reads
        added = [row for row in formset.extra_forms if row.has_changed()]
        if formset.model is Attachment:
            formset.new_objects = [
                Attachment.add(formset.instance, row.cleaned_data["kind"], row.processed, by=request.user)
                for row in added
            ]
        elif formset.model is ContactRequest:
            formset.new_objects = [
                ContactRequest.ask(
                    formset.instance,
                    by=request.user,
                    kind=row.cleaned_data["kind"],
                    message=row.cleaned_data["message"],
                    respond_by=row.cleaned_data["respond_by"],
                )
                for row in added
            ]
        else:
            formset.new_objects = []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["ticket_moves"] = self._transition_panel(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _transition_panel(self, request, ticket):
        actions = ticket.available_actions(request.user)
        return {
            "url": reverse("admin:tickets_ticket_transition", args=[ticket.pk]),
            "expected_status": ticket.status,
            "stage": ticket.get_status_display(),
            "simple": [(action, ACTION_LABELS[action]) for action in actions if action not in DETAILED_ACTIONS],
            "hand_over": "hand_over" in actions,
            "ship_back": "ship_back" in actions,
            "cancel": "cancel" in actions,
            "labels": {action: ACTION_LABELS[action] for action in DETAILED_ACTIONS},
            "cancel_reasons": [(r.value, r.label) for r in CANCEL_REASONS_BY_ACTOR[ActorKind.STAFF]],
            "handover_checks": HandoverCheck.choices,
            "is_open": ticket.is_open,
        }

    # --- read-only fields -------------------------------------------------------------------

    @admin.display(description=_("stage"), ordering="status")
    def stage(self, ticket):
        return format_html('<span class="stage stage--{}">{}</span>', ticket.status, ticket.get_status_display())

    @admin.display(description=_("device"), ordering="device_model__name")
    def device(self, ticket):
        return ticket.device_label

    @admin.display(description=_("age"), ordering="-created_at")
    def age(self, ticket):
        """How long the ticket has been open (or was, once closed)."""
        until = ticket.completed_at or ticket.cancelled_at
        return timesince(ticket.created_at, until, depth=1)

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, ticket):
        return date_format(timezone.localtime(ticket.created_at), "SHORT_DATE_FORMAT")

    @admin.display(description=_("customer"))
    def customer_account(self, ticket):
        return str(ticket.customer)

    @admin.display(description=_("service credit"))
    def customer_credit(self, ticket):
        credit = credit_for(ticket.customer)
        summary = format_html(
            "<strong>{}</strong> · {} / 100", credit.level_label, credit.score
        )
        if not credit.counted:
            return summary
        reasons = format_html_join(
            "", "<li>{} · {} · {} (−{})</li>",
            ((e.number, date_format(timezone.localtime(e.cancelled_at), "SHORT_DATE_FORMAT"), e.reason, e.penalty) for e in credit.counted),
        )
        return format_html("{}<ul class=\"credit-reasons\">{}</ul>", summary, reasons)

    @admin.display(description=_("customer's tracking link"))
    def tracking_link(self, ticket):
        try:
            url = tracking.tracking_url(ticket)
        except NoReverseMatch:  # the tracking pages are not installed
            return "—"
        return format_html('<a href="{}">{}</a>', url, url)

    @admin.display(description=_("warranty ends"))
    def warranty_expires(self, ticket):
        expires = ticket.warranty_expires_on
        if expires is None:
            return gettext("Unknown: no purchase date or no catalogue model.")
        return expires

    @admin.display(description=_("pickup code"))
    def pickup_code_hint(self, ticket):
        return gettext("Hidden")

    # --- moving a ticket --------------------------------------------------------------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ConcurrentTransition:
            # Someone moved the ticket between this page loading and its saving:
            # nothing was saved (the admin's transaction rolled back).
            messages.error(
                request,
                gettext("This ticket changed stage while you were editing it. Nothing was saved: check it and edit again."),
            )
            return redirect(reverse("admin:tickets_ticket_change", args=[object_id]))

    def get_urls(self):
        return [
            path(
                "<path:object_id>/transition/",
                self.admin_site.admin_view(self.transition_view),
                name="tickets_ticket_transition",
            ),
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def transition_view(self, request, object_id):
        """Take one action on a ticket as the signed-in staff member, then go back to its page."""
        ticket = self.get_object(request, unquote(object_id))
        if ticket is None or not self.has_view_or_change_permission(request, ticket):
            raise Http404
        return _transition(request, ticket)


def _transition(request, ticket):
    """Check the posted action against the stage the user saw, then go through Ticket.perform()."""
    back = redirect("admin:tickets_ticket_change", ticket.pk)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        problems = [f"{form.fields[name].label}: {' '.join(errors)}" for name, errors in form.errors.items()]
        messages.error(request, gettext("Nothing was changed. %(problems)s") % {"problems": " ".join(problems)})
        return back
    data = form.cleaned_data
    if ticket.status != data["expected_status"]:
        messages.error(
            request,
            gettext("This ticket changed since you opened it: it is now “%(stage)s”. Check it and try again.")
            % {"stage": ticket.get_status_display()},
        )
        return back
    action = data["action"]
    try:
        ticket.perform(
            action,
            by=request.user,
            public_note=data["public_note"],
            internal_note=data["internal_note"],
            **form.details(),
        )
    except (TransitionNotAllowed, TicketChanged) as error:
        messages.error(request, str(error))
    except PermissionDenied as error:
        messages.error(request, str(error) or gettext("You may not do this on this ticket."))
    except ValidationError as error:
        messages.error(
            request,
            gettext("“%(action)s” was not done: %(problems)s")
            % {"action": ACTION_LABELS[action], "problems": " ".join(error.messages)},
        )
    else:
        messages.success(
            request,
            gettext("Ticket %(number)s is now “%(stage)s”.")
            % {"number": ticket.number, "stage": ticket.get_status_display()},
        )
    return back


# --- Records staff look up across tickets -----------------------------------------------------


class ScopedReadOnlyAdmin(admin.ModelAdmin):
    """A list of one kind of ticket record, limited to the tickets the user sees; never edited."""

    def get_queryset(self, request):
        return super().get_queryset(request).filter(ticket__in=Ticket.objects.for_staff(request.user))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        number = numbers.parse(search_term)
        if number:
            return queryset.filter(ticket__number=number), False
        if "@" in search_term:
            return queryset.filter(ticket__contact_email__iexact=search_term.strip()), False
        return queryset.none() if search_term.strip() else queryset, False

    @admin.display(description=_("ticket"), ordering="ticket__number")
    def ticket_link(self, record):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:tickets_ticket_change", args=[record.ticket_id]), record.ticket.number
        )


@admin.register(Notification)
class NotificationAdmin(ScopedReadOnlyAdmin):
    """What was sent to a customer and whether it went out: the answer to "I never got a message"."""

    list_display = (
        "created_at",
        "ticket_link",
        "recipient",
        "channel",
        "kind",
        "subject",
        "status",
        "sent_at",
        "error",
    )
    list_filter = ("status", "channel", "kind", "created_at")
    list_select_related = ("ticket", "recipient")
    search_fields = ("ticket__number",)
    search_help_text = _("Ticket number, or the contact's email address.")
    date_hierarchy = "created_at"
    fields = (
        "ticket",
        "recipient",
        "kind",
        "channel",
        "subject",
        "message",
        "status",
        "created_at",
        "sent_at",
        "error",
        "read_at",
    )
    readonly_fields = fields

    @admin.display(description=_("message"))
    def message(self, notification):
        # The "ready for pickup" message carries the pickup code, which the back office never shows.
        code = notification.ticket.pickup_code
        return notification.body.replace(code, "••••••") if code else notification.body


@admin.register(StageEvent)
class StageEventAdmin(ScopedReadOnlyAdmin):
    """Every stage change in the user's centers: what happened today, and who did it."""

    list_display = ("at", "ticket_link", "from_status", "to_status", "actor", "actor_kind", "public_note")
    list_filter = ("to_status", "actor_kind", "at")
    list_select_related = ("ticket", "actor")
    search_fields = ("ticket__number",)
    search_help_text = _("Ticket number, or the contact's email address.")
    date_hierarchy = "at"
    ordering = ("-at", "-pk")
    fields = (
        "ticket",
        "at",
        "from_status",
        "to_status",
        "actor",
        "actor_kind",
        "public_note",
        "internal_note",
        "details",
    )
    readonly_fields = fields


# --- Catalogues ------------------------------------------------------------------------------


@admin.register(ServiceCenter)
class ServiceCenterAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "phone", "email", "opening_hours", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "code")
    ordering = ("name",)


@admin.register(DeviceModel)
class DeviceModelAdmin(admin.ModelAdmin):
    list_display = ("brand", "name", "category", "warranty_months", "is_active")
    list_filter = ("category", "is_active", "brand")
    search_fields = ("brand", "name")
    ordering = ("brand", "name")


@admin.register(FaultCategory)
class FaultCategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "name_zh_hans", "code", "sort_order", "is_active")
    list_filter = ("is_active",)
    search_fields = ("code", "name", "name_zh_hans")
    ordering = ("sort_order", "name")


# --- Reports (tickets/views/reports.py): /admin/reports/… -------------------------------------

from .views import reports as report_views  # noqa: E402

report_views.install(admin.site)
