"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Every browser test module sets ``pytestmark = BROWSER_TEST`` (tests/browser/__init__.py
says why the database is transactional and serialized). The live server
runs in a thread of the test process and shares its database, so a test
arranges things with the model layer (``tests.factories``, and
``ticket.perform(...)`` for staff moves) while the customer acts in the
browser.
"""

import os
import threading
import uuid

# Playwright's sync API runs an asyncio event loop in the test thread, and
# Django refuses ORM calls from a thread with a running loop unless told
# that this is deliberate (set at import, so for the whole test process;
# the project has no async code of its own for this check to guard).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import pytest  # noqa: E402

from tests import factories  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium (``playwright install`` cannot download here), quiet and container-friendly."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, live_server):
    """Relative URLs go to the live server: ``page.goto("/track/")``."""
    yield {**browser_context_args, "base_url": live_server.url, "timezone_id": "Asia/Shanghai"}
    # Before the live server stops and takes the database connection back from
    # its threads, let the requests still in flight (a late favicon) finish.
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(timeout=5)


@pytest.fixture(autouse=True, scope="session")
def _each_inline_job_watched_on_its_own():
    """Each job django-q2 runs inline gets an N+1 watch of its own, as in a worker process.

    With the live server, on_commit callbacks fire inside the request, so the
    inline (sync) jobs run inside the request's django-zeal context: two
    notifications sent by one stage change would look like an N+1 of the
    request (one ``get()`` each), which no real request ever does. A query
    repeated inside one job is still caught.
    """
    try:
        from zeal import zeal_context
    except ImportError:  # django-zeal is a development dependency
        yield
        return
    from django_q import tasks

    original = tasks._sync

    def sync_in_own_context(pack):
        with zeal_context():
            return original(pack)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks, "_sync", sync_in_own_context)
        yield


@pytest.fixture(scope="session")
def _data_from_migrations(django_db_setup, django_db_blocker):
    """The rows the migrations made (role groups…), as Django serialized them when it created the test database."""
    from django.db import DEFAULT_DB_ALIAS, connections

    # Django keeps its connections in an asgiref Local: thread-local while no
    # event loop runs in the thread, per-context once one does. Playwright's
    # sync API runs a loop in the test thread, so after it has started
    # `connections["default"]` is a second connection object (to the same
    # database) that lacks what Django attached to the first one when it
    # created the database, the serialized rows among it.
    thread_local = getattr(connections._connections._storage, DEFAULT_DB_ALIAS, None)
    for connection in (thread_local, connections[DEFAULT_DB_ALIAS]):
        contents = getattr(connection, "_test_serialized_contents", None)
        if contents:
            return contents
    return None


@pytest.fixture(autouse=True)
def _serialized_rollback_works(_data_from_migrations, django_db_blocker):
    """Make ``serialized_rollback=True`` restore the migrations' rows in every browser test.

    Django restores them only through the connection object that carries
    the serialized copy (see ``_data_from_migrations``). When the database
    was created before Playwright started (the whole suite in one run: the
    other tests come first), the browser tests get another connection
    object and the restore silently does nothing: the first test's flush
    would take the role groups away from every later one. Here the copy is
    attached to the connection in use and, if Django skipped it, loaded.
    """
    from django.db import connection

    if _data_from_migrations and not hasattr(connection, "_test_serialized_contents"):
        connection._test_serialized_contents = _data_from_migrations
        with django_db_blocker.unblock():
            connection.creation.deserialize_db_from_string(_data_from_migrations)


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Each test a cache of its own: the tracking throttle counts failures there."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"browser-{uuid.uuid4().hex}"}
    }


@pytest.fixture
def context(context):
    # Fail in seconds, not in Playwright's default 30 s per step.
    context.set_default_timeout(10_000)
    context.set_default_navigation_timeout(15_000)
    return context


# --- the world the customer meets --------------------------------------------------------


@pytest.fixture
def catalogue(live_server):
    """Two service centers, a few device models and fault categories, as the demo data has them."""
    shanghai = factories.make_center(
        "sh-xuhui",
        name="Shanghai Xuhui",
        address="88 Caoxi North Road\nXuhui District, Shanghai",
        phone="+862164870000",
        email="xuhui@service.example",
        opening_hours="Mon–Sat 10:00–20:00",
    )
    beijing = factories.make_center("bj-chaoyang", name="Beijing Chaoyang", address="1 Jianguo Road, Beijing")
    models = [
        factories.make_device_model(brand="Acme", name="Nova 12 Pro", warranty_months=24),
        factories.make_device_model(brand="Acme", name="Nova 12", warranty_months=24),
        factories.make_device_model(brand="Orbit", name="Tab S9", category="tablet"),
    ]
    faults = [
        factories.make_fault(code="screen", name="Screen or touch", name_zh_hans="屏幕或触控", sort_order=1),
        factories.make_fault(code="battery", name="Battery or charging", name_zh_hans="电池或充电", sort_order=2),
    ]
    return {"center": shanghai, "other_center": beijing, "models": models, "faults": faults}
