"""Notifications (通知): an in-app inbox for every user, and e-mail through the configured SMTP."""
