#!/usr/bin/env python
import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The settings make run left in .env (config/settings.py): a command pasted into
    # another terminal sees the same database and secret key as the demo it came from.
    os.environ.setdefault("READ_DOT_ENV_FILE", "true")
    try:
        from django.core.management import execute_from_command_line
    except ImportError:
        # `python manage.py ...` pasted into a terminal where the virtualenv is not
        # active: run it with make run's virtualenv instead.
        venv_python = Path(__file__).resolve().parent / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.prefix).resolve() != venv_python.parent.parent:
            os.execv(venv_python, [str(venv_python), *sys.argv])
        raise

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
