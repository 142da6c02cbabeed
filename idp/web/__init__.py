"""Blueprints for the resident's hosted pages."""
