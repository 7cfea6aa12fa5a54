"""Forms for tickets.

Admin (back office) forms come first; customer-facing forms belong in their
own section below them when they are written.
"""

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import images, imei
from .models import (
    ACTION_LABELS,
    Attachment,
    CANCEL_REASONS_BY_ACTOR,
    ActorKind,
    ContactRequest,
    HandoverCheck,
    ReturnMethod,
    Status,
    Ticket,
)

# --- Back office (Django admin) ----------------------------------------------------

# What staff may edit on a ticket's change page. Everything else (the stage,
# milestones, cancellation, hand-over, shipping) is written only by
# Ticket.perform() and is shown read-only.
TICKET_EDITABLE_FIELDS = (
    "contact_name",
    "contact_phone",
    "contact_email",
    "device_model",
    "device_other",
    "imei_or_serial",
    "os_version",
    "fault_category",
    "symptom_description",
    "fault_frequency",
    "condition_notes",
    "return_address",
)
# Only with the tickets.confirm_warranty permission; saved through Ticket.confirm_warranty().
TICKET_WARRANTY_FIELDS = ("purchase_date", "warranty_status")


class TicketAdminForm(forms.ModelForm):
    """The ticket's change form. ``status`` is never one of its fields."""

    class Meta:
        model = Ticket
        fields = TICKET_EDITABLE_FIELDS
        widgets = {
            "symptom_description": forms.Textarea(attrs={"rows": 4, "cols": 60}),
            "condition_notes": forms.Textarea(attrs={"rows": 3, "cols": 60}),
            "return_address": forms.Textarea(attrs={"rows": 3, "cols": 60}),
        }
        # For the read-only fields the admin shows beside the form.
        help_texts = {
            "age": _("How long the ticket has been open, or was open once closed."),
            "warranty_expires": _("From the purchase date and the model's warranty months."),
            "pickup_code_hint": _(
                "Not shown in the back office: the customer proves who they are with it at pickup. "
                "Check it with “Hand over”, or check an identity document when it is lost; "
                "never read it out on the phone."
            ),
            "status": _("Changes only with the buttons under “Move this ticket”."),
            "tracking_link": _(
                "The link in the customer's messages and behind the QR code on the receipt. "
                "It shows progress only, no personal data: safe to send again to the contact's phone or email."
            ),
        }

    def clean_imei_or_serial(self):
        return imei.normalise(self.cleaned_data.get("imei_or_serial", ""))

    def clean(self):
        cleaned = super().clean()
        if "device_model" in self.fields and "device_other" in self.fields:
            if not cleaned.get("device_model") and not cleaned.get("device_other", "").strip():
                self.add_error(
                    "device_other", _("Choose the device model, or describe the device when it is not in the list.")
                )
        if (
            "return_address" in self.fields
            and self.instance.return_method == ReturnMethod.SHIP_BACK
            and not cleaned.get("return_address", "").strip()
        ):
            self.add_error("return_address", _("The device is shipped back: enter the address."))
        return cleaned


class TicketWarrantyAdminForm(TicketAdminForm):
    """The change form for staff who may confirm or override the warranty status."""

    warranty_confirm = forms.BooleanField(
        label=_("Confirm the warranty status"),
        required=False,
        help_text=_(
            "Tick after checking the receipt or warranty card, even when the status stays the same. "
            "Changing the status confirms it too. Your name and the time are recorded."
        ),
    )

    class Meta(TicketAdminForm.Meta):
        fields = TICKET_EDITABLE_FIELDS + TICKET_WARRANTY_FIELDS

    @property
    def warranty_to_confirm(self):
        """The warranty status to record through Ticket.confirm_warranty(), or None."""
        if "warranty_status" not in self.fields:
            return None
        if "warranty_status" in self.changed_data or self.cleaned_data.get("warranty_confirm"):
            return self.cleaned_data["warranty_status"]
        return None


# Actions whose details the transition panel asks for.
DETAILED_ACTIONS = ("hand_over", "ship_back", "cancel")


class TransitionForm(forms.Form):
    """A button in the ticket's "Move this ticket" panel; the model does the real checks."""

    action = forms.ChoiceField(
        label=_("Action"), choices=[(action, ACTION_LABELS[action]) for action in Ticket.ACTIONS]
    )
    expected_status = forms.ChoiceField(label=_("Stage you saw"), choices=Status.choices)
    public_note = forms.CharField(label=_("Note to the customer"), required=False, max_length=2000)
    internal_note = forms.CharField(label=_("Internal note"), required=False, max_length=2000)
    # cancel
    reason = forms.ChoiceField(
        label=_("Reason"),
        required=False,
        choices=[("", "---------")] + [(r.value, r.label) for r in CANCEL_REASONS_BY_ACTOR[ActorKind.STAFF]],
    )
    note = forms.CharField(label=_("Cancellation note"), required=False, max_length=2000)
    # ship_back
    carrier = forms.CharField(label=_("Carrier"), required=False, max_length=60)
    tracking_number = forms.CharField(label=_("Tracking number"), required=False, max_length=60)
    # hand_over
    check = forms.ChoiceField(label=_("Identity check"), required=False, choices=[("", "")] + HandoverCheck.choices)
    pickup_code = forms.CharField(label=_("Pickup code"), required=False, max_length=20)

    def details(self):
        """The keyword arguments Ticket.perform() passes on to the chosen transition."""
        data = self.cleaned_data
        action = data["action"]
        if action == "cancel":
            return {"reason": data["reason"], "note": data["note"]}
        if action == "ship_back":
            return {"carrier": data["carrier"], "tracking_number": data["tracking_number"]}
        if action == "hand_over":
            code = "".join(data["pickup_code"].split())
            check = data["check"] or (HandoverCheck.PICKUP_CODE if code else "")
            return {"check": check, "pickup_code": code}
        return {}


