from django.urls import path

from .views import attachments, customer

app_name = "tickets"

urlpatterns = [
    path("", customer.start, name="start"),
    path("attachments/<uuid:public_id>/", attachments.image, name="attachment"),
    path("attachments/<uuid:public_id>/thumbnail/", attachments.thumbnail, name="attachment_thumbnail"),
]
