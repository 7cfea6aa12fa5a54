"""Time one stalled-ticket sweep over many open tickets.

    python bench/sweep.py [--tickets 100000] [--due 5000] [--reminders 5000]

Builds a fresh database (a temporary SQLite file, or the PostgreSQL database
named by DATABASE_URL, which is flushed first), seeds open tickets with
bulk inserts, then times ``tickets.stalled.sweep()`` once and prints what it
did. Notifications are recorded but not sent (no worker runs).
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=5_000, help="tickets past the device deadline (cancelled)")
    parser.add_argument("--reminders", type=int, default=5_000, help="tickets due for a device reminder")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-sweep-")
    if not os.environ.get("DATABASE_URL"):
        os.environ["SQLITE_PATH"] = os.path.join(tmp, "bench.sqlite3")
    os.environ.setdefault("PRIVATE_MEDIA_ROOT", os.path.join(tmp, "private"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "servicedesk.settings"
    os.environ["DJANGO_ZEAL"] = "0"
    os.environ["DJANGO_DEBUG"] = "0"  # production settings: no query log
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ["Q_SYNC"] = "0"

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from tickets import numbers, stalled
    from tickets.models import DeviceModel, FaultCategory, Notification, ServiceCenter, Ticket

    call_command("migrate", verbosity=0)
    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
        call_command("migrate", verbosity=0)

    # The queue is not under test: record the jobs instead of enqueueing them.
    import tickets.notify as notify

    queued = []
    notify.queue = queued.extend

    print(f"database: {connection.vendor}; seeding {args.tickets:,} open tickets…", flush=True)
    started = time.perf_counter()
    center = ServiceCenter.objects.create(code="bench", name="Bench Center")
    fault = FaultCategory.objects.create(code="bench", name="Bench fault")
    model = DeviceModel.objects.create(brand="Bench", name="B1", category="phone")
    customers = User.objects.bulk_create(
        [User(email=f"bench{i}@example.com", full_name=f"Bench {i}", phone=f"+86138{i:08d}") for i in range(1000)]
    )
    now = timezone.now()
    arrival = timedelta(days=settings.DEVICE_ARRIVAL_DAYS)
    remind = arrival - timedelta(days=settings.DEVICE_REMINDER_DAYS_BEFORE)
    batch = []
    for i in range(args.tickets):
        if i < args.due:
            created = now - arrival - timedelta(hours=1 + i % 48)
        elif i < args.due + args.reminders:
            created = now - remind - timedelta(hours=1 + i % 24)
        else:
            created = now - timedelta(hours=i % (24 * 7))
        customer = customers[i % len(customers)]
        batch.append(
            Ticket(
                number=numbers.generate(),
                customer=customer,
                contact_name=customer.full_name,
                contact_phone=customer.phone,
                contact_email=customer.email,
                service_center=center,
                device_model=model,
                imei_or_serial=f"SN{i:010d}",
                fault_category=fault,
                symptom_description="Bench",
                pickup_code="000000",
                created_at=created,
            )
        )
        if len(batch) == 5000:
            Ticket.objects.bulk_create(batch)
            batch.clear()
    Ticket.objects.bulk_create(batch)
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)

    started = time.perf_counter()
    result = stalled.sweep(now=now)
    elapsed = time.perf_counter() - started
    print(f"one sweep: {elapsed:.2f} s  {result}")
    cancelled = result["device_cancellations"]
    if cancelled:
        print(f"  {elapsed / cancelled * 1000:.2f} ms per cancellation (including its history row and messages)")
    print(f"  notifications recorded: {Notification.objects.count():,}; send jobs queued: {len(queued):,}")

    started = time.perf_counter()
    again = stalled.sweep(now=now)
    print(f"a second sweep right after: {time.perf_counter() - started:.2f} s  {again}")


if __name__ == "__main__":
    main()