class ContactRequestAdminForm(forms.ModelForm):
    """Staff ask the customer something, with a deadline for the answer."""

    DEFAULT_DAYS_TO_ANSWER = 7

    class Meta:
        model = ContactRequest
        fields = ("kind", "message", "respond_by")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "respond_by" in self.fields and self.instance._state.adding:
            field = self.fields["respond_by"]
            field.initial = self.default_respond_by
            # The default moves with the clock: compare with the value the page
            # showed, or an untouched empty row would count as changed.
            field.show_hidden_initial = True
            field.help_text = _("After this, the customer is reminded and the ticket may be cancelled automatically.")

    @classmethod
    def default_respond_by(cls):
        """The end of the working day, a week from now."""
        later = timezone.localtime() + timedelta(days=cls.DEFAULT_DAYS_TO_ANSWER)
        return later.replace(hour=18, minute=0, second=0, microsecond=0)

    def clean_respond_by(self):
        respond_by = self.cleaned_data["respond_by"]
        if respond_by is not None and respond_by <= timezone.now():
            raise forms.ValidationError(_("Choose a time in the future."))
        return respond_by


class AttachmentAdminForm(forms.ModelForm):
    """Staff add a photo to a ticket; it goes through tickets.images like every upload."""

    upload = forms.FileField(
        label=_("add a photo"),
        validators=[images.validate_form_file],
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
        help_text=_("JPEG, PNG or WebP. Metadata (location, camera) is removed."),
    )

    class Meta:
        model = Attachment
        fields = ("kind",)

    @property
    def processed(self):
        """The cleaned image for Attachment.add(), once the form is valid."""
        return self.cleaned_data["upload"].processed_image


# --- Customer pages ----------------------------------------------------------------


# --- Customer: ticket page, cancel, rate, reply, track ---


