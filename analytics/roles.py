"""Who may do what in the trader's view: one permission per kind of act, and the
read-only "trader" role that holds the reading ones.

Every check in the views and templates names one of these constants, never
``is_staff``: staff status only opens the admin, and a staff account holds no more
than the permissions it was given (a superuser holds them all).
"""

from django.contrib.auth.models import AbstractBaseUser, Group, Permission

# Every page, its JSON twin under /api/v1/ and the signal page.
READ_PAGES = "signals.view_book"
# Downloads of stored reports (/reports/<id>.<fmt>).
READ_REPORTS = "analytics.view_report"
# The guard page's "Ablate this book" button (replays on the workers).
START_ABLATION = "signals.start_ablation"
# The health page's "Run recovery now" button (re-queues stuck live books).
START_RECOVERY = "analytics.start_recovery"
# The learning page's "Apply" (a new version of a guard configuration, which the live
# book then trades with): the same permission as changing one in the admin.
APPLY_RECOMMENDATION = "signals.change_guardconfig"

TRADER_GROUP = "trader"
TRADER_PERMISSIONS = (READ_PAGES, READ_REPORTS)


def permission_get(name: str) -> Permission:
    """The ``Permission`` row of ``"app_label.codename"``."""
    app_label, codename = name.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def trader_group_ensure() -> Group:
    """The "trader" group, holding exactly ``TRADER_PERMISSIONS`` (created, or set back to
    them when someone added or removed one)."""
    group, _ = Group.objects.get_or_create(name=TRADER_GROUP)
    group.permissions.set([permission_get(name) for name in TRADER_PERMISSIONS])
    return group


def trader_add(*, user: AbstractBaseUser) -> None:
    """Give ``user`` the trader role (read every page, API twin and report)."""
    user.groups.add(trader_group_ensure())  # type: ignore[attr-defined]
