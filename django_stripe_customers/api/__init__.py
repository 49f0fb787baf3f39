"""The customers API (Django REST framework): ``include("django_stripe_customers.api.urls")``.

Routes, query parameters, pagination and error shapes are described in ``views``.
"""
