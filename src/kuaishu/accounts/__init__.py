"""Accounts (账户): government levels, departments, people, roles, sign-in and API keys."""
