"""The repair ticket, its lifecycle and the records around it.

Every stage change goes through one door, ``Ticket.perform(action, by=…)``:
in one database transaction it runs the django-fsm transition, saves the
ticket (ConcurrentTransitionMixin refuses the save when someone else moved
the ticket first), appends a StageEvent and registers the customer's
notification to be sent once the transaction commits. Nothing else assigns
``status``; ``protected=True`` makes sure.
"""

import threading
import uuid
from datetime import timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import (
    RETURN_VALUE,
    ConcurrentTransition,
    ConcurrentTransitionMixin,
    FSMField,
    can_proceed,
    has_transition_perm,
    transition,
)
from phonenumber_field.modelfields import PhoneNumberField

from . import imei, numbers


# --- Catalogues ----------------------------------------------------------------


class ServiceCenter(models.Model):
    name = models.CharField(_("name"), max_length=120)
    code = models.SlugField(_("code"), max_length=20, unique=True, help_text=_("Short code printed on receipts."))
    address = models.TextField(_("address"), blank=True)
    phone = PhoneNumberField(_("phone number"), blank=True)
    email = models.EmailField(_("email address"), blank=True)
    opening_hours = models.CharField(_("opening hours"), max_length=200, blank=True)
    is_active = models.BooleanField(_("accepts new tickets"), default=True)

    class Meta:
        verbose_name = _("service center")
        verbose_name_plural = _("service centers")
        ordering = ["name"]

    def __str__(self):
        return self.name


class DeviceCategory(models.TextChoices):
    PHONE = "phone", _("Phone")
    TABLET = "tablet", _("Tablet")
    LAPTOP = "laptop", _("Laptop")
    WEARABLE = "wearable", _("Wearable")
    OTHER = "other", _("Other")


class DeviceModel(models.Model):
    brand = models.CharField(_("brand"), max_length=60)
    name = models.CharField(_("model name"), max_length=120)
    category = models.CharField(_("category"), max_length=20, choices=DeviceCategory.choices)
    warranty_months = models.PositiveSmallIntegerField(
        _("warranty (months)"), default=12, validators=[MaxValueValidator(120)]
    )
    is_active = models.BooleanField(_("offered to customers"), default=True)

    class Meta:
        verbose_name = _("device model")
        verbose_name_plural = _("device models")
        ordering = ["brand", "name"]
        constraints = [models.UniqueConstraint(fields=["brand", "name"], name="unique_device_model")]

    def __str__(self):
        return f"{self.brand} {self.name}"


class FaultCategory(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name (English)"), max_length=120)
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=120, blank=True)
    description = models.TextField(_("description"), blank=True)
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=100)
    is_active = models.BooleanField(_("offered to customers"), default=True)

    class Meta:
        verbose_name = _("fault category")
        verbose_name_plural = _("fault categories")
        ordering = ["sort_order", "name"]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self):
        from django.utils.translation import get_language

        if (get_language() or "").lower().startswith("zh") and self.name_zh_hans:
            return self.name_zh_hans
        return self.name


# --- The lifecycle ---------------------------------------------------------------


class Status(models.TextChoices):
    SUBMITTED = "submitted", pgettext_lazy("stage", "Submitted")
    INSPECTING = "inspecting", pgettext_lazy("stage", "Inspecting")
    AWAITING_PARTS = "awaiting_parts", pgettext_lazy("stage", "Waiting for parts")
    REPAIRING = "repairing", pgettext_lazy("stage", "Repairing")
    TESTING = "testing", pgettext_lazy("stage", "Testing")
    READY_FOR_PICKUP = "ready_for_pickup", pgettext_lazy("stage", "Ready for pickup")
    AWAITING_RETURN_SHIPMENT = "awaiting_return_shipment", pgettext_lazy("stage", "Awaiting return shipment")
    COMPLETED = "completed", pgettext_lazy("stage", "Completed")
    CANCELLED = "cancelled", pgettext_lazy("stage", "Cancelled")


OPEN_STATUSES = frozenset(Status.values) - {Status.COMPLETED, Status.CANCELLED}
# Stages from which each kind of actor may cancel (DESIGN.md).
CUSTOMER_CANCELLABLE = (Status.SUBMITTED, Status.INSPECTING, Status.AWAITING_PARTS)
STAFF_CANCELLABLE = (Status.SUBMITTED, Status.INSPECTING, Status.AWAITING_PARTS, Status.REPAIRING)


