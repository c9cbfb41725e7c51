"""Applying a threshold recommendation from the learning page (POST, for those who hold
``analytics.roles.APPLY_RECOMMENDATION``)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from analytics.learning import RecommendationError, recommendation_apply
from analytics.models import ThresholdRecommendation
from analytics.roles import APPLY_RECOMMENDATION


@login_required
@require_POST
def apply_recommendation(request: HttpRequest, pk: int) -> HttpResponse:
    """Save recommendation ``pk``'s threshold as a new version of its guard configuration
    (the user is recorded in its history), then go back to the learning page of its book.
    Those who may change guard configurations only; anyone else gets 403."""
    user = request.user
    if not user.has_perm(APPLY_RECOMMENDATION):
        raise PermissionDenied("Only those who may change guard configurations can apply.")
    rec = get_object_or_404(ThresholdRecommendation.objects.select_related("guard_config"), pk=pk)
    back = f"{reverse('analytics:learning')}?book={rec.book_id}"
    try:
        applied = recommendation_apply(recommendation_id=rec.pk, user=user)
    except RecommendationError as error:
        messages.error(request, f"Not applied: {error}.")
        return HttpResponseRedirect(back)
    messages.success(
        request,
        f"{rec.guard_config.name}: {applied.param} is now "
        f"{applied.recommended_value.normalize():f} (version {applied.applied_version}). "
        "The live book takes it up at its next run; other books keep their frozen copies.",
    )
    return HttpResponseRedirect(back)
