from django.contrib import admin
from django.urls import include, path

from tickets.views import health

admin.site.site_header = admin.site.site_title = "Repair service desk"
admin.site.index_title = "Back office"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("tickets.urls")),
]
