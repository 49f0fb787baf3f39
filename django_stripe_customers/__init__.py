"""django-stripe-customers: Stripe Customers mirrored in your Django database, both ways.

Nothing heavy happens at import time: Django settings are read lazily (see ``conf``).
"""

__version__ = "0.1.0"
