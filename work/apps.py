from django.apps import AppConfig


class WorkConfig(AppConfig):
    name = "work"
    verbose_name = "Requested work"

    def ready(self) -> None:
        from work import recording

        recording.connect()
