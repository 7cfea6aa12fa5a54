"""The background schedules (django-q2), created once; operators may change them in the admin.

- sweep_stalled_tickets every 15 minutes: reminders and automatic cancellations;
- retry_notifications every minute: sends whose back-off has passed, and lost jobs;
- purge_staged_uploads every hour: photos staged on a submit form that was never completed.
"""

from django.db import migrations

SCHEDULES = [
    ("Sweep stalled tickets", "tickets.tasks.sweep_stalled_tickets", 15),
    ("Retry notifications", "tickets.tasks.retry_notifications", 1),
    ("Purge staged uploads", "tickets.tasks.purge_staged_uploads", 60),
]


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, minutes in SCHEDULES:
        Schedule.objects.get_or_create(
            name=name,
            defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1},
        )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=[name for name, _, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0002_stagedupload"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create, remove)]
