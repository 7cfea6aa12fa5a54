"""The customer's account forms: sign up, log in, profile, password reset."""

import phonenumbers
from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordMixin
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField

from .models import User


def language_choices():
    """Each language named in itself, so a reader of either finds their own."""
    return [(code, translation.get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES]


def request_language():
    """The language of the current request, if it is one an account can have."""
    language = translation.get_language()
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def mobile_example(region):
    """A made-up mobile number of the region, written the way people there write it."""
    number = region and phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if not number:
        return "+8613123456789"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def email_taken(email, exclude_pk=None):
    users = User.objects.filter(email__iexact=email)
    if exclude_pk is not None:
        users = users.exclude(pk=exclude_pk)
    return users.exists()


class AccountDetailsForm(forms.ModelForm):
    """Name, email, phone and language: the fields sign-up and the profile share."""

    phone = PhoneNumberField(
        label=_("Mobile phone number"),
        region=settings.PHONENUMBER_DEFAULT_REGION,
        help_text=_("We call or text you about your repairs. Numbers from abroad start with + and the country code."),
    )
    language = forms.ChoiceField(
        label=_("Language for messages"),
        help_text=_("The language of our emails and text messages, and of this site when you log in."),
    )

    class Meta:
        model = User
        fields = ["full_name", "email", "phone", "language"]
        widgets = {
            "full_name": forms.TextInput(attrs={"autocomplete": "name"}),
            "email": forms.EmailInput(attrs={"autocomplete": "email"}),
        }

    email_taken_message = _(
        "An account with this email address already exists. Log in, or reset your password if you forgot it."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        phone = self.fields["phone"]
        phone.widget.attrs["autocomplete"] = "tel"
        phone.error_messages["invalid"] = _(
            "Enter a valid phone number, such as %(example)s, or a number from abroad starting with + and the country code."
        ) % {"example": mobile_example(phone.region)}
        self.fields["language"].choices = language_choices()

    def clean_full_name(self):
        return " ".join(self.cleaned_data["full_name"].split())

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if email_taken(email, exclude_pk=self.instance.pk):
            raise forms.ValidationError(self.email_taken_message, code="email_taken")
        return email


class SignupForm(SetPasswordMixin, AccountDetailsForm):
    password1, password2 = SetPasswordMixin.create_password_fields(
        label1=_("Password"), label2=_("Password again")
    )

    class Meta(AccountDetailsForm.Meta):
        pass

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("language", request_language())
        super().__init__(*args, **kwargs)
        self.fields["full_name"].widget.attrs["autofocus"] = True

    def clean(self):
        self.validate_passwords()
        return super().clean()

    def _post_clean(self):
        super()._post_clean()
        # The instance now carries the typed name and email, so the
        # similarity validator can compare the password against them.
        self.validate_password_for_user(self.instance, password_field_name="password1")

    def save(self, commit=True):
        user = super().save(commit=False)
        return self.set_password_and_save(user, commit=commit)


def lockout_username(request, credentials=None):
    """The login name django-axes counts failures against (its AXES_USERNAME_CALLABLE).

    Our form and the admin's both post ``username``, while axes' own backend
    passes the value under USERNAME_FIELD (``email``): read either, and lower
    the case, so "Wei@Example.com" and "wei@example.com" share one counter.
    """
    data = credentials if credentials is not None else getattr(request, "data", request.POST)
    value = data.get("username") or data.get(User.USERNAME_FIELD) or ""
    return value.strip().lower() or None


class LoginForm(AuthenticationForm):
    """Email and password. The email travels as ``username`` (what django-axes and the admin expect)."""

    username = forms.EmailField(
        label=_("Email address"),
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    error_messages = {
        "invalid_login": _("The email address or the password is not right. Check both and try again."),
        "inactive": _("This account is closed. Please contact us."),
    }

    def clean_username(self):
        return self.cleaned_data["username"].strip().lower()


class ProfileForm(AccountDetailsForm):
    """The customer's details. Changing the email address asks for the password."""

    current_password = forms.CharField(
        label=_("Current password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Needed only when you change your email address."),
    )

    class Meta(AccountDetailsForm.Meta):
        fields = [*AccountDetailsForm.Meta.fields, "notify_by_email", "notify_by_sms"]

    def __init__(self, *args, request, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)
        self.original_email = self.instance.email

    @property
    def email_changed(self):
        return self.cleaned_data.get("email", self.original_email) != self.original_email

    def clean(self):
        cleaned_data = super().clean()
        if self.email_changed:
            password = cleaned_data.get("current_password")
            if not password:
                self.add_error(
                    "current_password",
                    forms.ValidationError(_("Enter your current password to change your email address."), code="required"),
                )
            # Through authenticate() so django-axes counts wrong guesses here too.
            elif authenticate(self.request, username=self.original_email, password=password) != self.instance:
                self.add_error(
                    "current_password",
                    forms.ValidationError(_("This is not your current password."), code="password_incorrect"),
                )
        return cleaned_data


class EmailPasswordResetForm(PasswordResetForm):
    """Django's reset form, with the email written in the account's own language."""

    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        with translation.override(getattr(context["user"], "language", None) or settings.LANGUAGE_CODE):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)
