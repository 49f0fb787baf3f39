"""``include("django_stripe_customers.api.urls")``: the ``customers/`` routes of the API.

URL names: ``stripe_customers_api:customer-list``, ``customer-detail``, ``customer-pull``.
"""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .views import CustomerViewSet

app_name = "stripe_customers_api"

router = SimpleRouter()
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = router.urls
