"""Customer accounts: sign up, log in and out, password reset, profile with service credit, remembered language."""

import re

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.urls import reverse
from django.utils import translation

from accounts.models import User

from .factories import make_staff, make_ticket

PASSWORD = "correct horse battery"  # the factories' password
NEW_PASSWORD = "Seven-ripe-lychees-42"
LANGUAGE_COOKIE = settings.LANGUAGE_COOKIE_NAME


def signup_data(**overrides):
    data = {
        "full_name": "Zhang San",
        "email": "zhang@example.com",
        "phone": "138 0013 8001",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        "language": "en",
    }
    data.update(overrides)
    return data


def log_in(client, email, password=PASSWORD, headers=None, **extra):
    return client.post(reverse("accounts:login"), {"username": email, "password": password, **extra}, headers=headers)


def logged_in_user_id(client):
    return client.session.get(SESSION_KEY)


# --- Sign up -------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_up_creates_the_account_with_an_e164_phone_logs_in_and_saves_the_language(client):
    response = client.post(reverse("accounts:signup"), signup_data(email="Zhang@Example.com ", language="zh-hans"))

    assert response.status_code == 302
    assert response.url == reverse("tickets:start")
    user = User.objects.get(email="zhang@example.com")
    assert user.full_name == "Zhang San"
    assert str(user.phone) == "+8613800138001"
    assert user.language == "zh-hans"
    assert user.check_password(NEW_PASSWORD)
    assert logged_in_user_id(client) == str(user.pk)
    assert response.cookies[LANGUAGE_COOKIE].value == "zh-hans"


@pytest.mark.django_db
def test_sign_up_greets_the_new_customer_with_a_message(client):
    response = client.post(reverse("accounts:signup"), signup_data(), follow=True)
    assert "Your account is ready." in response.content.decode()


@pytest.mark.django_db
def test_sign_up_accepts_an_international_number(client):
    client.post(reverse("accounts:signup"), signup_data(phone="+44 20 7946 0958"))
    assert str(User.objects.get(email="zhang@example.com").phone) == "+442079460958"


@pytest.mark.django_db
def test_sign_up_preselects_the_language_of_the_request(client):
    response = client.get(reverse("accounts:signup"), headers={"accept-language": "zh-hans"})
    assert response.context["form"]["language"].value() == "zh-hans"
    response = client.get(reverse("accounts:signup"), headers={"accept-language": "en"})
    assert response.context["form"]["language"].value() == "en"


@pytest.mark.django_db
def test_sign_up_goes_on_to_next_when_it_stays_on_this_site(client):
    response = client.post(reverse("accounts:signup") + "?next=/my/tickets/", signup_data())
    assert response.url == "/my/tickets/"


@pytest.mark.django_db
def test_sign_up_ignores_an_off_site_next(client):
    response = client.post(reverse("accounts:signup"), signup_data(next="https://evil.example.com/"))
    assert response.url == reverse("tickets:start")


def test_sign_up_with_a_taken_email_in_other_case_re_renders_with_what_was_typed(client, customer):
    response = client.post(reverse("accounts:signup"), signup_data(email="WEI@Example.COM"))

    assert response.status_code == 200
    assert User.objects.filter(email__iexact="wei@example.com").count() == 1
    form = response.context["form"]
    assert form.errors["email"] == [str(form.email_taken_message)]
    html = response.content.decode()
    assert "An account with this email address already exists." in html
    assert 'value="Zhang San"' in html
    assert 'value="WEI@Example.COM"' in html
    assert 'value="138 0013 8001"' in html
    assert NEW_PASSWORD not in html
    assert logged_in_user_id(client) is None


