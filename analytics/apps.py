from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Imported here: these modules use models, loadable once the registry is ready.
        from analytics import fidelity_rollup, heartbeats, segments
        from analytics.learning import histogram
        from analytics.stuck import live_stuck_count
        from config.health import register_check

        heartbeats.connect()
        segments.register()  # kept with the rollups (shadow.rollups.Extension)
        histogram.register()  # the learning engine's guard histograms, the same way
        fidelity_rollup.register()  # likewise
        register_check("stuck_signals", live_stuck_count)
