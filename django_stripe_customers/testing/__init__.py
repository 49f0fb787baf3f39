"""A stateful local Stripe for Customers (emulator, pytest plugin, CLI); no Django imports."""