@pytest.mark.django_db
def test_sign_up_marks_the_field_in_error_for_assistive_technology(client):
    response = client.post(reverse("accounts:signup"), signup_data(phone="12345"))
    html = response.content.decode()
    phone_input = re.search(r'<input type="tel"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in phone_input
    assert 'aria-describedby="id_phone_helptext id_phone_error"' in phone_input
    assert 'id="id_phone_error"' in html
    assert 'href="#id_phone"' in html  # the summary at the top links to the field


@pytest.mark.django_db
def test_sign_up_rejects_a_phone_number_that_cannot_exist(client):
    response = client.post(reverse("accounts:signup"), signup_data(phone="12345"))
    assert response.status_code == 200
    assert response.context["form"].errors["phone"] == [
        "Enter a valid phone number, such as 131 2345 6789, or a number from abroad starting with + and the country code."
    ]
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "password, message",
    [
        ("12345678", "This password is too common."),
        ("short1!", "This password is too short. It must contain at least 8 characters."),
        ("zhang@example.com", "The password is too similar to the email address."),
    ],
)
def test_sign_up_rejects_a_weak_password(client, password, message):
    response = client.post(reverse("accounts:signup"), signup_data(password1=password, password2=password))
    assert response.status_code == 200
    assert message in response.context["form"].errors["password1"]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_sign_up_rejects_two_different_passwords(client):
    response = client.post(reverse("accounts:signup"), signup_data(password2=NEW_PASSWORD + "x"))
    assert "The two password fields didn’t match." in response.context["form"].errors["password2"]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_sign_up_form_labels_every_input_and_asks_browsers_to_fill_it_in(client):
    html = client.get(reverse("accounts:signup")).content.decode()
    assert html.count("<h1") == 1
    for name, autocomplete in [
        ("full_name", "name"),
        ("email", "email"),
        ("phone", "tel"),
        ("password1", "new-password"),
        ("password2", "new-password"),
    ]:
        assert f'<label for="id_{name}">' in html
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert f'autocomplete="{autocomplete}"' in field
    assert '<label for="id_language">' in html
    assert "<script" not in html and "style=" not in html


# --- Log in and out ---------------------------------------------------------------


def test_log_in_with_the_right_password_goes_to_the_start_page(client, customer):
    response = log_in(client, "Wei@Example.com")
    assert response.status_code == 302
    assert response.url == reverse("tickets:start")
    assert logged_in_user_id(client) == str(customer.pk)


def test_log_in_with_a_wrong_password_says_so_and_stays_logged_out(client, customer):
    response = log_in(client, customer.email, "not my password")
    assert response.status_code == 200
    assert "The email address or the password is not right." in response.content.decode()
    assert logged_in_user_id(client) is None
    assert 'value="wei@example.com"' in response.content.decode()


def test_staff_who_log_in_here_go_to_the_back_office(client, technician):
    response = log_in(client, technician.email)
    assert response.url == reverse("admin:index")


def test_staff_with_a_next_go_there(client, clerk):
    response = log_in(client, clerk.email, next="/counter/")
    assert response.url == "/counter/"


def test_log_in_goes_on_to_next(client, customer):
    response = client.post(reverse("accounts:login") + "?next=/my/tickets/", {"username": customer.email, "password": PASSWORD})
    assert response.url == "/my/tickets/"


@pytest.mark.parametrize("next_url", ["https://evil.example.com/", "//evil.example.com/", "javascript:alert(1)"])
def test_log_in_ignores_an_off_site_next(client, customer, next_url):
    response = log_in(client, customer.email, next=next_url)
    assert response.url == reverse("tickets:start")


@pytest.mark.django_db
def test_the_login_page_keeps_next_in_the_form(client):
    html = client.get(reverse("accounts:login") + "?next=/my/tickets/").content.decode()
    assert '<input type="hidden" name="next" value="/my/tickets/">' in html


