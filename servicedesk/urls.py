from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from accounts import views as accounts_views
from tickets.views import health

admin.site.site_header = admin.site.site_title = _("Repair service desk")
admin.site.index_title = _("Back office")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("i18n/setlang/", accounts_views.set_language, name="set_language"),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("counter/", include("tickets.counter_urls")),
    path("", include("tickets.urls")),
]
