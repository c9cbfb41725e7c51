from django.apps import AppConfig


class WorkConfig(AppConfig):
    name = "work"
    verbose_name = "Requested work"

    def ready(self) -> None:
        # Imported here: the recording uses models, loadable once the registry is ready.
        from work import recording

        recording.connect()
