"""Private photos (tickets.views.attachments): who may see a ticket's photos, and how they are served."""

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import COUNTER_CLERK, PHONE_AGENT, TECHNICIAN
from tickets import images
from tickets.models import Attachment, AttachmentKind

from .factories import make_center, make_staff

URL_NAMES = ["tickets:attachment", "tickets:attachment_thumbnail"]


@pytest.fixture
def attachment(ticket, customer):
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(out, "PNG")
    processed = images.process(SimpleUploadedFile("receipt.png", out.getvalue(), content_type="image/png"))
    return Attachment.add(ticket, AttachmentKind.RECEIPT, processed, by=customer)


def fetch(client, user, url_name, attachment, method="get"):
    """The response, with a streamed body read into ``served`` and the file closed."""
    if user is not None:
        client.force_login(user)
    response = getattr(client, method)(reverse(url_name, kwargs={"public_id": attachment.public_id}))
    if response.streaming:
        response.served = b"".join(response.streaming_content)
        response.close()
    return response


def assert_served_privately(response, field):
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    cache_control = response["Cache-Control"]
    assert "private" in cache_control
    assert "public" not in cache_control
    assert response["X-Content-Type-Options"] == "nosniff"
    with field.open("rb") as handle:
        assert response.served == handle.read()


# --- Who may see a photo ----------------------------------------------------------------


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_the_tickets_customer_gets_the_photo_with_private_cache_headers(client, customer, attachment, url_name):
    response = fetch(client, customer, url_name, attachment)

    field = attachment.image if url_name == "tickets:attachment" else attachment.thumbnail
    assert_served_privately(response, field)


def test_the_thumbnail_is_the_small_copy(client, customer, attachment):
    response = fetch(client, customer, "tickets:attachment_thumbnail", attachment)

    assert Image.open(io.BytesIO(response.served)).size == (320, 240)


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_another_customer_gets_404(client, other_customer, attachment, url_name):
    assert fetch(client, other_customer, url_name, attachment).status_code == 404


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_anonymous_visitor_gets_404_not_a_login_redirect(client, attachment, url_name):
    assert fetch(client, None, url_name, attachment).status_code == 404


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_technician_of_the_tickets_center_gets_the_photo(client, technician, attachment, url_name):
    response = fetch(client, technician, url_name, attachment)

    field = attachment.image if url_name == "tickets:attachment" else attachment.thumbnail
    assert_served_privately(response, field)


@pytest.mark.parametrize("role", [PHONE_AGENT, COUNTER_CLERK])
def test_other_roles_at_the_tickets_center_get_the_photo(client, center, attachment, role):
    staff = make_staff(role, [center])

    assert fetch(client, staff, "tickets:attachment", attachment).status_code == 200


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_technician_of_another_center_gets_404(client, other_center, attachment, url_name):
    elsewhere = make_staff(TECHNICIAN, [other_center])

    assert fetch(client, elsewhere, url_name, attachment).status_code == 404


def test_technician_working_at_several_centers_including_the_tickets_gets_the_photo(client, center, attachment):
    staff = make_staff(TECHNICIAN, [make_center(), center])

    assert fetch(client, staff, "tickets:attachment", attachment).status_code == 200


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_supervisor_gets_the_photo_of_any_center(client, supervisor, attachment, url_name):
    assert supervisor.service_centers.count() == 0

    response = fetch(client, supervisor, url_name, attachment)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"


def test_staff_without_a_role_at_the_tickets_center_gets_404(client, center, attachment, django_user_model):
    no_role = django_user_model.objects.create_user(email="temp@example.com", password="x", is_staff=True)
    no_role.service_centers.set([center])

    assert fetch(client, no_role, "tickets:attachment", attachment).status_code == 404


def test_deactivated_technician_gets_404(client, technician, attachment):
    client.force_login(technician)
    technician.is_active = False
    technician.save()

    assert fetch(client, None, "tickets:attachment", attachment).status_code == 404


# --- What the URLs accept ----------------------------------------------------------------------


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_post_is_refused(client, customer, attachment, url_name):
    response = fetch(client, customer, url_name, attachment, method="post")

    assert response.status_code == 405
    assert Attachment.objects.filter(pk=attachment.pk).exists()


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_head_is_allowed_for_the_customer(client, customer, attachment, url_name):
    response = fetch(client, customer, url_name, attachment, method="head")

    assert response.status_code == 200
    assert response.served == b""


def test_unknown_photo_id_gets_404(client, customer, attachment):
    client.force_login(customer)

    assert client.get(reverse("tickets:attachment", kwargs={"public_id": uuid.uuid4()})).status_code == 404


def test_photo_urls_carry_the_public_id_not_the_database_id(attachment):
    url = reverse("tickets:attachment", kwargs={"public_id": attachment.public_id})

    assert str(attachment.public_id) in url
    assert f"/{attachment.pk}/" not in url


def test_photo_missing_from_storage_gets_404(client, customer, attachment):
    attachment.image.storage.delete(attachment.image.name)

    assert fetch(client, customer, "tickets:attachment", attachment).status_code == 404
