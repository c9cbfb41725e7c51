from django.apps import AppConfig


class ShadowConfig(AppConfig):
    name = "shadow"
    verbose_name = "Shadow trading"

    def ready(self) -> None:
        from shadow import equity_marks, latency, rollups

        # The health page's latency histogram, kept with the rollups (shadow.latency).
        rollups.extend(latency.EXTENSION)
        # The pages' equity curve: a mark per day (shadow.equity_marks).
        rollups.extend(equity_marks.EXTENSION)
