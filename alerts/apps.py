from django.apps import AppConfig


class AlertsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        # Imported here: models and services load only once the app registry is ready.
        from alerts import streaks  # noqa: F401  (connects the Celery signal handlers)
        from alerts.deliveries import TaskDeliveryLedger
        from config.task_base import register_delivery_ledger

        register_delivery_ledger(TaskDeliveryLedger())