def test_too_many_wrong_passwords_lock_the_account_with_a_clear_page(client, customer, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for email in ["wei@example.com", "WEI@example.com"]:  # the case of the email does not buy more attempts
        assert log_in(client, email, "wrong").status_code == 200
    response = log_in(client, "Wei@Example.com", "wrong")
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many attempts to log in" in html
    assert "Please wait 15 minutes, then try again." in html
    # Even the right password is refused while the lock lasts.
    assert log_in(client, customer.email).status_code == 429
    assert logged_in_user_id(client) is None


def test_a_new_password_lifts_the_lock(client, customer, settings, mailoutbox):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        log_in(client, customer.email, "wrong")
    assert log_in(client, customer.email).status_code == 429

    client.post(reverse("accounts:password_reset"), {"email": customer.email})
    path = re.search(r"http://testserver(/accounts/password-reset/\S+/)", mailoutbox[0].body).group(1)
    form_url = client.get(path).url
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert log_in(client, customer.email, NEW_PASSWORD).status_code == 302


def test_log_out_refuses_get(client, customer):
    client.force_login(customer)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert logged_in_user_id(client) == str(customer.pk)


def test_log_out_with_post_logs_out_and_says_so(client, customer):
    client.force_login(customer)
    response = client.post(reverse("accounts:logout"))
    assert response.url == reverse("tickets:start")
    assert logged_in_user_id(client) is None
    assert "You are logged out." in client.get(response.url).content.decode()


def test_log_out_needs_the_csrf_token(customer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    assert client.post(reverse("accounts:logout")).status_code == 403
    assert logged_in_user_id(client) == str(customer.pk)


# --- Password reset -------------------------------------------------------------------


def test_password_reset_sends_a_plain_text_email_whose_link_sets_a_new_password(client, customer, mailoutbox):
    response = client.post(reverse("accounts:password_reset"), {"email": "WEI@example.com"})
    assert response.url == reverse("accounts:password_reset_done")
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == ["wei@example.com"]
    assert email.alternatives == []
    assert "<" not in email.body

    path = re.search(r"http://testserver(/accounts/password-reset/\S+/)", email.body).group(1)
    form_url = client.get(path).url  # Django swaps the token for a session value
    assert client.get(form_url).context["validlink"]
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.url == reverse("accounts:password_reset_complete")

    assert log_in(client, customer.email, PASSWORD).status_code == 200  # the old one no longer works
    assert log_in(client, customer.email, NEW_PASSWORD).status_code == 302
    # The link works once.
    assert client.get(path, follow=True).context["validlink"] is False


def test_password_reset_for_an_unknown_email_looks_the_same_and_sends_nothing(client, db, mailoutbox):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response.url == reverse("accounts:password_reset_done")
    assert mailoutbox == []


def test_password_reset_email_is_written_in_the_accounts_language(client, customer, mailoutbox, monkeypatch):
    from django.contrib.auth import forms as auth_forms

    languages = []
    render = auth_forms.loader.render_to_string

    def spy(*args, **kwargs):
        languages.append(translation.get_language())
        return render(*args, **kwargs)

    monkeypatch.setattr(auth_forms.loader, "render_to_string", spy)
    customer.language = "zh-hans"
    customer.save()
    client.post(reverse("accounts:password_reset"), {"email": customer.email}, headers={"accept-language": "en"})
    assert languages == ["zh-hans", "zh-hans"]  # subject and body
    assert len(mailoutbox) == 1


# --- Profile -------------------------------------------------------------------------------


def test_profile_requires_login(client, db):
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302
    assert response.url == reverse("accounts:login") + "?next=" + reverse("accounts:profile")


def profile_data(user, **overrides):
    data = {"full_name": user.full_name, "email": user.email, "phone": str(user.phone), "language": user.language}
    data.update(overrides)
    return data


def test_profile_edits_are_saved(client, customer):
    client.force_login(customer)
    response = client.post(
        reverse("accounts:profile"),
        profile_data(customer, full_name="Wang  Wei Jr", phone="139 0013 9001", language="zh-hans"),
    )
    assert response.url == reverse("accounts:profile")
    customer.refresh_from_db()
    assert (customer.full_name, str(customer.phone), customer.language) == ("Wang Wei Jr", "+8613900139001", "zh-hans")
    assert response.cookies[LANGUAGE_COOKIE].value == "zh-hans"


def test_profile_shows_the_phone_in_national_format(client, customer):
    client.force_login(customer)
    assert 'value="138 0013 8000"' in client.get(reverse("accounts:profile")).content.decode()


def test_profile_with_an_error_re_renders_what_was_typed(client, customer):
    client.force_login(customer)
    response = client.post(reverse("accounts:profile"), profile_data(customer, full_name="Wang Wei II", phone="abc"))
    assert response.status_code == 200
    assert "phone" in response.context["form"].errors
    assert 'value="Wang Wei II"' in response.content.decode()
    customer.refresh_from_db()
    assert customer.full_name == "Wang Wei"


def test_changing_the_email_asks_for_the_current_password(client, customer):
    client.force_login(customer)
    response = client.post(reverse("accounts:profile"), profile_data(customer, email="wei.new@example.com"))
    assert "current_password" in response.context["form"].errors
    response = client.post(
        reverse("accounts:profile"), profile_data(customer, email="wei.new@example.com", current_password="wrong")
    )
    assert response.context["form"].errors["current_password"] == ["This is not your current password."]
    customer.refresh_from_db()
    assert customer.email == "wei@example.com"

    response = client.post(
        reverse("accounts:profile"), profile_data(customer, email="Wei.New@example.com", current_password=PASSWORD)
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "wei.new@example.com"


def test_profile_refuses_an_email_another_account_uses(client, customer, other_customer):
    client.force_login(customer)
    response = client.post(
        reverse("accounts:profile"), profile_data(customer, email="LI@example.com", current_password=PASSWORD)
    )
    assert response.context["form"].errors["email"]
    customer.refresh_from_db()
    assert customer.email == "wei@example.com"


def test_profile_shows_the_service_credit_level_and_the_cancellations_that_counted(
    client, customer, center, django_assert_max_num_queries
):
    counted = make_ticket(customer=customer, center=center)
    counted.perform("cancel", by=None, reason="no_response")
    free = make_ticket(customer=customer, center=center)
    free.perform("cancel", by=customer, reason="no_longer_needed")
    client.force_login(customer)

    with django_assert_max_num_queries(4):
        response = client.get(reverse("accounts:profile"))

    credit = response.context["credit"]
    assert (credit.score, credit.level) == (75, "fair")
    html = response.content.decode()
    assert "Fair" in html
    assert counted.number in html and free.number in html
    assert "No response to a contact request" in html
    assert "Yes, −25 points" in html
    assert "Your first cancellation in twelve months does not count." in html
    assert "at most 1 open repair ticket submitted online" in html


def test_profile_query_count_does_not_grow_with_the_cancellations(client, customer, center, django_assert_max_num_queries):
    for _ in range(5):
        make_ticket(customer=customer, center=center).perform("cancel", by=None, reason="device_not_received")
    client.force_login(customer)
    with django_assert_max_num_queries(4):
        response = client.get(reverse("accounts:profile"))
    assert response.context["credit"].level == "low"
    assert response.content.decode().count("Yes, −25 points") == 5


def test_profile_of_a_customer_without_cancellations_says_none(client, customer):
    client.force_login(customer)
    response = client.get(reverse("accounts:profile"))
    assert response.context["credit"].level == "good"
    assert "None. Thank you!" in response.content.decode()


def test_the_low_level_policy_follows_the_setting(client, customer, settings):
    settings.SERVICE_CREDIT_LOW_MAX_OPEN_TICKETS = 3
    client.force_login(customer)
    assert "at most 3 open repair tickets submitted online" in client.get(reverse("accounts:profile")).content.decode()


# --- Language --------------------------------------------------------------------------------


def test_switching_language_while_signed_in_is_saved_on_the_account(client, customer):
    client.force_login(customer)
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "/accounts/profile/"})
    assert response.url == "/accounts/profile/"
    assert response.cookies[LANGUAGE_COOKIE].value == "zh-hans"
    customer.refresh_from_db()
    assert customer.language == "zh-hans"


def test_logging_in_again_restores_the_saved_language(client, customer):
    client.force_login(customer)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    client.post(reverse("accounts:logout"))

    fresh = type(client)()  # another browser: no language cookie
    response = log_in(fresh, customer.email, headers={"accept-language": "en"})
    assert response.cookies[LANGUAGE_COOKIE].value == "zh-hans"
    page = fresh.get(reverse("accounts:profile"), headers={"accept-language": "en"})
    assert page["Content-Language"] == "zh-hans"


def test_switching_language_signed_out_only_sets_the_cookie(client, customer):
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert response.cookies[LANGUAGE_COOKIE].value == "zh-hans"
    customer.refresh_from_db()
    assert customer.language == "en"


def test_an_unknown_language_is_not_saved_on_the_account(client, customer):
    client.force_login(customer)
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    customer.refresh_from_db()
    assert customer.language == "en"


def test_switching_language_refuses_get(client, customer):
    client.force_login(customer)
    assert client.get(reverse("set_language") + "?language=zh-hans").status_code == 405
    customer.refresh_from_db()
    assert customer.language == "en"


# --- Every page, in both languages ------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize(
    "name, signed_in",
    [
        ("accounts:signup", False),
        ("accounts:login", False),
        ("accounts:password_reset", False),
        ("accounts:password_reset_done", False),
        ("accounts:password_reset_complete", False),
        ("accounts:profile", True),
    ],
)
def test_every_account_page_renders_in_each_language(client, customer, name, signed_in, language):
    if signed_in:
        client.force_login(customer)
    client.cookies[LANGUAGE_COOKIE] = language
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert response["Content-Language"] == language
    assert response.content.decode().count("<h1") == 1


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_an_invalid_reset_link_and_the_lockout_page_render_in_each_language(client, customer, settings, language):
    settings.AXES_FAILURE_LIMIT = 1
    client.cookies[LANGUAGE_COOKIE] = language
    response = client.get(reverse("accounts:password_reset_confirm", args=["MQ", "bad-token"]))
    assert response.status_code == 200
    assert response.context["validlink"] is False
    response = log_in(client, customer.email, "wrong")
    assert response.status_code == 429
    assert response["Content-Language"] == language


def test_staff_profile_has_no_service_credit(client, db):
    staff = make_staff("Technician", email="t2@example.com")
    client.force_login(staff)
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 200
    assert "credit" not in response.context
