"""The permissions of the notifications app: each staff power is its own."""

from __future__ import annotations

from kabinet.access import permission
from kabinet.contrib import Permission

TEMPLATES = "notifications.templates.edit"
STATS = "notifications.stats.view"
RESEND = "notifications.resend"
CHANNELS = "notifications.channels.manage"
CONTACTS = "notifications.contacts.view"

PERMISSIONS = (
    Permission(
        code=TEMPLATES,
        label={
            "ru": "Редактирование уведомлений и шаблонов",
            "en": "Edit notifications and templates",
        },
        # Managers edit, switch on and off notifications (the case study); channels and
        # recipients' full addresses stay with admins.
        default_roles=("admin", "manager"),
        scope="global",
    ),
    Permission(
        code=STATS,
        label={"ru": "Статистика уведомлений", "en": "Notification statistics"},
        default_roles=("admin", "manager"),
        scope="global",
    ),
    Permission(
        code=RESEND,
        label={
            "ru": "Недоставленные уведомления и повторная отправка",
            "en": "Undelivered notifications and resend",
        },
        # Managers follow up their clients' undelivered messages (the case study): the list
        # and resending reach only their assigned organizations (pages._within).
        default_roles=("admin", "manager"),
        scope="global",
    ),
    Permission(
        code=CHANNELS,
        label={"ru": "Настройка каналов уведомлений", "en": "Configure notification channels"},
        default_roles=("admin",),
        scope="global",
    ),
    Permission(
        code=CONTACTS,
        label={"ru": "Контакты получателей уведомлений", "en": "See recipients' contact details"},
        default_roles=("admin",),
        scope="global",
    ),
)

EDIT = permission(TEMPLATES, scope="global")
VIEW_STATS = permission(STATS, scope="global")
DO_RESEND = permission(RESEND, scope="global")
MANAGE_CHANNELS = permission(CHANNELS, scope="global")
