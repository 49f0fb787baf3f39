"""The HTTP layer: Stripe's API spoken with ``requests``; knows nothing of Django models."""
