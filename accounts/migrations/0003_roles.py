"""Create the four role groups with their permissions.

The table below is frozen here on purpose (migrations must not import code
that may change later); tests/test_roles.py checks it against what each role
must be able to do. A later change to a role gets its own migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_CATALOGUES = ["view_servicecenter", "view_devicemodel", "view_faultcategory"]
WORK_TICKETS = ["view_ticket", "change_ticket", "view_stageevent", "view_attachment", "add_attachment",
                "view_contactrequest", "add_contactrequest", "view_rating", "view_notification"]

ROLES = {
    "Phone agent": WORK_TICKETS + VIEW_CATALOGUES + ["cancel_ticket"],
    "Counter clerk": WORK_TICKETS + VIEW_CATALOGUES + ["add_ticket", "receive_device", "hand_over", "ship_back", "cancel_ticket"],
    "Technician": WORK_TICKETS + VIEW_CATALOGUES + [
        "receive_device", "order_parts", "start_repair", "send_to_testing", "fail_testing", "pass_testing",
        "cancel_ticket", "confirm_warranty",
    ],
    "Supervisor": WORK_TICKETS + [
        "add_ticket", "view_all_centers", "receive_device", "order_parts", "start_repair", "send_to_testing",
        "fail_testing", "pass_testing", "hand_over", "ship_back", "cancel_ticket", "confirm_warranty",
        "add_servicecenter", "change_servicecenter", "view_servicecenter",
        "add_devicemodel", "change_devicemodel", "view_devicemodel",
        "add_faultcategory", "change_faultcategory", "view_faultcategory",
        "view_user",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = list(Permission.objects.filter(content_type__app_label="tickets", codename__in=codenames))
        permissions += list(Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames))
        missing = set(codenames) - {p.codename for p in permissions}
        if missing:
            raise RuntimeError(f"Missing permissions for role {name}: {sorted(missing)}")
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_initial"),
        ("tickets", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
