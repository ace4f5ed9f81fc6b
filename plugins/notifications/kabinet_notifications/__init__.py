"""Kabinet notifications app: templates, e-mail, SMS, Telegram and web push, delivery statistics."""

__version__ = "0.1.0"
