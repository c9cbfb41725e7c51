"""``manage.py trader_role [USERNAME ...] [--create]``: the read-only "trader" group
(``analytics.roles``), and the accounts that hold it."""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from analytics.roles import TRADER_GROUP, TRADER_PERMISSIONS, trader_add, trader_group_ensure

PASSWORD_ENV = "DJANGO_TRADER_PASSWORD"


class Command(BaseCommand):
    help = (
        "Create the read-only 'trader' group (or set its permissions back to "
        f"{', '.join(TRADER_PERMISSIONS)}) and give it to the named accounts; with "
        "--create, accounts that do not exist yet are created (not staff)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="*", help="accounts to give the trader role")
        parser.add_argument(
            "--create",
            action="store_true",
            help="create accounts that do not exist, asking for each one's password",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help=f"read new accounts' password from ${PASSWORD_ENV} instead of asking",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            group = trader_group_ensure()
            for username in options["usernames"]:
                user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
                if user is None:
                    if not options["create"]:
                        raise CommandError(
                            f"no account {username!r}: add --create to create it, or create it "
                            "in the admin first"
                        )
                    user = user_model(**{user_model.USERNAME_FIELD: username})
                    user.set_password(self._password(user, options["interactive"]))
                    user.save()
                    self.stdout.write(f"created {username!r} (not staff)")
                trader_add(user=user)
                self.stdout.write(f"{username!r} has the trader role")
        names = ", ".join(
            sorted(f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all())
        )
        self.stdout.write(f"group {TRADER_GROUP!r}: {names}")

    def _password(self, user: Any, interactive: bool) -> str:
        if interactive:
            password = getpass.getpass(f"Password for {user.get_username()}: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the two passwords differ")
        else:
            password = os.environ.get(PASSWORD_ENV, "")
            if not password:
                raise CommandError(
                    f"--noinput reads the new account's password from ${PASSWORD_ENV}"
                )
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        return password
