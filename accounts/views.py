"""The customer's account pages: sign up, log in and out, password reset, profile, language."""

import copy

from axes.utils import reset as reset_lockouts
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import i18n
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from .credit import CUSTOMER_CANCELLATION_PENALTY, FULL, SYSTEM_CANCELLATION_PENALTY, Level, credit_for
from .forms import EmailPasswordResetForm, LoginForm, ProfileForm, SignupForm

# The backend that logs a user in right after sign-up (django-axes' backend only watches).
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _safe_next(request):
    """The ``next`` URL of the request if it stays on this site, else None."""
    url = request.POST.get("next") or request.GET.get("next")
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return None


def _remember_language(response, language):
    """Set the language cookie LocaleMiddleware reads, as django.views.i18n.set_language does."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response


def _known_language(language):
    return language if language in dict(settings.LANGUAGES) else None


@sensitive_post_parameters("password1", "password2")
@csrf_protect
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def signup(request):
    next_url = _safe_next(request)
    if request.method == "POST":
        form = SignupForm(request.POST)
        if form.is_valid():
            user = form.save()
            auth_login(request, user, backend=MODEL_BACKEND)
            translation.activate(user.language)
            messages.success(request, _("Welcome, %(name)s. Your account is ready.") % {"name": user.get_full_name() or user.email})
            return _remember_language(redirect(next_url or "tickets:start"), user.language)
    else:
        form = SignupForm()
    return render(request, "accounts/signup.html", {"form": form, "next": next_url, "nav": "signup"})


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def login(request):
    """Log in by email and password; django-axes sees every attempt through ``authenticate(request, …)``.

    Staff land in the back office unless ``next`` says where they were going.
    """
    next_url = _safe_next(request)
    if request.method == "POST":
        form = LoginForm(request, data=request.POST)
        if form.is_valid():
            user = form.get_user()
            auth_login(request, user)
            language = _known_language(user.language) or translation.get_language()
            translation.activate(language)
            messages.success(request, _("You are logged in. Welcome back, %(name)s.") % {"name": user.get_full_name() or user.email})
            default = reverse("admin:index") if user.is_staff else reverse("tickets:start")
            return _remember_language(redirect(next_url or default), language)
    else:
        form = LoginForm(request)
    return render(request, "accounts/login.html", {"form": form, "next": next_url, "nav": "login"})


@require_POST
def logout(request):
    auth_logout(request)
    messages.success(request, _("You are logged out."))
    return redirect("tickets:start")


@login_required(login_url="accounts:login")
@sensitive_post_parameters("current_password")
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def profile(request):
    # The form edits a copy, so a rejected edit never shows up in the page header.
    account = copy.copy(request.user)
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=account, request=request)
        if form.is_valid():
            user = form.save()
            translation.activate(user.language)
            messages.success(request, _("Your details are saved."))
            return _remember_language(redirect("accounts:profile"), user.language)
    else:
        form = ProfileForm(instance=account, request=request)
    context = {"form": form, "nav": "profile"}
    if not request.user.is_staff:
        context.update(
            credit=credit_for(request.user),
            levels=Level,
            full_score=FULL,
            customer_penalty=CUSTOMER_CANCELLATION_PENALTY,
            system_penalty=SYSTEM_CANCELLATION_PENALTY,
            low_max_open_tickets=settings.SERVICE_CREDIT_LOW_MAX_OPEN_TICKETS,
        )
    return render(request, "accounts/profile.html", context)


@require_POST
def set_language(request):
    """Django's set_language, which also remembers the choice on a signed-in account."""
    response = i18n.set_language(request)
    language = _known_language(request.POST.get(i18n.LANGUAGE_QUERY_PARAMETER))
    user = request.user
    if language and user.is_authenticated and user.language != language:
        user.language = language
        user.save(update_fields=["language"])
    return response


# Password reset: Django's four views, with our templates and the email in the account's language.
password_reset = auth_views.PasswordResetView.as_view(
    form_class=EmailPasswordResetForm,
    template_name="registration/password_reset_form.html",
    email_template_name="registration/password_reset_email.html",
    subject_template_name="registration/password_reset_subject.txt",
    success_url=reverse_lazy("accounts:password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="registration/password_reset_done.html",
)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        # Whoever followed the emailed link owns the address: a lock-out from
        # wrong guesses (perhaps someone else's) no longer applies to them.
        reset_lockouts(username=form.user.email)
        return response


password_reset_confirm = PasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="registration/password_reset_complete.html",
)