class ActorKind(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    STAFF = "staff", _("Staff")
    SYSTEM = "system", _("System")


class CancelReason(models.TextChoices):
    # customer
    SOLVED_MYSELF = "solved_myself", _("I solved it myself")
    NO_LONGER_NEEDED = "no_longer_needed", _("I no longer need the repair")
    CUSTOMER_OTHER = "customer_other", _("Other reason")
    # staff
    OUT_OF_WARRANTY = "out_of_warranty", _("Out of warranty")
    DAMAGE_NOT_COVERED = "damage_not_covered", _("Damage not covered")
    INCOMPLETE_INFORMATION = "incomplete_information", _("Incomplete information")
    STAFF_OTHER = "staff_other", _("Other (staff)")
    # system
    NO_RESPONSE = "no_response", _("No response to a contact request")
    DEVICE_NOT_RECEIVED = "device_not_received", _("Device not received in time")


CANCEL_REASONS_BY_ACTOR = {
    ActorKind.CUSTOMER: (CancelReason.SOLVED_MYSELF, CancelReason.NO_LONGER_NEEDED, CancelReason.CUSTOMER_OTHER),
    ActorKind.STAFF: (
        CancelReason.OUT_OF_WARRANTY,
        CancelReason.DAMAGE_NOT_COVERED,
        CancelReason.INCOMPLETE_INFORMATION,
        CancelReason.STAFF_OTHER,
    ),
    ActorKind.SYSTEM: (CancelReason.NO_RESPONSE, CancelReason.DEVICE_NOT_RECEIVED),
}


class WarrantyStatus(models.TextChoices):
    IN_WARRANTY = "in_warranty", _("In warranty")
    OUT_OF_WARRANTY = "out_of_warranty", _("Out of warranty")
    UNKNOWN = "unknown", _("Unknown")


class ArrivalMethod(models.TextChoices):
    DROP_OFF = "drop_off", _("Drop-off at the service center")
    MAIL_IN = "mail_in", _("Mail-in")


class ReturnMethod(models.TextChoices):
    PICKUP = "pickup", _("Pickup at the service center")
    SHIP_BACK = "ship_back", _("Ship back to me")


class FaultFrequency(models.TextChoices):
    ALWAYS = "always", _("All the time")
    OFTEN = "often", _("Several times a day")
    SOMETIMES = "sometimes", _("Now and then")
    ONCE = "once", _("It happened once")


class HandoverCheck(models.TextChoices):
    PICKUP_CODE = "pickup_code", _("Pickup code")
    ID_DOCUMENT = "id_document", _("Identity document checked")


class StageChangeError(Exception):
    """A stage change that did not happen; ``str()`` is the message for the user."""


class TransitionNotAllowed(StageChangeError):
    pass


class TicketChanged(StageChangeError):
    """Someone else changed the ticket first: reload and decide again."""


def parse_phone(text):
    """The E.164 form of a phone number typed in national or international format, or None."""
    from phonenumber_field.phonenumber import PhoneNumber
    from phonenumbers import NumberParseException

    if sum(ch.isdigit() for ch in text) < 5:
        return None
    try:
        phone = PhoneNumber.from_string(text, region=settings.PHONENUMBER_DEFAULT_REGION)
    except NumberParseException:
        return None
    return phone.as_e164 if phone.is_valid() else None


def _staff_may(permission):
    """A django-fsm permission check: staff with ``permission`` working at the ticket's center."""

    def check(ticket, user):
        return bool(
            user.is_active
            and user.is_staff
            and user.has_perm(f"tickets.{permission}")
            and user.works_at(ticket.service_center_id)
        )

    check.__name__ = f"staff_may_{permission}"
    return check


def _may_cancel(ticket, user):
    if user.is_active and user.is_staff:
        return _staff_may("cancel_ticket")(ticket, user) and ticket.status in STAFF_CANCELLABLE
    return user.is_active and user.pk == ticket.customer_id and ticket.status in CUSTOMER_CANCELLABLE


class TicketQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def for_staff(self, user):
        """The tickets a staff member may see: their centers', or all for supervisors."""
        if not (user.is_active and user.is_staff):
            return self.none()
        if user.is_superuser or user.sees_all_centers:
            return self
        return self.filter(service_center__staff=user)

    def for_customer(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(customer=user)

    def search(self, text):
        """What staff type in a search box or scan: exact matches on indexed columns first.

        An email address matches the contact email. Otherwise the text is tried
        as a ticket number (typed forgivingly), an IMEI or serial and a phone
        number in any usual format, each an exact match; only when it is neither
        a ticket number nor a phone number is it also looked for in the
        contact's name (almost any word is a possible serial, so that one does
        not count).
        """
        text = " ".join((text or "").split())
        if not text:
            return self
        if "@" in text:
            return self.filter(contact_email=text.lower())
        query = Q(pk__in=[])  # matches nothing; each recognised form adds an alternative
        recognised = False
        number = numbers.parse(text)
        if number:
            query |= Q(number=number)
            recognised = True
        serial = imei.parse(text)
        if serial:
            query |= Q(imei_or_serial=serial)
        phone = parse_phone(text)
        if phone:
            query |= Q(contact_phone=phone)
            recognised = True
        if not recognised:
            query |= Q(contact_name__icontains=text)
        return self.filter(query)

    def for_device(self, text):
        """Every ticket of one device, by its IMEI or serial however it is typed; empty when it cannot be one."""
        serial = imei.parse(text)
        return self.filter(imei_or_serial=serial) if serial else self.none()

    def with_number(self, text):
        """Exact look-up by a typed ticket number; empty when it cannot be one."""
        number = numbers.parse(text)
        return self.filter(number=number) if number else self.none()

    def due_device_reminder(self, now):
        """Still waiting for the device, and the reminder is due (not yet sent, deadline not yet passed)."""
        arrival = timedelta(days=settings.DEVICE_ARRIVAL_DAYS)
        remind = arrival - timedelta(days=settings.DEVICE_REMINDER_DAYS_BEFORE)
        return self.filter(
            status=Status.SUBMITTED,
            device_reminder_sent_at__isnull=True,
            created_at__lte=now - remind,
            created_at__gt=now - arrival,
        )

    def overdue_for_device(self, now):
        """Still waiting for the device past the arrival deadline: to be cancelled."""
        return self.filter(status=Status.SUBMITTED, created_at__lte=now - timedelta(days=settings.DEVICE_ARRIVAL_DAYS))

    def awaiting_device_return(self):
        """Cancelled tickets whose device is still at the desk."""
        return self.filter(
            status=Status.CANCELLED, received_at__isnull=False, device_returned_at__isnull=True
        )


class Ticket(ConcurrentTransitionMixin, models.Model):
    number = models.CharField(_("ticket number"), max_length=numbers.DISPLAY_LENGTH, unique=True, editable=False)
    status = FSMField(
        _("stage"), max_length=32, choices=Status.choices, default=Status.SUBMITTED, protected=True
    )
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="tickets"
    )
    contact_name = models.CharField(_("contact name"), max_length=150)
    contact_phone = PhoneNumberField(_("contact phone"))
    contact_email = models.EmailField(_("contact email"), blank=True)
    service_center = models.ForeignKey(
        ServiceCenter, verbose_name=_("service center"), on_delete=models.PROTECT, related_name="tickets"
    )

    device_model = models.ForeignKey(
        DeviceModel,
        verbose_name=_("device model"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        help_text=_("Empty when the device is not in the catalogue."),
    )
    device_other = models.CharField(
        _("other device"), max_length=120, blank=True, help_text=_("Brand and model when not in the catalogue.")
    )
    imei_or_serial = models.CharField(_("IMEI or serial number"), max_length=32)
    os_version = models.CharField(_("OS version"), max_length=60, blank=True)
    fault_category = models.ForeignKey(
        FaultCategory, verbose_name=_("fault category"), on_delete=models.PROTECT, related_name="tickets"
    )
    symptom_description = models.TextField(_("what happens"))
    fault_frequency = models.CharField(
        _("how often it happens"), max_length=20, choices=FaultFrequency.choices, default=FaultFrequency.ALWAYS
    )
    condition_notes = models.TextField(
        _("condition notes"), blank=True, help_text=_("Scratches, dents, missing parts noted at intake.")
    )

    purchase_date = models.DateField(_("purchase date"), null=True, blank=True)
    warranty_status = models.CharField(
        _("warranty"), max_length=20, choices=WarrantyStatus.choices, default=WarrantyStatus.UNKNOWN
    )
    warranty_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("warranty confirmed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    warranty_confirmed_at = models.DateTimeField(_("warranty confirmed at"), null=True, blank=True)

    arrival_method = models.CharField(
        _("how the device arrives"), max_length=20, choices=ArrivalMethod.choices, default=ArrivalMethod.DROP_OFF
    )
    return_method = models.CharField(
        _("how the device returns"), max_length=20, choices=ReturnMethod.choices, default=ReturnMethod.PICKUP
    )
    return_address = models.TextField(_("return address"), blank=True)
    pickup_code = models.CharField(_("pickup code"), max_length=6, editable=False)

    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("last update"), auto_now=True)
    received_at = models.DateTimeField(_("device received"), null=True, blank=True, editable=False)
    ready_at = models.DateTimeField(_("repair finished"), null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True, editable=False)
    device_returned_at = models.DateTimeField(_("device returned"), null=True, blank=True, editable=False)
    device_reminder_sent_at = models.DateTimeField(
        _("reminded to send the device"), null=True, blank=True, editable=False
    )

    cancelled_by_kind = models.CharField(
        _("cancelled by"), max_length=10, choices=ActorKind.choices, blank=True, editable=False
    )
    cancel_reason = models.CharField(
        _("cancellation reason"), max_length=30, choices=CancelReason.choices, blank=True, editable=False
    )
    cancel_note = models.TextField(_("cancellation note"), blank=True, editable=False)

    handed_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("handed over by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    handover_check = models.CharField(
        _("identity check"), max_length=20, choices=HandoverCheck.choices, blank=True, editable=False
    )
    return_carrier = models.CharField(_("carrier"), max_length=60, blank=True, editable=False)
    return_tracking_number = models.CharField(_("tracking number"), max_length=60, blank=True, editable=False)

    resubmitted_from = models.ForeignKey(
        "self",
        verbose_name=_("resubmission of"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="resubmissions",
        editable=False,
    )

    objects = TicketQuerySet.as_manager()

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["imei_or_serial"], name="ticket_imei_idx"),
            models.Index(fields=["contact_phone"], name="ticket_phone_idx"),
            models.Index(fields=["contact_email"], name="ticket_email_idx"),
            models.Index(fields=["service_center", "status"], name="ticket_center_status_idx"),
            models.Index(fields=["status", "service_center"], name="ticket_status_center_idx"),
            models.Index(fields=["created_at"], name="ticket_created_idx"),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_idx"),
        ]
        permissions = [
            ("view_all_centers", _("See and work tickets of every service center")),
            ("receive_device", _("Receive a device")),
            ("order_parts", _("Order parts")),
            ("start_repair", _("Start a repair")),
            ("send_to_testing", _("Send to testing")),
            ("fail_testing", _("Fail testing")),
            ("pass_testing", _("Pass testing")),
            ("hand_over", _("Hand a device over")),
            ("ship_back", _("Ship a device back")),
            ("cancel_ticket", _("Cancel a ticket")),
            ("confirm_warranty", _("Confirm or override the warranty status")),
            ("view_reports", _("See the reports")),
        ]

    def __str__(self):
        return self.number

    def save(self, *args, **kwargs):
        # Emails are stored lower-case, so look-ups are exact matches on the index.
        self.contact_email = (self.contact_email or "").strip().lower()
        super().save(*args, **kwargs)

    def refresh_from_db(self, *args, **kwargs):
        # django-fsm-2 reloads a protected state field by switching ``protected``
        # off on the field itself, which every thread shares, and on again: a
        # second thread reloading a ticket at that moment finds it switched on
        # mid-way and fails with "Direct status modification is not allowed".
        # Reloads are short (one SELECT by primary key); one at a time per process.
        with _REFRESH_LOCK:
            super().refresh_from_db(*args, **kwargs)

    # --- creation -------------------------------------------------------------

    @classmethod
    def open_ticket(cls, *, by, public_note="", **fields):
        """Create a ticket and its first StageEvent (to ``submitted``) in one transaction.

        ``by`` is who submits it: the customer, or a staff member at the counter.
        The number is random; a collision with an existing one is retried.
        """
        fields["imei_or_serial"] = imei.normalise(fields.get("imei_or_serial", ""))
        for _attempt in range(5):
            ticket = cls(number=numbers.generate(), pickup_code=_pickup_code(), **fields)
            if ticket.purchase_date is not None and "warranty_status" not in fields:
                ticket.warranty_status = ticket.computed_warranty_status()
            try:
                with transaction.atomic():
                    ticket.save(force_insert=True)
                    event = StageEvent.objects.create(
                        ticket=ticket,
                        from_status="",
                        to_status=Status.SUBMITTED,
                        at=ticket.created_at,
                        actor=by,
                        actor_kind=ticket.actor_kind_of(by),
                        public_note=public_note,
                    )
                    _notify_stage_change(event)
            except IntegrityError:
                if not cls.objects.filter(number=ticket.number).exists():
                    raise
                continue
            return ticket
        raise IntegrityError("Could not find a free ticket number after 5 attempts.")

    @classmethod
    def take_in(cls, *, by, customer=None, new_customer=None, photos=(), public_note="", **fields):
        """A walk-in at the store counter: open the ticket and receive the device, all or nothing.

        ``customer`` is the customer's account; or ``new_customer`` (a dict of
        ``email``, ``full_name``, ``phone``, ``language``) opens one on the spot
        with no password anyone knows (User.objects.create_walk_in_customer).
        ``photos`` are StagedUploads of ``by`` that become the ticket's
        attachments. The history shows both stages, to ``submitted`` and to
        ``inspecting``, each by the clerk; the device arrived over the counter.

        Raises PermissionDenied when ``by`` may not take devices in at this
        service center, and IntegrityError when ``new_customer``'s email was
        taken by someone else a moment ago (nothing is then written).
        """
        from django.contrib.auth import get_user_model

        if (customer is None) == (new_customer is None):
            raise ValueError("Give either customer or new_customer.")
        center = fields["service_center"]
        if not (
            by.is_active
            and by.is_staff
            and by.has_perms(["tickets.add_ticket", "tickets.receive_device"])
            and by.works_at(center.pk)
        ):
            raise PermissionDenied(_("You may not take devices in at this service center."))
        fields["arrival_method"] = ArrivalMethod.DROP_OFF
        with transaction.atomic():
            if new_customer is not None:
                customer = get_user_model().objects.create_walk_in_customer(**new_customer)
            ticket = cls.open_ticket(by=by, customer=customer, public_note=public_note, **fields)
            # Locked, so that the stale-upload sweep cannot delete one of them meanwhile.
            staged = StagedUpload.objects.owned_by(by).select_for_update()
            for upload in staged.filter(pk__in=[photo.pk for photo in photos]):
                upload.attach_to(ticket, by=by)
            ticket.perform("receive_device", by=by)
        return ticket

    # --- warranty -----------------------------------------------------------------

    @property
    def warranty_months(self):
        return self.device_model.warranty_months if self.device_model_id else None

    @property
    def warranty_expires_on(self):
        if self.purchase_date is None or self.warranty_months is None:
            return None
        return self.purchase_date + relativedelta(months=self.warranty_months)

    def computed_warranty_status(self, today=None):
        expires = self.warranty_expires_on
        if expires is None:
            return WarrantyStatus.UNKNOWN
        today = today or timezone.localdate()
        return WarrantyStatus.IN_WARRANTY if today < expires else WarrantyStatus.OUT_OF_WARRANTY

    def confirm_warranty(self, status, *, by):
        """Staff confirm (or override) the warranty status; who and when is recorded."""
        if not (by.is_staff and by.has_perm("tickets.confirm_warranty") and by.works_at(self.service_center_id)):
            raise PermissionDenied
        self.warranty_status = WarrantyStatus(status)
        self.warranty_confirmed_by = by
        self.warranty_confirmed_at = timezone.now()
        self.save(update_fields=["warranty_status", "warranty_confirmed_by", "warranty_confirmed_at", "updated_at"])

    # --- who is acting --------------------------------------------------------------

    def actor_kind_of(self, user):
        if user is None:
            return ActorKind.SYSTEM
        if user.is_staff:
            return ActorKind.STAFF
        return ActorKind.CUSTOMER

    @property
    def device_label(self):
        return str(self.device_model) if self.device_model_id else self.device_other or _("Other device")

    @property
    def is_open(self):
        return self.status in OPEN_STATUSES

    @property
    def device_at_desk(self):
        """The device is physically with us: received and not yet handed back or shipped."""
        return self.received_at is not None and self.completed_at is None and self.device_returned_at is None

    # --- transitions (call them through perform()) ----------------------------------

    @transition(status, source=Status.SUBMITTED, target=Status.INSPECTING, permission=_staff_may("receive_device"))
    def receive_device(self, by, kind, *, condition_notes=""):
        self.received_at = timezone.now()
        condition_notes = condition_notes.strip()
        if condition_notes:
            self.condition_notes = "\n".join(filter(None, [self.condition_notes.strip(), condition_notes]))

    @transition(
        status,
        source=[Status.INSPECTING, Status.REPAIRING],
        target=Status.AWAITING_PARTS,
        permission=_staff_may("order_parts"),
    )
    def order_parts(self, by, kind):
        pass

    @transition(
        status,
        source=[Status.INSPECTING, Status.AWAITING_PARTS],
        target=Status.REPAIRING,
        permission=_staff_may("start_repair"),
    )
    def start_repair(self, by, kind):
        pass

    @transition(status, source=Status.REPAIRING, target=Status.TESTING, permission=_staff_may("send_to_testing"))
    def send_to_testing(self, by, kind):
        pass

    @transition(status, source=Status.TESTING, target=Status.REPAIRING, permission=_staff_may("fail_testing"))
    def fail_testing(self, by, kind):
        pass

    @transition(
        status,
        source=Status.TESTING,
        target=RETURN_VALUE(Status.READY_FOR_PICKUP, Status.AWAITING_RETURN_SHIPMENT),
        permission=_staff_may("pass_testing"),
    )
    def pass_testing(self, by, kind):
        self.ready_at = timezone.now()
        if self.return_method == ReturnMethod.SHIP_BACK:
            return Status.AWAITING_RETURN_SHIPMENT
        return Status.READY_FOR_PICKUP

    @transition(status, source=Status.READY_FOR_PICKUP, target=Status.COMPLETED, permission=_staff_may("hand_over"))
    def hand_over(self, by, kind, *, check="", pickup_code=""):
        self.check_identity(check, pickup_code)
        now = timezone.now()
        self.completed_at = now
        self.device_returned_at = now
        self.handed_over_by = by
        self.handover_check = check

    @transition(
        status, source=Status.AWAITING_RETURN_SHIPMENT, target=Status.COMPLETED, permission=_staff_may("ship_back")
    )
    def ship_back(self, by, kind, *, carrier="", tracking_number=""):
        carrier, tracking_number = carrier.strip(), tracking_number.strip()
        if not carrier or not tracking_number:
            raise ValidationError(_("Enter the carrier and the tracking number."), code="shipping")
        now = timezone.now()
        self.completed_at = now
        self.device_returned_at = now
        self.return_carrier = carrier
        self.return_tracking_number = tracking_number

    @transition(status, source=list(STAFF_CANCELLABLE), target=Status.CANCELLED, permission=_may_cancel)
    def cancel(self, by, kind, *, reason="", note=""):
        if reason not in CANCEL_REASONS_BY_ACTOR[kind]:
            raise ValidationError(_("Choose a reason for the cancellation."), code="reason")
        if kind == ActorKind.CUSTOMER and self.status not in CUSTOMER_CANCELLABLE:
            raise ValidationError(_("The repair has started; contact the desk to stop it."), code="too_late")
        self.cancelled_at = timezone.now()
        self.cancelled_by_kind = kind
        self.cancel_reason = reason
        self.cancel_note = note.strip()

    ACTIONS = (
        "receive_device",
        "order_parts",
        "start_repair",
        "send_to_testing",
        "fail_testing",
        "pass_testing",
        "hand_over",
        "ship_back",
        "cancel",
    )

    # The only action the system (background jobs, ``by=None``) takes on its own.
    SYSTEM_ACTIONS = ("cancel",)

    def available_actions(self, user):
        """The actions ``user`` (None: the system) may take on this ticket now, in lifecycle order."""
        if user is None:
            names = {t.name for t in self.get_available_status_transitions()} & set(self.SYSTEM_ACTIONS)
        else:
            names = {t.name for t in self.get_available_user_status_transitions(user)}
        return [action for action in self.ACTIONS if action in names]

    # --- the one door ---------------------------------------------------------------

    def perform(self, action, *, by, public_note="", internal_note="", **details):
        """Take ``action`` on this ticket as ``by`` (None: the system); return the new StageEvent.

        Raises TransitionNotAllowed (not possible from this stage), PermissionDenied
        (not for this person), ValidationError (details missing or wrong) or
        TicketChanged (someone else moved the ticket first). Nothing is written
        unless everything succeeds.
        """
        if action not in self.ACTIONS:
            raise ValueError(f"Unknown action {action!r}")
        method = getattr(self, action)
        kind = self.actor_kind_of(by)
        if not can_proceed(method):
            raise TransitionNotAllowed(
                _("“%(action)s” is not possible while the ticket is “%(stage)s”.")
                % {"action": ACTION_LABELS[action], "stage": self.get_status_display()}
            )
        if by is None and action not in self.SYSTEM_ACTIONS:
            raise PermissionDenied("The system only cancels tickets; every other stage change has a person behind it.")
        if by is not None and not has_transition_perm(method, by):
            raise PermissionDenied(_("You may not do this on this ticket."))
        from_status = self.status
        try:
            with transaction.atomic():
                before = self._field_values()
                method(by, kind, **details)
                changed = [name for name, value in self._field_values().items() if before[name] != value]
                self.save(update_fields=[*changed, "updated_at"])
                event = StageEvent.objects.create(
                    ticket=self,
                    from_status=from_status,
                    to_status=self.status,
                    actor=by,
                    actor_kind=kind,
                    public_note=public_note.strip(),
                    internal_note=internal_note.strip(),
                    details={k: str(v) for k, v in details.items() if k != "pickup_code"},
                )
                _notify_stage_change(event)
        except ConcurrentTransition:
            self.refresh_from_db()
            raise TicketChanged(
                _("This ticket was changed by someone else a moment ago (it is now “%(stage)s”). Reload it and check before acting.")
                % {"stage": self.get_status_display()}
            ) from None
        except Exception:
            if self.pk:
                self.refresh_from_db()
            raise
        return event

    def _field_values(self):
        return {field.attname: getattr(self, field.attname) for field in self._meta.concrete_fields}

    def check_identity(self, check, pickup_code=""):
        """The customer collecting the device proved who they are; else ValidationError.

        ``check`` is a HandoverCheck: the ticket's pickup code (compared in
        constant time), or an identity document the clerk looked at.
        """
        from django.utils.crypto import constant_time_compare

        if check == HandoverCheck.PICKUP_CODE:
            typed = "".join((pickup_code or "").split())
            if not (self.pickup_code and constant_time_compare(typed, self.pickup_code)):
                raise ValidationError(_("The pickup code does not match this ticket."), code="pickup_code")
        elif check != HandoverCheck.ID_DOCUMENT:
            raise ValidationError(
                _("Check the customer's pickup code or identity document before handing over."), code="check"
            )

    def mark_device_returned(self, *, by, check, pickup_code=""):
        """A cancelled ticket's device goes back to the customer; true if this call recorded it.

        The customer proves who they are as at a hand-over (``check_identity``)
        and ``handed_over_by``/``handover_check`` record who gave the device
        back and how. False, with nothing checked, when the device is no
        longer waiting to be returned (someone returned it a moment ago); the
        conditional UPDATE makes sure two clerks cannot both record it.
        Raises PermissionDenied for anyone who may not hand devices over at
        the ticket's center, and ValidationError for a failed identity check.
        """
        if not _staff_may("hand_over")(self, by):
            raise PermissionDenied(_("You may not do this on this ticket."))
        if not Ticket.objects.awaiting_device_return().filter(pk=self.pk).exists():
            self.refresh_from_db()
            return False
        self.check_identity(check, pickup_code)
        updated = (
            Ticket.objects.awaiting_device_return()
            .filter(pk=self.pk)
            .update(device_returned_at=Now(), handed_over_by=by, handover_check=check, updated_at=Now())
        )
        self.refresh_from_db()
        return bool(updated)


ACTION_LABELS = {
    "receive_device": _("Receive device"),
    "order_parts": _("Order parts"),
    "start_repair": _("Start repair"),
    "send_to_testing": _("Send to testing"),
    "fail_testing": _("Fail testing"),
    "pass_testing": _("Pass testing"),
    "hand_over": _("Hand over"),
    "ship_back": _("Ship back"),
    "cancel": _("Cancel ticket"),
}


_REFRESH_LOCK = threading.RLock()


def _pickup_code():
    import secrets

    return f"{secrets.randbelow(1_000_000):06d}"


def _notify_stage_change(event):
    """Record the customer's messages in this transaction; send them once it commits."""
    from . import notify

    notify.queue_on_commit(notify.record_stage_change(event))


# --- History --------------------------------------------------------------------------


class StageEvent(models.Model):
    """One stage change of a ticket. Append-only: never edited, never deleted."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(_("from"), max_length=32, choices=Status.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=32, choices=Status.choices)
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_kind = models.CharField(_("actor"), max_length=10, choices=ActorKind.choices)
    public_note = models.TextField(_("note to the customer"), blank=True)
    internal_note = models.TextField(_("internal note"), blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("stage event")
        verbose_name_plural = _("stage history")
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["ticket", "at"], name="event_ticket_at_idx")]

    def __str__(self):
        return f"{self.ticket_id}: {self.from_status or '∅'} → {self.to_status}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Stage events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Stage events are append-only.")


# --- Attachments ------------------------------------------------------------------------


class AttachmentKind(models.TextChoices):
    RECEIPT = "receipt", _("Purchase receipt")
    WARRANTY_CARD = "warranty_card", _("Warranty card")
    DEVICE_PHOTO = "device_photo", _("Device photo")


def _attachment_path(instance, filename):
    # The server chooses every file name: nothing the uploader typed reaches the disk.
    today = timezone.localdate()
    return f"attachments/{today:%Y/%m}/{uuid.uuid4().hex}.jpg"


class Attachment(models.Model):
    """A photo uploaded for a ticket, already cleaned by tickets.images.

    Stored outside any public URL; served by tickets.views.attachments.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="attachments")
    kind = models.CharField(_("kind"), max_length=20, choices=AttachmentKind.choices)
    image = models.FileField(_("image"), upload_to=_attachment_path, max_length=200)
    thumbnail = models.FileField(_("thumbnail"), upload_to=_attachment_path, max_length=200)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    byte_size = models.PositiveIntegerField(_("size in bytes"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("uploaded"), default=timezone.now)

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        ordering = ["uploaded_at", "pk"]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.ticket_id})"

    @classmethod
    def add(cls, ticket, kind, processed, *, by=None):
        """Store an image that tickets.images.process() accepted."""
        attachment = cls(
            ticket=ticket,
            kind=kind,
            width=processed.width,
            height=processed.height,
            byte_size=len(processed.image_bytes),
            uploaded_by=by,
        )
        from django.core.files.base import ContentFile

        attachment.image.save("image.jpg", ContentFile(processed.image_bytes), save=False)
        attachment.thumbnail.save("thumb.jpg", ContentFile(processed.thumbnail_bytes), save=False)
        try:
            attachment.save()
        except Exception:
            attachment.image.delete(save=False)
            attachment.thumbnail.delete(save=False)
            raise
        return attachment


