from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("django_stripe_customers.api.urls")),
    path("stripe/", include("django_stripe_customers.urls")),
]
