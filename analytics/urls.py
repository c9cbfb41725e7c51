from django.urls import path, re_path

from analytics import (
    ablation_views,
    api,
    learning_views,
    recovery_views,
    report_views,
    views,
)
from analytics.pages import all_pages

app_name = "analytics"
urlpatterns = [
    # Pages not yet moved onto analytics.pages keep their own views (they win over the
    # placeholders below until their page module replaces them).
    path("guards.json", views.guards_json_moved, name="guards-json-moved"),
    path("signals/<int:signal_id>/", views.signal_page, name="signal"),
    path("guards/ablate/", ablation_views.start_ablation, name="start-ablation"),
    path(
        "learning/<int:pk>/apply/", learning_views.apply_recommendation, name="apply-recommendation"
    ),
    path("reports/<int:report_id>.<str:fmt>", report_views.report_download, name="report-download"),
    path("health/recover/", recovery_views.run_recovery, name="run-recovery"),
    path("api/v1/", api.api_index, name="api-index"),
    path("api/v1/<slug:name>/", api.api, name="api-page"),
    re_path(r"^api/(?P<rest>.*)$", api.api_not_found, name="api-not-found"),
]
urlpatterns += [
    path(page.path, api.html, {"name": page.name}, name=page.name) for page in all_pages()
]
