from django.urls import path

from analytics import views

app_name = "analytics"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("guards/", views.guards, name="guard-effectiveness"),
    path("guards.json", views.guards_json, name="guard-effectiveness-json"),
    path("signals/<int:signal_id>/", views.signal_page, name="signal"),
]
