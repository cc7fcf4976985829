"""The real URLs plus a bare JSON view, the baseline of the intake benchmark."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare_json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True}, status=202 if request.method == "POST" else 200)


urlpatterns = [
    path("bench/bare/", bare_json_view),
    path("", include("helpdesk.urls")),
]
