from django.urls import path

from .views import attachments, customer, submit, track

app_name = "tickets"

urlpatterns = [
    path("", customer.start, name="start"),
    # Tracking without an account, and the signed QR / message link.
    path("track/", track.track, name="track"),
    path("t/<str:token>/", track.tracked, name="track_token"),
    # A signed-in customer's tickets and their actions.
    path("my/tickets/", customer.my_tickets, name="my_tickets"),
    path("my/notifications/", customer.notifications, name="notifications"),
    path("my/notifications/read/", customer.notifications_read, name="notifications_read"),
    path("my/tickets/<str:number>/", customer.ticket_page, name="ticket"),
    path("my/tickets/<str:number>/cancel/", customer.cancel, name="cancel"),
    path("my/tickets/<str:number>/rate/", customer.rate, name="rate"),
    path("my/tickets/<str:number>/reply/", customer.reply, name="reply"),
    path("my/tickets/<str:number>/record/", customer.record, name="record"),
    # Submit a repair, its confirmation, and "submit again" after a cancellation.
    path("tickets/new/", submit.submit, name="submit"),
    path("my/tickets/<str:number>/submitted/", submit.submitted, name="submitted"),
    path("my/tickets/<str:number>/resubmit/", submit.resubmit, name="resubmit"),
    path("uploads/<uuid:public_id>/thumbnail/", submit.staged_thumbnail, name="staged_thumbnail"),
    path("attachments/<uuid:public_id>/", attachments.image, name="attachment"),
    path("attachments/<uuid:public_id>/thumbnail/", attachments.thumbnail, name="attachment_thumbnail"),
]
