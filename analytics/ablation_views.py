"""The guard page's "Ablate this book" button: what ``manage.py ablate --book NAME`` does,
started from the page (one Celery task per guard, in parallel), for those who hold
``analytics.roles.START_ABLATION``."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from analytics.roles import START_ABLATION
from shadow.ablation import AblationRefusedError, ablation_start
from signals.models import Book


@login_required
@require_POST
def start_ablation(request: HttpRequest) -> HttpResponse:
    """Start one ablation leg per guard of the posted book, then go back to its guard page
    with a message saying what was started (or why nothing was)."""
    if not request.user.has_perm(START_ABLATION):
        raise PermissionDenied("Starting an ablation needs the start_ablation permission.")
    raw = request.POST.get("book", "")
    if not (raw.isascii() and raw.isdigit()):
        raise Http404("No such book.")
    book = Book.objects.filter(pk=int(raw)).first()
    if book is None:
        raise Http404("No such book.")
    back = f"{reverse('analytics:guards')}?book={book.pk}"
    try:
        guards = ablation_start(book=book)
    except AblationRefusedError as error:
        messages.error(request, str(error))
        return HttpResponseRedirect(back)
    messages.success(
        request,
        f"Ablation of {book.name!r} started: {len(guards)} leg(s), one replay without each "
        f"guard ({', '.join(guards)}). The table below fills in as the legs finish; reload "
        "the page to follow them.",
    )
    return HttpResponseRedirect(back)
