"""Supervisors may read the reports (tickets.view_reports).

The permission is declared in Ticket.Meta.permissions; it is created here
when missing, so this migration does not depend on the migration that
records that Meta change (Django creates permissions after migrating, from
the models; the row made here is the same one, keyed by content type and
codename).
"""

from django.db import migrations

CODENAME = "view_reports"
NAME = "See the reports"
ROLE = "Supervisor"


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    ticket_type, _ = ContentType.objects.get_or_create(app_label="tickets", model="ticket")
    permission, _ = Permission.objects.get_or_create(
        content_type=ticket_type, codename=CODENAME, defaults={"name": NAME}
    )
    group, _ = Group.objects.get_or_create(name=ROLE)
    group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permission = Permission.objects.filter(content_type__app_label="tickets", codename=CODENAME).first()
    group = Group.objects.filter(name=ROLE).first()
    if permission and group:
        group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_user_counter_center"),
        ("tickets", "0003_schedules"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
