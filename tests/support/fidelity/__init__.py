"""Fidelity scenarios: one script of Stripe calls, run against the emulator and localstripe."""
