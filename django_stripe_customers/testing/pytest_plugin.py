"""pytest plugin (entry point ``pytest11``): fixtures giving tests an offline Stripe."""
