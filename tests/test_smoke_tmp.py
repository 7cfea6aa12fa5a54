from .factories import make_ticket_at
def test_smoke(technician, clerk, ticket, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ticket.perform("receive_device", by=clerk)
        ticket.perform("start_repair", by=technician)
        ticket.perform("send_to_testing", by=technician)
        ticket.perform("pass_testing", by=technician)
        ticket.perform("hand_over", by=clerk, check="pickup_code", pickup_code=ticket.pickup_code)
    assert ticket.status == "completed"
    assert [e.to_status for e in ticket.events.all()] == ["submitted","inspecting","repairing","testing","ready_for_pickup","completed"]
    assert ticket.notifications.count() == 5
    t = make_ticket_at("awaiting_return_shipment")
    t.perform("ship_back", by=None, carrier="SF", tracking_number="1")
