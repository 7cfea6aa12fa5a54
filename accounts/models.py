from functools import cached_property

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

# Role groups, created by a data migration (accounts/migrations/0003_roles.py).
PHONE_AGENT = "Phone agent"
COUNTER_CLERK = "Counter clerk"
TECHNICIAN = "Technician"
SUPERVISOR = "Supervisor"
ROLES = (PHONE_AGENT, COUNTER_CLERK, TECHNICIAN, SUPERVISOR)

# Held by supervisors: see and act on tickets of every service center.
ALL_CENTERS_PERMISSION = "tickets.view_all_centers"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_walk_in_customer(self, email, full_name, phone="", language=None):
        """A customer account opened by a clerk at the store counter, with no password anyone knows.

        The customer claims it later through "Forgot your password?". Its
        password is random and thrown away rather than marked unusable,
        because Django's password reset only serves accounts with a usable
        password.
        """
        import secrets

        extra = {"full_name": full_name, "phone": phone or ""}
        if language:
            extra["language"] = language
        return self.create_user(email, password=secrets.token_urlsafe(32), **extra)

    def create_superuser(self, email, password=None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, email):
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    """Everyone who signs in: customers, and staff (``is_staff``) in role groups.

    Customers sign in with their email address. Staff belong to one or more
    service centers and see only those centers' tickets, unless they hold
    the all-centers permission (supervisors).
    """

    email = models.EmailField(_("email address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150)
    phone = PhoneNumberField(_("phone number"), blank=True, db_index=True)
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    notify_by_email = models.BooleanField(_("email me about my repairs"), default=True)
    notify_by_sms = models.BooleanField(_("text me about my repairs"), default=True)
    service_centers = models.ManyToManyField(
        "tickets.ServiceCenter",
        verbose_name=_("service centers"),
        related_name="staff",
        blank=True,
        help_text=_("Staff see and act on the tickets of these service centers."),
    )
    counter_center = models.ForeignKey(
        "tickets.ServiceCenter",
        verbose_name=_("last counter service center"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        help_text=_("The service center this clerk last worked the store counter of; offered first next time."),
    )
    is_staff = models.BooleanField(
        _("staff status"), default=False, help_text=_("Staff can sign in to the back office.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self):
        return f"{self.full_name} <{self.email}>" if self.full_name else self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def save(self, *args, **kwargs):
        if self.email:
            self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    def get_full_name(self):
        return self.full_name

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @cached_property
    def sees_all_centers(self):
        return self.is_active and self.is_staff and self.has_perm(ALL_CENTERS_PERMISSION)

    @cached_property
    def center_ids(self):
        """Ids of the service centers whose tickets this staff member works."""
        if not (self.is_active and self.is_staff):
            return frozenset()
        return frozenset(self.service_centers.values_list("pk", flat=True))

    def works_at(self, service_center_id):
        return self.sees_all_centers or service_center_id in self.center_ids
