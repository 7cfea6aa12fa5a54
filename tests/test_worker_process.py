"""A real django-q2 cluster against the ORM broker delivers each message exactly once.

These tests start ``manage.py qcluster`` as a separate process on a SQLite
database of their own (the embedded default), make real stage changes, and
count what the SMS "gateway" (tests/support/file_sms.py, one line per message)
received. The first runs with the ORM broker (the embedded default) and with
the Redis broker (production at scale, the machine's Redis); the second kills
the worker in the middle of a send and starts it again.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
from datetime import date
from accounts.models import User
from django.contrib.auth.models import Group
from tickets.models import ServiceCenter, FaultCategory, DeviceModel, Ticket
center = ServiceCenter.objects.create(code="w1", name="Worker Test Center")
fault = FaultCategory.objects.create(code="screen", name="Screen")
model = DeviceModel.objects.create(brand="Acme", name="W1", category="phone")
boss = User.objects.create_user("boss@example.com", "x", full_name="Boss", is_staff=True)
boss.groups.add(Group.objects.get(name="Supervisor"))
customer = User.objects.create_user("c@example.com", "x", full_name="C", phone="+8613800138000", notify_by_email=False)
ticket = Ticket.open_ticket(by=customer, customer=customer, service_center=center, fault_category=fault,
    device_model=model, imei_or_serial="490154203237518", symptom_description="Black screen",
    contact_name="C", contact_phone="+8613800138000", purchase_date=date(2026, 1, 1))
print(ticket.pk)
"""

ACT = """
from accounts.models import User
from tickets.models import Ticket
ticket = Ticket.objects.get(pk={pk})
ticket.perform("{action}", by=User.objects.get(email="boss@example.com"))
"""


@pytest.fixture(params=["orm"])
def world(request, tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "Q_SYNC", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="servicedesk.settings",
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        PRIVATE_MEDIA_ROOT=str(tmp_path / "private"),
        SMS_BACKEND="tests.support.file_sms.FileSmsBackend",
        SMS_FILE=str(tmp_path / "sms.jsonl"),
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        Q_WORKERS="1",
        Q_TIMEOUT="6",
        Q_RETRY="8",
        NOTIFICATION_CLAIM_SECONDS="3",
        DJANGO_ZEAL="0",
        PYTHONPATH=str(ROOT),
        Q_NAME=f"test-{tmp_path.name}",
    )
    if request.param == "redis":
        env["REDIS_URL"] = "redis://127.0.0.1:6379/15"  # the broker (and cache) at scale
    manage = [sys.executable, str(ROOT / "manage.py")]

    def run(*args, **extra_env):
        return subprocess.run(
            manage + list(args), env={**env, **extra_env}, cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    def start_cluster(**extra_env):
        return subprocess.Popen(
            manage + ["qcluster"],
            env={**env, **extra_env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    run("migrate", "--noinput")
    clusters = []

    class World:
        sms_file = tmp_path / "sms.jsonl"
        broker = request.param

        def shell(self, code):
            return run("shell", "-c", code)

        def start(self, **extra_env):
            cluster = start_cluster(**extra_env)
            clusters.append(cluster)
            return cluster

        def query(self, sql, *params):
            with sqlite3.connect(env["SQLITE_PATH"], timeout=20) as db:
                return db.execute(sql, params).fetchall()

        def messages(self, containing=""):
            if not self.sms_file.exists():
                return []
            lines = [json.loads(line) for line in self.sms_file.read_text().splitlines()]
            return [m for m in lines if containing in m["text"]]

    yield World()
    for cluster in clusters:
        try:
            os.killpg(cluster.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        cluster.wait(10)


def wait_for(condition, timeout=60, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(step)
    raise AssertionError("timed out waiting")


def stop(cluster):
    cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(15)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(cluster.pid, signal.SIGKILL)  # whatever is left of the group
    except ProcessLookupError:
        pass
    cluster.wait(10)


@pytest.mark.parametrize("world", ["orm", "redis"], indirect=True)
def test_a_real_worker_delivers_a_stage_change_exactly_once(world):
    pk = int(world.shell(SETUP).split()[-1])
    world.shell(ACT.format(pk=pk, action="receive_device"))
    assert world.messages() == []  # queued, not sent: no worker yet

    cluster = world.start()
    wait_for(lambda: len(world.messages("Inspecting")) == 1)
    time.sleep(3)  # any duplicate would arrive now
    stop(cluster)

    assert len(world.messages("Inspecting")) == 1
    assert len(world.messages()) == 2  # "received" and "inspecting"
    rows = world.query("SELECT status, attempts FROM tickets_notification WHERE channel = 'sms'")
    assert rows == [("sent", 1), ("sent", 1)]
    # The jobs went through the intended broker: the ORM queue table was used only without Redis.
    used_orm_queue = world.query("SELECT seq FROM sqlite_sequence WHERE name = 'django_q_ormq'")
    assert bool(used_orm_queue) == (world.broker == "orm")


def test_a_worker_killed_mid_send_and_restarted_still_delivers_exactly_once(world):
    pk = int(world.shell(SETUP).split()[-1])
    first = world.start()
    wait_for(lambda: len(world.messages()) == 1)  # the "received" message
    stop(first)

    world.shell(ACT.format(pk=pk, action="receive_device"))
    slow = world.start(SMS_DELAY="5")
    wait_for(
        lambda: world.query(
            "SELECT 1 FROM tickets_notification WHERE channel = 'sms' AND status = 'sending' AND subject LIKE '%Inspecting%'"
        )
    )
    os.killpg(slow.pid, signal.SIGKILL)  # the gateway call is in flight
    slow.wait(10)
    assert world.messages("Inspecting") == []

    restarted = world.start()
    wait_for(lambda: len(world.messages("Inspecting")) == 1, timeout=90)
    time.sleep(10)  # longer than the broker's retry: a second delivery would show now
    stop(restarted)

    assert len(world.messages("Inspecting")) == 1
    status, attempts = world.query(
        "SELECT status, attempts FROM tickets_notification WHERE channel = 'sms' AND subject LIKE '%Inspecting%'"
    )[0]
    assert status == "sent" and attempts == 2
