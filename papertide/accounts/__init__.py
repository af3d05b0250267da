"""Accounts: users and roles, passwords, sessions, API tokens, rate limits."""