# --- Conversation, rating, notifications ----------------------------------------------------


class ContactRequestKind(models.TextChoices):
    MISSING_INFORMATION = "missing_information", _("Missing information")
    QUOTE = "quote", _("Paid repair quote")
    BRING_DEVICE = "bring_device", _("Please bring the device")
    OTHER = "other", _("Other question")


class ContactRequestQuerySet(models.QuerySet):
    def open(self):
        return self.filter(responded_at__isnull=True)

    def due_reminder(self, now):
        """Unanswered, the deadline is near (CONTACT_REMINDER_HOURS_BEFORE) and no reminder went out yet."""
        return self.open().filter(
            reminder_sent_at__isnull=True,
            respond_by__gt=now,
            respond_by__lte=now + timedelta(hours=settings.CONTACT_REMINDER_HOURS_BEFORE),
            ticket__status__in=OPEN_STATUSES,
        )

    def overdue(self, now):
        """Unanswered past the deadline on a ticket that may still be cancelled."""
        return self.open().filter(respond_by__lte=now, ticket__status__in=STAFF_CANCELLABLE)


class ContactRequest(models.Model):
    """The desk asks the customer something and waits for an answer until ``respond_by``."""

    ticket = models.ForeignKey(
        Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="contact_requests"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=ContactRequestKind.choices)
    message = models.TextField(_("message to the customer"))
    respond_by = models.DateTimeField(_("answer by"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("asked"), default=timezone.now)
    response = models.TextField(_("customer's answer"), blank=True)
    responded_at = models.DateTimeField(_("answered"), null=True, blank=True)
    reminder_sent_at = models.DateTimeField(_("reminder sent"), null=True, blank=True, editable=False)

    objects = ContactRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact request")
        verbose_name_plural = _("contact requests")
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["responded_at", "respond_by"], name="contact_open_due_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.ticket_id})"

    @property
    def is_open(self):
        return self.responded_at is None

    @classmethod
    def ask(cls, ticket, *, by, kind, message, respond_by):
        """The desk asks the customer something; the customer is told on every channel."""
        from . import notify

        if not ticket.is_open:
            raise ValidationError(_("This ticket is closed; the customer can no longer be asked anything on it."))
        with transaction.atomic():
            request = cls.objects.create(
                ticket=ticket, kind=kind, message=message.strip(), respond_by=respond_by, created_by=by
            )
            notify.queue_on_commit(notify.record_contact_request(request))
        return request

    def answer(self, response):
        """Record the customer's answer; false if it was already answered.

        The ticket row is locked first, the same lock the automatic
        cancellation takes: whichever comes first wins, and an answer never
        lands on a ticket that was just cancelled for want of one.
        """
        response = response.strip()
        if not response:
            raise ValidationError(_("Write your answer."), code="required")
        with transaction.atomic():
            ticket = Ticket.objects.select_for_update().only("status").get(pk=self.ticket_id)
            if ticket.status not in OPEN_STATUSES:
                raise ValidationError(_("This ticket is closed; it can no longer be answered."), code="closed")
            updated = ContactRequest.objects.open().filter(pk=self.pk).update(response=response, responded_at=Now())
        self.refresh_from_db(fields=["response", "responded_at"])
        return bool(updated)


class Rating(models.Model):
    ticket = models.OneToOneField(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="rating")
    stars = models.PositiveSmallIntegerField(_("stars"), validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(_("comment"), blank=True)
    publish = models.BooleanField(_("may be published"), default=False)
    created_at = models.DateTimeField(_("rated"), default=timezone.now)

    class Meta:
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")
        constraints = [models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5), name="rating_stars_1_to_5")]

    def __str__(self):
        return f"{self.stars}★ ({self.ticket_id})"

    def clean(self):
        if self.ticket_id and self.ticket.status != Status.COMPLETED:
            raise ValidationError(_("Only a completed repair can be rated."))


