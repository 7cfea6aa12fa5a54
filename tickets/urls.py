from django.urls import path

from .views import attachments

app_name = "tickets"

urlpatterns = [
    path("attachments/<uuid:public_id>/", attachments.image, name="attachment"),
    path("attachments/<uuid:public_id>/thumbnail/", attachments.thumbnail, name="attachment_thumbnail"),
]
