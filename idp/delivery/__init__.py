"""Adapters that talk to the outside world (mail, SMS)."""
