"""The Customer admin's URLs and what its pages hold, for tests that drive it."""

from __future__ import annotations

from typing import Any

from django.contrib.messages import get_messages

from django_stripe_customers.models import Customer
from tests.support.html_forms import form_fields

CHANGELIST = "/admin/stripe_customers/customer/"
ADD = "/admin/stripe_customers/customer/add/"


def change_url(customer: Customer) -> str:
    return f"/admin/stripe_customers/customer/{customer.pk}/change/"


def form_data(client: Any, url: str) -> dict[str, str]:
    """What submitting the change form unchanged would post."""
    response = client.get(url)
    assert response.status_code == 200
    return form_fields(response.content.decode(), "customer_form")


def result_rows(response: Any) -> str:
    html = response.content.decode()
    assert 'id="result_list"' in html, "no result table"
    return html.split('id="result_list"', 1)[1].split("</table>", 1)[0]


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]
