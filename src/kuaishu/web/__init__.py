"""The HTTP face of the platform: app factory, shared dependencies, errors, templates."""
