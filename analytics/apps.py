from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Imported here: these modules use models, loadable once the registry is ready.
        from analytics import heartbeats
        from analytics.stuck import live_stuck_count
        from config.health import register_check

        heartbeats.connect()
        register_check("stuck_signals", live_stuck_count)