class CustomerCancelForm(forms.Form):
    """The customer's cancellation; the model checks the stage and the person."""

    reason = forms.ChoiceField(
        label=_("Why do you want to cancel?"),
        choices=[(reason.value, reason.label) for reason in CANCEL_REASONS_BY_ACTOR[ActorKind.CUSTOMER]],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose a reason for the cancellation.")},
    )
    note = forms.CharField(
        label=_("Anything else you want us to know"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # The stage the customer saw when deciding; a ticket that moved meanwhile is not cancelled.
    expected_status = forms.ChoiceField(choices=Status.choices, widget=forms.HiddenInput)


class RatingForm(forms.Form):
    stars = forms.TypedChoiceField(
        label=_("How satisfied are you with the repair?"),
        coerce=int,
        choices=[],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose from 1 to 5 stars.")},
    )
    comment = forms.CharField(
        label=_("Comment"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    publish = forms.BooleanField(label=_("You may publish my comment"), required=False)

    def __init__(self, *args, **kwargs):
        from django.utils.translation import ngettext

        super().__init__(*args, **kwargs)
        # Built per request so the labels follow the visitor's language.
        self.fields["stars"].choices = [
            (n, ngettext("%(count)d star", "%(count)d stars", n) % {"count": n}) for n in range(1, 6)
        ]


class ContactReplyForm(forms.Form):
    """The customer's answer to one contact request of the ticket shown.

    ``contact_request`` is only an identifier: the view looks it up among
    the ticket's own requests, so another ticket's id finds nothing.
    """

    contact_request = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    response = forms.CharField(
        label=_("Your answer"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": _("Write your answer.")},
    )


class TrackForm(forms.Form):
    """Track without an account: the ticket number and a second factor."""

    number = forms.CharField(
        label=_("Ticket number"),
        max_length=40,
        help_text=_("For example 7K3Q-9XWD-M2PA. Dashes, spaces and upper or lower case do not matter."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    factor = forms.CharField(
        label=_("Last four digits of your phone number, or your email"),
        max_length=254,
        help_text=_("The phone number or email address given on the ticket."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


# --- Customer: submit a repair ---------------------------------------------------------
# (This section's imports sit here because the file is shared and sections are appended.)

import uuid  # noqa: E402

from django.db import transaction  # noqa: E402
from django.utils.translation import ngettext  # noqa: E402
from phonenumber_field.formfields import PhoneNumberField  # noqa: E402

from .models import (  # noqa: E402
    ArrivalMethod,
    AttachmentKind,
    DeviceModel,
    FaultCategory,
    FaultFrequency,
    ServiceCenter,
    StagedUpload,
)

from .reports import center_rating_text, centers_with_public_rating  # noqa: E402

PHOTO_TYPES = "image/jpeg,image/png,image/webp"
MAX_DEVICE_PHOTOS = 6
MIN_DESCRIPTION_LENGTH = 20
# The value of "My device is not listed" in the device select.
OTHER_DEVICE = "other"

# The photo inputs, in page order, and the kind of attachment each one makes.
PHOTO_FIELDS = (
    ("receipt_photo", AttachmentKind.RECEIPT),
    ("warranty_card_photo", AttachmentKind.WARRANTY_CARD),
    ("device_photos", AttachmentKind.DEVICE_PHOTO),
)
# A ticket has one receipt and one warranty card: a new upload replaces the one kept.
SINGLE_PHOTO_KINDS = frozenset({AttachmentKind.RECEIPT, AttachmentKind.WARRANTY_CARD})

# What the customer fills in, passed as it is to Ticket.open_ticket().
SUBMIT_TICKET_FIELDS = (
    "device_model",
    "device_other",
    "imei_or_serial",
    "os_version",
    "purchase_date",
    "fault_category",
    "symptom_description",
    "fault_frequency",
    "service_center",
    "arrival_method",
    "return_method",
    "return_address",
    "contact_name",
    "contact_phone",
    "contact_email",
)


class MultiplePhotoInput(forms.FileInput):
    allow_multiple_selected = True


class MultiplePhotoField(forms.FileField):
    """Several photos from one input; cleans to a list of uploaded files."""

    widget = MultiplePhotoInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        cleaned = []
        for item in files:
            if item:
                cleaned.append(super().clean(item, initial))
        return cleaned


class PublicIdsField(forms.Field):
    """Public ids sent in repeated inputs (hidden inputs, checkboxes).

    Malformed ids are dropped like unknown ones: the view only ever looks them
    up among the requester's own rows.
    """

    widget = forms.MultipleHiddenInput

    def __init__(self, *, limit, **kwargs):
        self.limit = limit
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str):
            value = [value]
        ids = []
        for item in value or ():
            try:
                public_id = uuid.UUID(str(item))
            except ValueError:
                continue
            if public_id not in ids:
                ids.append(public_id)
        return ids[: self.limit]


def _copy_photo(attachment, ticket, *, by):
    """A new Attachment of ``ticket`` with its own copy of ``attachment``'s files; None if they are gone."""
    try:
        with attachment.image.open("rb") as image, attachment.thumbnail.open("rb") as thumbnail:
            processed = images.ProcessedImage(
                image_bytes=image.read(),
                thumbnail_bytes=thumbnail.read(),
                width=attachment.width,
                height=attachment.height,
            )
    except FileNotFoundError:
        return None
    return Attachment.add(ticket, attachment.kind, processed, by=by)


class PhotoFieldsMixin:
    """The receipt, warranty-card and device-photo fields of the submit and intake forms.

    Each photo goes through the upload pipeline as its field is cleaned; what
    passed is collected in ``self.new_photos`` (kind, ProcessedImage), next to
    the photos already kept in ``self.carried``.
    """

    def _process_photo(self, name, kind):
        uploaded = self.cleaned_data[name]
        if uploaded:
            self.new_photos.append((kind, images.process(uploaded)))  # or its ValidationError, shown at the input
        return uploaded

    def clean_receipt_photo(self):
        return self._process_photo("receipt_photo", AttachmentKind.RECEIPT)

    def clean_warranty_card_photo(self):
        return self._process_photo("warranty_card_photo", AttachmentKind.WARRANTY_CARD)

    def clean_device_photos(self):
        files = self.cleaned_data["device_photos"]
        room = MAX_DEVICE_PHOTOS - sum(1 for upload in self.carried if upload.kind == AttachmentKind.DEVICE_PHOTO)
        if len(files) > room:
            raise forms.ValidationError(
                ngettext(
                    "You can add %(count)d more photo of the device.",
                    "You can add %(count)d more photos of the device.",
                    max(room, 0),
                ),
                code="too_many",
                params={"count": max(room, 0)},
            )
        problems = []
        for uploaded in files:
            try:
                self.new_photos.append((AttachmentKind.DEVICE_PHOTO, images.process(uploaded)))
            except forms.ValidationError as error:
                # The photos that passed are still kept; each failed one says what is wrong with it.
                problems.append(
                    forms.ValidationError(
                        _("%(name)s: %(problem)s"),
                        code=getattr(error, "code", None) or "invalid",
                        params={"name": uploaded.name[-80:], "problem": " ".join(error.messages)},
                    )
                )
        if problems:
            raise forms.ValidationError(problems)
        return files


class SubmitRepairForm(PhotoFieldsMixin, forms.Form):
    """A customer's repair request: ``/tickets/new/`` and "submit again".

    Photos are the delicate part, because a browser cannot put files back into
    a re-rendered form. Every photo that passes tickets.images is therefore
    kept at once as a StagedUpload (``keep_photos()``, called whether the form
    is valid or not) and carried in hidden inputs, so an IMEI typo never costs
    the customer their uploads. ``open_ticket()`` then turns them into the new
    ticket's attachments in the same transaction that opens it.

    Fields are declared in page order: the error summary lists them that way.
    """

    # The photos kept from earlier tries, and those the customer ticked to remove.
    staged = PublicIdsField(limit=MAX_DEVICE_PHOTOS + len(SINGLE_PHOTO_KINDS))
    remove_staged = PublicIdsField(limit=MAX_DEVICE_PHOTOS + len(SINGLE_PHOTO_KINDS))

    device_model = forms.ChoiceField(
        label=_("Device model"),
        error_messages={"required": _("Choose your device, or “My device is not listed” at the end of the list.")},
    )
    device_other = forms.CharField(
        label=_("Brand and model of your device"),
        required=False,
        max_length=120,
        help_text=_("Only when your device is not in the list, for example “Acme Phone 3 Pro, 256 GB, blue”."),
    )
    imei_or_serial = forms.CharField(
        label=_("IMEI or serial number"),
        max_length=40,
        help_text=_(
            "A phone's IMEI has 15 digits: dial *#06#, or look on the box or under Settings › About. "
            "Other devices have a serial number of letters and digits on the back or the box."
        ),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    os_version = forms.CharField(
        label=_("Software version"),
        required=False,
        max_length=60,
        help_text=_("For example Android 14 or iOS 17.5, if you know it."),
    )
    purchase_date = forms.DateField(
        label=_("Purchase date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("As on your receipt. With the model's warranty period it tells whether the repair is free."),
    )
    fault_category = forms.ChoiceField(
        label=_("What kind of problem is it?"),
        error_messages={"required": _("Choose the kind of problem.")},
    )
    symptom_description = forms.CharField(
        label=_("What happens"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("In your own words; the tips below help us repair it faster."),
        error_messages={"required": _("Describe what happens.")},
    )
    fault_frequency = forms.ChoiceField(
        label=_("How often does it happen?"),
        choices=FaultFrequency.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose how often it happens.")},
    )
    receipt_photo = forms.FileField(
        label=_("Photo of the purchase receipt"),
        required=False,
        widget=forms.FileInput(attrs={"accept": PHOTO_TYPES}),
        help_text=_("The date, the shop and the model must be readable. JPEG, PNG or WebP."),
    )
    warranty_card_photo = forms.FileField(
        label=_("Photo of the warranty card"),
        required=False,
        widget=forms.FileInput(attrs={"accept": PHOTO_TYPES}),
        help_text=_("If your device came with one. JPEG, PNG or WebP."),
    )
    device_photos = MultiplePhotoField(
        label=_("Photos of the device"),
        required=False,
        widget=MultiplePhotoInput(attrs={"accept": PHOTO_TYPES}),
    )
    reuse_photos = forms.BooleanField(label=_("Use the photos of the cancelled ticket again"), required=False)
    service_center = forms.ChoiceField(
        label=_("Service center"),
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose the service center that repairs your device.")},
    )
    arrival_method = forms.ChoiceField(
        label=_("How does the device get to us?"),
        choices=ArrivalMethod.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose how the device gets to us.")},
    )
    return_method = forms.ChoiceField(
        label=_("How do you get it back?"),
        choices=ReturnMethod.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose how you get the device back.")},
    )
    return_address = forms.CharField(
        label=_("Return address"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"}),
        help_text=_("Only when we ship the device back: name on the door, street and number, city, postcode."),
    )
    contact_name = forms.CharField(
        label=_("Your name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    contact_phone = PhoneNumberField(
        label=_("Phone number"),
        help_text=_("We call or text you about the repair. Its last four digits let you track it without logging in."),
    )
    contact_email = forms.EmailField(
        label=_("Email address"), widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    def __init__(self, *args, customer, resubmitted_from=None, **kwargs):
        self.customer = customer
        self.resubmitted_from = resubmitted_from
        kwargs.setdefault("initial", self.initial_for(customer, resubmitted_from))
        super().__init__(*args, **kwargs)
        self.fields["contact_phone"].widget.attrs["autocomplete"] = "tel"

        # One query per catalogue, whatever its size; the same rows validate the POST.
        # Each center with its customers' average rating and their number (tickets.reports), in the same query.
        centers = centers_with_public_rating(ServiceCenter.objects.filter(is_active=True))
        self.centers = {str(center.pk): center for center in centers}
        self.device_models = {str(model.pk): model for model in DeviceModel.objects.filter(is_active=True)}
        self.faults = {str(fault.pk): fault for fault in FaultCategory.objects.filter(is_active=True)}
        self.fields["service_center"].choices = [
            (pk, f"{center.name} ({center_rating_text(center)})") for pk, center in self.centers.items()
        ]
        self.fields["device_model"].choices = self._device_choices()
        self.fields["fault_category"].choices = [("", _("Choose one"))] + [
            (pk, fault.display_name) for pk, fault in self.faults.items()
        ]
        if len(self.centers) == 1 and not self.initial.get("service_center"):
            self.initial["service_center"] = next(iter(self.centers))
        self.fields["device_photos"].help_text = ngettext(
            "Up to %(count)d photo: the damage, the screen showing the error. JPEG, PNG or WebP.",
            "Up to %(count)d photos: the damage, the screen showing the error. JPEG, PNG or WebP.",
            MAX_DEVICE_PHOTOS,
        ) % {"count": MAX_DEVICE_PHOTOS}

        self.old_photos = list(resubmitted_from.attachments.all()) if resubmitted_from else []
        if not self.old_photos:
            del self.fields["reuse_photos"]

        self.new_photos = []  # (kind, ProcessedImage) of this POST that passed the pipeline
        self.carried = []  # the customer's StagedUploads named by the hidden inputs, minus the removed
        self.removed = []  # those the customer ticked "remove"
        self.staged_photos = []  # after keep_photos(): everything uploaded so far, for the page

    @staticmethod
    def initial_for(customer, ticket=None):
        """The form's starting values: the account's contact details, or a cancelled ticket's answers."""
        if ticket is None:
            return {
                "contact_name": customer.full_name,
                "contact_phone": customer.phone,
                "contact_email": customer.email,
                "arrival_method": ArrivalMethod.DROP_OFF,
                "return_method": ReturnMethod.PICKUP,
            }
        return {
            "device_model": str(ticket.device_model_id) if ticket.device_model_id else OTHER_DEVICE,
            "device_other": ticket.device_other,
            "imei_or_serial": ticket.imei_or_serial,
            "os_version": ticket.os_version,
            "purchase_date": ticket.purchase_date,
            "fault_category": str(ticket.fault_category_id),
            "symptom_description": ticket.symptom_description,
            "fault_frequency": ticket.fault_frequency,
            "reuse_photos": True,
            "service_center": str(ticket.service_center_id),
            "arrival_method": ticket.arrival_method,
            "return_method": ticket.return_method,
            "return_address": ticket.return_address,
            "contact_name": ticket.contact_name,
            "contact_phone": ticket.contact_phone,
            "contact_email": ticket.contact_email,
        }

    def _device_choices(self):
        by_brand = {}
        for pk, model in self.device_models.items():
            by_brand.setdefault(model.brand, []).append((pk, model.name))
        return [
            ("", _("Choose your device")),
            *by_brand.items(),
            (OTHER_DEVICE, _("My device is not listed")),
        ]

    # --- for the template ---------------------------------------------------------------

    def center_options(self):
        """The service centers as radio options: (center, input id, checked)."""
        bound = self["service_center"]
        chosen = str(bound.value() or "")
        return [
            (center, f"{bound.auto_id}_{index}", pk == chosen)
            for index, (pk, center) in enumerate(self.centers.items())
        ]

    def photo_fields(self):
        """Each photo input with the photos already uploaded for it."""
        return [
            (self[name], [upload for upload in self.staged_photos if upload.kind == kind])
            for name, kind in PHOTO_FIELDS
        ]

    # --- validation ---------------------------------------------------------------------

    def clean_remove_staged(self):
        remove = set(self.cleaned_data["remove_staged"])
        staged_ids = self.cleaned_data.get("staged") or []
        # Another customer's ids find nothing here and are ignored.
        carried = []
        if staged_ids:
            carried = list(StagedUpload.objects.owned_by(self.customer).filter(public_id__in=staged_ids))
        self.removed = [upload for upload in carried if upload.public_id in remove]
        self.carried = [upload for upload in carried if upload.public_id not in remove]
        return list(remove)

    def clean_device_model(self):
        value = self.cleaned_data["device_model"]
        return None if value == OTHER_DEVICE else self.device_models[value]

    def clean_imei_or_serial(self):
        return imei.normalise(self.cleaned_data["imei_or_serial"])

    def clean_purchase_date(self):
        purchased = self.cleaned_data["purchase_date"]
        if purchased and purchased > timezone.localdate():
            raise forms.ValidationError(_("The purchase date cannot be in the future."), code="future")
        return purchased

    def clean_fault_category(self):
        return self.faults[self.cleaned_data["fault_category"]]

    def clean_symptom_description(self):
        text = self.cleaned_data["symptom_description"]
        if len(text) < MIN_DESCRIPTION_LENGTH:
            raise forms.ValidationError(
                _(
                    "Tell us a little more (at least %(min)d characters): what you did, what you see, "
                    "since when, and any error message."
                ),
                code="too_short",
                params={"min": MIN_DESCRIPTION_LENGTH},
            )
        return text

    def clean_service_center(self):
        return self.centers[self.cleaned_data["service_center"]]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("device_model") is not None:
            cleaned["device_other"] = ""
        elif "device_model" in cleaned and not cleaned.get("device_other"):
            self.add_error(
                "device_other", _("Your device is not in the list: write its brand and model here.")
            )
        if cleaned.get("return_method") == ReturnMethod.SHIP_BACK:
            if not cleaned.get("return_address") and "return_address" not in self.errors:
                self.add_error("return_address", _("We ship the device back: enter the address to send it to."))
        elif "return_method" in cleaned:
            cleaned["return_address"] = ""
        return cleaned

    # --- after validation -------------------------------------------------------------------

    def keep_photos(self):
        """Store this POST's photos that passed the pipeline and forget those the customer removed.

        Call after is_valid(), whatever it said: no photo is asked for twice.
        ``staged_photos`` then lists everything uploaded so far.
        """
        replaced = {kind for kind, _processed in self.new_photos if kind in SINGLE_PHOTO_KINDS}
        dropped = self.removed + [upload for upload in self.carried if upload.kind in replaced]
        if dropped:
            StagedUpload.objects.filter(pk__in=[upload.pk for upload in dropped]).delete_with_files()
        kept = [upload for upload in self.carried if upload.kind not in replaced]
        fresh = [StagedUpload.stage(self.customer, kind, processed) for kind, processed in self.new_photos]
        self.new_photos, self.removed, self.carried = [], [], kept + fresh
        self.staged_photos = self.carried
        if fresh:
            StagedUpload.trim(self.customer, keep=self.staged_photos)

    def open_ticket(self):
        """Open the ticket and attach its photos, all or nothing; call after keep_photos()."""
        data = self.cleaned_data
        copies = []
        try:
            with transaction.atomic():
                ticket = Ticket.open_ticket(
                    by=self.customer,
                    customer=self.customer,
                    resubmitted_from=self.resubmitted_from,
                    **{name: data[name] for name in SUBMIT_TICKET_FIELDS},
                )
                # Locked, so that the stale-upload sweep cannot delete one of them meanwhile.
                staged = StagedUpload.objects.owned_by(self.customer).select_for_update()
                for upload in staged.filter(pk__in=[upload.pk for upload in self.staged_photos]):
                    upload.attach_to(ticket, by=self.customer)
                if data.get("reuse_photos"):
                    for photo in self.old_photos:
                        copies.append(_copy_photo(photo, ticket, by=self.customer))
        except BaseException:
            # Rolled back: the copies' rows are gone, their files must go too.
            for copy in filter(None, copies):
                copy.image.delete(save=False)
                copy.thumbnail.delete(save=False)
            raise
        return ticket


# --- Store counter -------------------------------------------------------------------------
# The clerk's forms at /counter/ (tickets/views/counter.py). Every action form
# carries the stage the clerk saw, so that a page left open while someone
# else moved the ticket is caught before anything is done.

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.validators import validate_email  # noqa: E402
from django.utils import translation  # noqa: E402

from .models import CancelReason, HandoverCheck, WarrantyStatus, parse_phone  # noqa: E402

# The value of "A new customer" in the intake's customer choice.
NEW_CUSTOMER = "new"

# What a new customer's account cannot be opened without.
NEW_CUSTOMER_REQUIRED = {
    "contact_name": _("Enter the customer's name."),
    "contact_phone": _("Enter the customer's phone number."),
    "contact_email": _("Enter the customer's email address: their account is opened with it."),
}

# What the clerk fills in at intake, passed as it is to Ticket.take_in().
COUNTER_TICKET_FIELDS = (
    "device_model",
    "device_other",
    "imei_or_serial",
    "os_version",
    "purchase_date",
    "fault_category",
    "symptom_description",
    "fault_frequency",
    "condition_notes",
    "return_method",
    "return_address",
    "contact_name",
    "contact_phone",
    "contact_email",
)


class CounterCenterForm(forms.Form):
    """The service center a clerk works the counter of, when they belong to several."""

    center = forms.ModelChoiceField(
        label=_("Where are you working now?"),
        queryset=ServiceCenter.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={
            "required": _("Choose the service center you are working at."),
            "invalid_choice": _("Choose one of your service centers."),
        },
    )

    def __init__(self, *args, centers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = centers


class CounterActionForm(forms.Form):
    """A button on the ticket card; the stage the clerk saw comes with it."""

    expected_status = forms.ChoiceField(choices=Status.choices, widget=forms.HiddenInput)


class CounterReceiveForm(CounterActionForm):
    condition_notes = forms.CharField(
        label=_("Condition on arrival"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Scratches, dents, cracks, missing parts, and what else was in the parcel or handed over."),
    )


class CounterHandOverForm(CounterActionForm):
    """The customer collecting a device proves who they are: the pickup code, or an identity document.

    Used for the hand-over of a repaired device and for the return of a
    cancelled ticket's device. The card shows it twice, once for each
    ``check``; the model compares the code (Ticket.check_identity).
    """

    check = forms.ChoiceField(choices=HandoverCheck.choices, widget=forms.HiddenInput)
    pickup_code = forms.CharField(
        label=_("Pickup code"),
        required=False,
        max_length=20,
        help_text=_("Six digits, on the customer's intake receipt and in the message that the device is ready."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false", "class": "pickup-code-input"}
        ),
    )
    id_checked = forms.BooleanField(label=_("I checked an identity document in the name on the ticket"), required=False)
    internal_note = forms.CharField(
        label=_("Internal note"),
        required=False,
        max_length=2000,
        help_text=_("For example which kind of document you saw. Never write down the document's number."),
    )

    def __init__(self, *args, contact_name="", **kwargs):
        super().__init__(*args, **kwargs)
        if contact_name:
            self.fields["id_checked"].label = _("I checked an identity document in the name of %(name)s") % {
                "name": contact_name
            }
        # Each of the two forms requires its own proof.
        check = self.data.get("check") if self.is_bound else self.initial.get("check")
        self.fields["pickup_code"].required = check == HandoverCheck.PICKUP_CODE
        self.fields["pickup_code"].error_messages["required"] = _("Enter the pickup code the customer shows you.")
        self.fields["id_checked"].required = check == HandoverCheck.ID_DOCUMENT
        self.fields["id_checked"].error_messages["required"] = _(
            "Look at an identity document in the name on the ticket, then tick this box."
        )

    def details(self):
        """The identity check, as Ticket.perform("hand_over") and mark_device_returned() take it."""
        return {"check": self.cleaned_data["check"], "pickup_code": "".join(self.cleaned_data["pickup_code"].split())}


class CounterShipBackForm(CounterActionForm):
    carrier = forms.CharField(
        label=_("Carrier"), max_length=60, error_messages={"required": _("Enter the carrier.")}
    )
    tracking_number = forms.CharField(
        label=_("Tracking number"),
        max_length=60,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        error_messages={"required": _("Enter the tracking number.")},
    )


class CounterCancelForm(CounterActionForm):
    reason = forms.ChoiceField(
        label=_("Reason"),
        widget=forms.RadioSelect,
        choices=[(reason.value, reason.label) for reason in CANCEL_REASONS_BY_ACTOR[ActorKind.STAFF]],
        error_messages={"required": _("Choose the reason for the cancellation.")},
    )
    note = forms.CharField(
        label=_("Note to the customer"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason") == CancelReason.STAFF_OTHER and not cleaned.get("note", "").strip():
            self.add_error("note", forms.ValidationError(_("Say why the ticket is cancelled."), code="required"))
        return cleaned


class CustomerLookupForm(forms.Form):
    """Intake, first step: the walk-in customer's phone number or email address."""

    find = forms.CharField(
        label=_("Customer's phone number or email address"),
        max_length=254,
        help_text=_("We look for their account; without one, a new account is opened with what you enter next."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "inputmode": "email"}),
        error_messages={"required": _("Enter the customer's phone number or email address.")},
    )

    def clean_find(self):
        return parse_lookup(self.cleaned_data["find"])


def parse_lookup(text):
    """("phone", E.164) or ("email", address) for what a clerk typed to find a customer; else ValidationError."""
    text = " ".join((text or "").split())
    if "@" in text:
        try:
            validate_email(text)
        except forms.ValidationError:
            raise forms.ValidationError(_("This is not an email address."), code="invalid") from None
        return ("email", text.lower())
    phone = parse_phone(text)
    if phone is None:
        raise forms.ValidationError(_("Enter a phone number or an email address."), code="invalid")
    return ("phone", phone)


class CounterIntakeForm(PhotoFieldsMixin, forms.Form):
    """A walk-in device: customer, device, fault, condition and photos, for Ticket.take_in().

    ``found`` are the customer accounts the first step found by phone or
    email; the clerk picks one of them, or "A new customer" (the only choice
    when none was found). Photos are kept as the clerk's StagedUploads
    whether the form is valid or not (``keep_photos()``), so a typo never
    costs a photo; the "Check" button re-shows the form with the warranty and
    the device's history without opening anything.
    """

    find = forms.CharField(widget=forms.HiddenInput, max_length=254)
    customer = forms.ChoiceField(
        label=_("Customer account"),
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose the customer's account, or “A new customer”.")},
    )
    contact_name = forms.CharField(
        label=_("Customer's name"), required=False, max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    contact_phone = PhoneNumberField(
        label=_("Phone number"),
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
        help_text=_("Messages about the repair go here. Its last four digits let the customer track it."),
    )
    contact_email = forms.EmailField(
        label=_("Email address"),
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
        help_text=_("A new customer's account is opened with it; they claim it with “Forgot your password?”."),
    )
    language = forms.ChoiceField(label=_("Language for messages"), choices=settings.LANGUAGES)

    staged = PublicIdsField(limit=MAX_DEVICE_PHOTOS + len(SINGLE_PHOTO_KINDS))
    remove_staged = PublicIdsField(limit=MAX_DEVICE_PHOTOS + len(SINGLE_PHOTO_KINDS))

    device_model = forms.ChoiceField(
        label=_("Device model"),
        error_messages={"required": _("Choose the model, or “Not in the list” at the end of the list.")},
    )
    device_other = forms.CharField(
        label=_("Brand and model"),
        required=False,
        max_length=120,
        help_text=_("Only when the device is not in the list."),
    )
    imei_or_serial = forms.CharField(
        label=_("IMEI or serial number"),
        max_length=40,
        help_text=_("Scan the box or dial *#06#; other devices: the serial on the back or in the settings."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    os_version = forms.CharField(label=_("Software version"), required=False, max_length=60)
    purchase_date = forms.DateField(
        label=_("Purchase date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("From the receipt or warranty card: with the model it gives the warranty."),
    )
    fault_category = forms.ChoiceField(
        label=_("Kind of problem"), error_messages={"required": _("Choose the kind of problem.")}
    )
    symptom_description = forms.CharField(
        label=_("What happens"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("In the customer's words: what they see, since when, what happened before."),
        error_messages={"required": _("Describe what happens.")},
    )
    fault_frequency = forms.ChoiceField(
        label=_("How often it happens"),
        choices=FaultFrequency.choices,
        initial=FaultFrequency.ALWAYS,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose how often it happens.")},
    )
    condition_notes = forms.CharField(
        label=_("Condition at intake"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Scratches, dents, cracks, missing parts, accessories left with the device. Printed on the receipt."),
    )
    receipt_photo = forms.FileField(
        label=_("Purchase receipt"),
        required=False,
        widget=forms.FileInput(attrs={"accept": PHOTO_TYPES, "capture": "environment"}),
    )
    warranty_card_photo = forms.FileField(
        label=_("Warranty card"),
        required=False,
        widget=forms.FileInput(attrs={"accept": PHOTO_TYPES, "capture": "environment"}),
    )
    device_photos = MultiplePhotoField(
        label=_("Photos of the device"),
        required=False,
        widget=MultiplePhotoInput(attrs={"accept": PHOTO_TYPES, "capture": "environment"}),
    )
    return_method = forms.ChoiceField(
        label=_("How the device goes back"),
        choices=ReturnMethod.choices,
        initial=ReturnMethod.PICKUP,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose how the device goes back.")},
    )
    return_address = forms.CharField(
        label=_("Return address"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Only when the device is shipped back."),
    )

    def __init__(self, *args, clerk, center, find, found, **kwargs):
        self.clerk = clerk
        self.center = center
        self.found = {str(account.pk): account for account in found}
        kind, value = find
        initial = kwargs.setdefault("initial", {})
        initial.setdefault("find", value)
        initial.setdefault("language", translation.get_language() or settings.LANGUAGE_CODE)
        if not found:
            initial.setdefault("customer", NEW_CUSTOMER)
            initial.setdefault("contact_phone" if kind == "phone" else "contact_email", value)
        elif len(found) == 1:
            account = found[0]
            initial.setdefault("customer", str(account.pk))
            initial.setdefault("contact_name", account.full_name)
            initial.setdefault("contact_phone", account.phone or (value if kind == "phone" else ""))
            initial.setdefault("contact_email", account.email)
        super().__init__(*args, **kwargs)

        self.fields["customer"].choices = [
            (pk, " · ".join(filter(None, [account.full_name, account.email, str(account.phone or "")])))
            for pk, account in self.found.items()
        ] + [(NEW_CUSTOMER, _("A new customer: open an account with the details below"))]
        if not found:
            self.fields["customer"].widget = forms.HiddenInput()
            # Only a new account can be opened: its name, phone and email are needed.
            for name, message in NEW_CUSTOMER_REQUIRED.items():
                self.fields[name].required = True
                self.fields[name].error_messages["required"] = message

        # One query per catalogue, whatever its size; the same rows validate the POST.
        self.device_models = {str(model.pk): model for model in DeviceModel.objects.filter(is_active=True)}
        self.faults = {str(fault.pk): fault for fault in FaultCategory.objects.filter(is_active=True)}
        by_brand = {}
        for pk, model in self.device_models.items():
            by_brand.setdefault(model.brand, []).append((pk, model.name))
        self.fields["device_model"].choices = [
            ("", _("Choose the model")),
            *by_brand.items(),
            (OTHER_DEVICE, _("Not in the list")),
        ]
        self.fields["fault_category"].choices = [("", _("Choose one"))] + [
            (pk, fault.display_name) for pk, fault in self.faults.items()
        ]
        self.fields["device_photos"].help_text = ngettext(
            "Up to %(count)d photo: every side, and the damage close up.",
            "Up to %(count)d photos: every side, and the damage close up.",
            MAX_DEVICE_PHOTOS,
        ) % {"count": MAX_DEVICE_PHOTOS}

        self.account = None  # after clean(): the chosen existing account, or None for a new customer
        self.new_photos = []  # (kind, ProcessedImage) of this POST that passed the pipeline
        self.carried = []  # the clerk's StagedUploads named by the hidden inputs, minus the removed
        self.removed = []
        self.staged_photos = []  # after keep_photos(): every photo of this intake so far

    def photo_fields(self):
        """Each photo input with the photos already kept for it."""
        return [
            (self[name], [upload for upload in self.staged_photos if upload.kind == kind])
            for name, kind in PHOTO_FIELDS
        ]

    # --- validation ---------------------------------------------------------------------

    def clean_remove_staged(self):
        remove = set(self.cleaned_data["remove_staged"])
        staged_ids = self.cleaned_data.get("staged") or []
        # Another user's ids find nothing here and are ignored.
        carried = list(StagedUpload.objects.owned_by(self.clerk).filter(public_id__in=staged_ids)) if staged_ids else []
        self.removed = [upload for upload in carried if upload.public_id in remove]
        self.carried = [upload for upload in carried if upload.public_id not in remove]
        return list(remove)

    def clean_device_model(self):
        value = self.cleaned_data["device_model"]
        return None if value == OTHER_DEVICE else self.device_models[value]

    def clean_imei_or_serial(self):
        return imei.normalise(self.cleaned_data["imei_or_serial"])

    def clean_purchase_date(self):
        purchased = self.cleaned_data["purchase_date"]
        if purchased and purchased > timezone.localdate():
            raise forms.ValidationError(_("The purchase date cannot be in the future."), code="future")
        return purchased

    def clean_fault_category(self):
        return self.faults[self.cleaned_data["fault_category"]]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("device_model") is not None:
            cleaned["device_other"] = ""
        elif "device_model" in cleaned and not cleaned.get("device_other"):
            self.add_error("device_other", _("The device is not in the list: write its brand and model here."))
        if cleaned.get("return_method") == ReturnMethod.SHIP_BACK:
            if not cleaned.get("return_address") and "return_address" not in self.errors:
                self.add_error("return_address", _("The device is shipped back: enter the address."))
        elif "return_method" in cleaned:
            cleaned["return_address"] = ""
        choice = cleaned.get("customer")
        if choice == NEW_CUSTOMER:
            self._clean_new_customer(cleaned)
        elif choice in self.found:
            self._clean_existing_customer(cleaned, self.found[choice])
        elif choice:
            self.add_error("customer", _("Choose the customer's account, or “A new customer”."))
        return cleaned

    def _clean_new_customer(self, cleaned):
        for name, message in NEW_CUSTOMER_REQUIRED.items():
            if not cleaned.get(name) and name not in self.errors:
                self.add_error(name, forms.ValidationError(message, code="required"))
        email = (cleaned.get("contact_email") or "").strip().lower()
        if email and get_user_model().objects.filter(email__iexact=email).exists():
            self.add_error(
                "contact_email",
                forms.ValidationError(
                    _(
                        "An account already uses this email address. To use it, look the customer up by "
                        "this address at the top of the page."
                    ),
                    code="taken",
                ),
            )

    def _clean_existing_customer(self, cleaned, account):
        """Empty contact fields take the account's details; what the clerk typed is for this ticket only."""
        self.account = account
        if not cleaned.get("contact_name") and "contact_name" not in self.errors:
            cleaned["contact_name"] = account.full_name
        if not cleaned.get("contact_phone") and "contact_phone" not in self.errors:
            if account.phone:
                cleaned["contact_phone"] = account.phone
            else:
                self.add_error("contact_phone", forms.ValidationError(_("Enter the customer's phone number."), code="required"))
        if not cleaned.get("contact_email") and "contact_email" not in self.errors:
            cleaned["contact_email"] = account.email

    # --- after validation -------------------------------------------------------------------

    def keep_photos(self):
        """Store this POST's photos that passed the pipeline and forget those the clerk removed.

        Call after is_valid(), whatever it said. ``staged_photos`` then lists
        every photo of this intake so far.
        """
        replaced = {kind for kind, _processed in self.new_photos if kind in SINGLE_PHOTO_KINDS}
        dropped = self.removed + [upload for upload in self.carried if upload.kind in replaced]
        if dropped:
            StagedUpload.objects.filter(pk__in=[upload.pk for upload in dropped]).delete_with_files()
        kept = [upload for upload in self.carried if upload.kind not in replaced]
        fresh = [StagedUpload.stage(self.clerk, kind, processed) for kind, processed in self.new_photos]
        self.new_photos, self.removed, self.carried = [], [], kept + fresh
        self.staged_photos = self.carried
        if fresh:
            StagedUpload.trim(self.clerk, keep=self.staged_photos)

    def warranty_preview(self):
        """The warranty the ticket would get, from the model and purchase date entered; None without a model."""
        data = getattr(self, "cleaned_data", {})
        if "device_model" not in data:
            return None
        probe = Ticket(device_model=data["device_model"], purchase_date=data.get("purchase_date"))
        return {"status": WarrantyStatus(probe.computed_warranty_status()), "expires_on": probe.warranty_expires_on}

    def take_in(self):
        """Open the ticket, receive the device and attach the photos (Ticket.take_in); call after keep_photos()."""
        data = self.cleaned_data
        fields = {name: data[name] for name in COUNTER_TICKET_FIELDS}
        if self.account is not None:
            who = {"customer": self.account}
        else:
            who = {
                "new_customer": {
                    "email": data["contact_email"].strip().lower(),
                    "full_name": data["contact_name"],
                    "phone": data["contact_phone"],
                    "language": data["language"],
                }
            }
        return Ticket.take_in(by=self.clerk, service_center=self.center, photos=self.staged_photos, **who, **fields)