class NotificationChannel(models.TextChoices):
    IN_APP = "in_app", _("On the website")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")


class NotificationKind(models.TextChoices):
    STAGE_CHANGE = "stage_change", _("Stage change")
    CONTACT_REQUEST = "contact_request", _("Contact request")
    CONTACT_REMINDER = "contact_reminder", _("Reminder to answer")
    DEVICE_REMINDER = "device_reminder", _("Reminder to send the device")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed, will retry")
    GAVE_UP = "gave_up", _("Failed")


class NotificationQuerySet(models.QuerySet):
    def in_app_for(self, user):
        return self.filter(recipient=user, channel=NotificationChannel.IN_APP)

    def unread_for(self, user):
        return self.in_app_for(user).filter(read_at__isnull=True)


class Notification(models.Model):
    """What was sent to whom, through which channel, and whether it went out."""

    ticket = models.ForeignKey(
        Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="notifications"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=NotificationKind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=NotificationChannel.choices)
    event = models.ForeignKey(
        StageEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    contact_request = models.ForeignKey(
        ContactRequest, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("message"))
    # What this message is about, once per channel: "event:42:email",
    # "contact:7:created:sms", "device-reminder:9:in_app"… Unique, so a
    # retried or duplicated job never creates (or sends) a message twice.
    key = models.CharField(_("key"), max_length=120, unique=True, editable=False)
    address = models.CharField(_("sent to"), max_length=254, blank=True)
    status = models.CharField(_("delivery"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["recipient", "channel", "read_at"], name="notification_unread_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="notification_retry_idx"),
        ]

    def __str__(self):
        return f"{self.get_channel_display()}: {self.subject}"


# --- Staged uploads (the customer's submit form) ------------------------------------------


# A staged upload nobody came back for is deleted after this long (StagedUpload.delete_stale).
STAGED_UPLOAD_MAX_AGE = timedelta(hours=24)
# At most this many per customer (a few forms' worth, in several tabs): a
# script re-posting photos without ever submitting cannot fill the disk.
MAX_STAGED_UPLOADS_PER_OWNER = 30


def _delete_stored_files(names):
    from django.core.files.storage import default_storage

    for name in names:
        if name:
            default_storage.delete(name)


class StagedUploadQuerySet(models.QuerySet):
    def owned_by(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)

    def stale(self, now=None):
        return self.filter(created_at__lt=(now or timezone.now()) - STAGED_UPLOAD_MAX_AGE)

    def delete_with_files(self):
        """Delete these rows and, once that is committed, their files; return how many rows went.

        Rows are locked first, so a submission that is turning one of them into
        an attachment at the same moment either gets it whole or not at all:
        a file is deleted only together with the row that owned it.
        """
        with transaction.atomic():
            rows = list(self.select_for_update().values_list("pk", "image", "thumbnail"))
            if not rows:
                return 0
            deleted, _by_model = StagedUpload.objects.filter(pk__in=[pk for pk, *_files in rows]).delete()
            names = [name for _pk, *files in rows for name in files]
            transaction.on_commit(lambda: _delete_stored_files(names))
        return deleted


class StagedUpload(models.Model):
    """A photo that passed tickets.images on a submit form that was not accepted yet.

    The customer's form failed on something else (an IMEI typo, a missing
    address): the photo is kept here so that it is not asked for again. The
    re-rendered form carries the ``public_id`` in a hidden input; when the
    ticket is opened the photo becomes an ``Attachment`` (the same stored
    files, which is why they live where attachments live) and the row goes.
    Rows nobody came back for are deleted by ``delete_stale()``.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="staged_uploads"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=AttachmentKind.choices)
    image = models.FileField(_("image"), upload_to=_attachment_path, max_length=200)
    thumbnail = models.FileField(_("thumbnail"), upload_to=_attachment_path, max_length=200)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    byte_size = models.PositiveIntegerField(_("size in bytes"))
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now, db_index=True)

    objects = StagedUploadQuerySet.as_manager()

    class Meta:
        verbose_name = _("staged photo")
        verbose_name_plural = _("staged photos")
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.public_id})"

    @classmethod
    def stage(cls, owner, kind, processed):
        """Store an image that tickets.images.process() accepted, for ``owner``'s next try."""
        from django.core.files.base import ContentFile

        upload = cls(
            owner=owner,
            kind=kind,
            width=processed.width,
            height=processed.height,
            byte_size=len(processed.image_bytes),
        )
        upload.image.save("image.jpg", ContentFile(processed.image_bytes), save=False)
        upload.thumbnail.save("thumb.jpg", ContentFile(processed.thumbnail_bytes), save=False)
        try:
            upload.save()
        except Exception:
            upload.image.delete(save=False)
            upload.thumbnail.delete(save=False)
            raise
        return upload

    @classmethod
    def delete_stale(cls, now=None):
        """Delete the uploads older than STAGED_UPLOAD_MAX_AGE, files included; return how many."""
        return cls.objects.stale(now).delete_with_files()

    @classmethod
    def trim(cls, owner, keep=()):
        """Delete ``owner``'s oldest uploads beyond MAX_STAGED_UPLOADS_PER_OWNER, never one in ``keep``."""
        room = max(0, MAX_STAGED_UPLOADS_PER_OWNER - len(keep))
        others = cls.objects.owned_by(owner).exclude(pk__in=[upload.pk for upload in keep])
        surplus = list(others.order_by("-created_at", "-pk").values_list("pk", flat=True)[room:])
        return cls.objects.filter(pk__in=surplus).delete_with_files() if surplus else 0

    def attach_to(self, ticket, *, by):
        """Turn this upload into ``ticket``'s Attachment, reusing the stored files; the row goes.

        Call inside the transaction that opens the ticket: if it rolls back,
        the row is still there and still owns its files.
        """
        attachment = Attachment.objects.create(
            ticket=ticket,
            kind=self.kind,
            image=self.image.name,
            thumbnail=self.thumbnail.name,
            width=self.width,
            height=self.height,
            byte_size=self.byte_size,
            uploaded_by=by,
        )
        # A plain row delete: the files now belong to the attachment.
        StagedUpload.objects.filter(pk=self.pk).delete()
        return attachment
