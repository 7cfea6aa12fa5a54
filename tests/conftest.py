import pytest
from django.db import connection

from accounts.models import COUNTER_CLERK, PHONE_AGENT, SUPERVISOR, TECHNICIAN

from .factories import make_center, make_customer, make_staff, make_ticket


@pytest.fixture(autouse=True, scope="session")
def _jobs_run_inline():
    """django-q2 runs every queued job inline during tests (its ``sync`` mode)."""
    from django_q.conf import Conf

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Conf, "SYNC", True)
        yield


def on_postgres():
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    skip = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://…")
    for item in items:
        if "postgres" in item.keywords and "postgresql" not in engine:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ZEAL_RAISE = True  # an N+1 query in any view fails the test


@pytest.fixture(autouse=True)
def _language_reset():
    """A request in Chinese must not leave Chinese switched on for the next test."""
    from django.utils import translation

    yield
    translation.activate("en")


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Each test stores photos in its own folder."""
    storages = dict(settings.STORAGES)
    storages["default"] = {**storages["default"], "OPTIONS": {"location": tmp_path / "private", "base_url": None}}
    settings.STORAGES = storages
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture
def center(db):
    return make_center("sh-xuhui", name="Shanghai Xuhui")


@pytest.fixture
def other_center(db):
    return make_center("bj-chaoyang", name="Beijing Chaoyang")


@pytest.fixture
def customer(db):
    return make_customer(email="wei@example.com", full_name="Wang Wei", phone="+8613800138000")


@pytest.fixture
def other_customer(db):
    return make_customer(email="li@example.com", full_name="Li Na", phone="+8613900139000")


@pytest.fixture
def phone_agent(center):
    return make_staff(PHONE_AGENT, [center], email="agent@example.com")


@pytest.fixture
def clerk(center):
    return make_staff(COUNTER_CLERK, [center], email="clerk@example.com")


@pytest.fixture
def technician(center):
    return make_staff(TECHNICIAN, [center], email="tech@example.com")


@pytest.fixture
def supervisor(db):
    return make_staff(SUPERVISOR, [], email="boss@example.com")


@pytest.fixture
def ticket(customer, center):
    return make_ticket(customer=customer, center=center)
