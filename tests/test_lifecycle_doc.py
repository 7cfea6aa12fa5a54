"""docs/lifecycle.md is generated from the state machine and cannot drift from it."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django_fsm import State

from tickets.management.commands.lifecycle_doc import DEFAULT_PATH, render
from tickets.models import CUSTOMER_CANCELLABLE, Status, Ticket

pytestmark = pytest.mark.django_db


def all_transitions():
    for t in Ticket._meta.get_field("status").get_all_transitions(Ticket):
        targets = t.target.allowed_states if isinstance(t.target, State) else [t.target]
        for target in targets:
            yield t.name, t.source, target


def row_of(text, action):
    rows = [line for line in text.splitlines() if line.startswith(f"| `{action}` ")]
    assert len(rows) == 1, f"no single table row for {action}"
    return rows[0]


def test_committed_lifecycle_doc_is_up_to_date():
    # If this fails: python manage.py lifecycle_doc, and commit docs/lifecycle.md.
    call_command("lifecycle_doc", "--check", stdout=None)


def test_doc_draws_every_transition_of_the_state_machine():
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    moves = list(all_transitions())
    assert len(moves) >= 14
    for action, source, target in moves:
        assert f"    {source} --> {target}: {action}\n" in text
        row = row_of(text, action)
        assert f"`{source}`" in row.split("|")[2]
        assert f"`{target}`" in row.split("|")[3]


def test_doc_names_every_stage():
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    for status in Status:
        assert f"| `{status.value}` |" in text
        assert f'state "{status.label}" as {status.value}' in text


def test_who_column_lists_the_role_groups_holding_the_permission():
    text = render()
    assert "| Counter clerk, Supervisor |" in row_of(text, "hand_over")
    assert "| Supervisor, Technician |" in row_of(text, "start_repair")
    cancel = row_of(text, "cancel")
    assert "Phone agent" in cancel
    assert "own ticket, from " + ", ".join(f"`{s}`" for s in CUSTOMER_CANCELLABLE) in cancel
    assert "yes (`by=None`)" in cancel
    assert "yes (`by=None`)" not in row_of(text, "hand_over")


def test_doc_follows_a_change_to_a_role():
    clerk = Group.objects.get(name="Counter clerk")
    clerk.permissions.remove(Permission.objects.get(content_type__app_label="tickets", codename="hand_over"))
    assert "| Supervisor |" in row_of(render(), "hand_over")


def test_check_fails_when_the_file_drifted(tmp_path):
    path = tmp_path / "lifecycle.md"
    path.write_text(render().replace("hand_over", "hand_back"), encoding="utf-8")
    with pytest.raises(CommandError, match="out of date"):
        call_command("lifecycle_doc", "--check", f"--output={path}")


def test_check_fails_when_the_file_is_missing(tmp_path):
    with pytest.raises(CommandError):
        call_command("lifecycle_doc", "--check", f"--output={tmp_path / 'missing.md'}")


def test_command_writes_what_check_accepts(tmp_path):
    path = tmp_path / "docs" / "lifecycle.md"
    call_command("lifecycle_doc", f"--output={path}", stdout=None)
    assert path.read_text(encoding="utf-8") == render()
    call_command("lifecycle_doc", "--check", f"--output={path}", stdout=None)
