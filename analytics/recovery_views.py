"""The "Run recovery now" button of the Pipeline health page (POST, for those who hold
``analytics.roles.START_RECOVERY``)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from analytics.recovery import recover
from analytics.roles import START_RECOVERY


@login_required
@require_POST
def run_recovery(request: HttpRequest) -> HttpResponse:
    """Run the stuck-signal recovery now, as this user, and go back to the page."""
    if not request.user.has_perm(START_RECOVERY):
        raise PermissionDenied("Running the recovery needs the start_recovery permission.")
    run = recover(actor=request.user.get_username())
    assert run is not None  # a person's run is always recorded
    if run.stuck_found:
        books = len({action["book"] for action in run.actions})
        messages.warning(
            request,
            f"Recovery found {run.stuck_found} stuck signal(s) in {books} live book(s): "
            f"{run.detail}",
        )
    else:
        messages.success(request, "Recovery found no stuck signal in any live book.")
    url = reverse("analytics:health")
    book = request.POST.get("book", "")
    if book.isascii() and book.isdigit():
        url += f"?book={book}"
    return HttpResponseRedirect(url)
