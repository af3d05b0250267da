"""Papertide: a self-hostable research-paper discovery platform."""

__version__ = "0.1.0"
