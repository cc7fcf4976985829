"""The portal's home page, and what its views share."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import Customer
from accounts.selectors import customer_for_user


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


def customer_or_404(request: HttpRequest) -> Customer:
    # Staff work tickets in the staff queue; /my/ is only for customers.
    customer = customer_for_user(request.user)
    if customer is None:
        raise Http404
    return customer
