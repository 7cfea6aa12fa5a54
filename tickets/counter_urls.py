"""The store-counter terminal, included at /counter/ (tickets/views/counter.py)."""

from django.urls import path

from .views import counter

app_name = "counter"

urlpatterns = [
    path("", counter.home, name="home"),
    path("center/", counter.choose_center, name="choose_center"),
    path("search/", counter.search, name="search"),
    path("intake/", counter.intake, name="intake"),
    path("tickets/<str:number>/", counter.ticket_card, name="ticket"),
    path("tickets/<str:number>/receipt/", counter.receipt, name="receipt"),
    path("tickets/<str:number>/receive/", counter.receive, name="receive"),
    path("tickets/<str:number>/hand-over/", counter.hand_over, name="hand_over"),
    path("tickets/<str:number>/return/", counter.return_device, name="return_device"),
    path("tickets/<str:number>/ship-back/", counter.ship_back, name="ship_back"),
    path("tickets/<str:number>/cancel/", counter.cancel, name="cancel"),
]
