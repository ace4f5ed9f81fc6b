"""Default notification templates of the five events clients hear of (ru, en; each channel).

Declared through the notifications app's ``notifications_types`` hook; staff edit them
there. Templates are Jinja2 over the event's payload (plus ``recipient_name``); dates and
amounts go through the ``date`` and ``money`` filters, which write them in the recipient's
language and time zone.
"""

from __future__ import annotations

from kabinet.contrib import DefaultTemplate, NotificationType, Recipients
from kabinet_shipments import events as ev

CHANNELS = ("email", "sms", "telegram", "push")


def _templates(texts: dict[str, tuple[str, str]], *, url: str) -> tuple[DefaultTemplate, ...]:
    """One template per channel and language from a (subject, line) pair per language."""
    found = []
    for lang, (subject, line) in texts.items():
        hello = "Здравствуйте" if lang == "ru" else "Hello"
        link = "Открыть в личном кабинете" if lang == "ru" else "Open in the portal"
        for channel in CHANNELS:
            if channel == "email":
                body = f"{hello}, {{{{ recipient_name }}}}!\n\n{line}\n\n{link}: {url}\n"
                html = (
                    f"<p>{hello}, {{{{ recipient_name }}}}!</p><p>{line}</p>"
                    f'<p><a href="{url}">{link}</a></p>'
                )
                found.append(
                    DefaultTemplate(
                        channel=channel, language=lang, subject=subject, body=body, html=html
                    )
                )
            elif channel == "telegram":
                body = f'<b>{subject}</b>\n{line}\n<a href="{url}">{link}</a>'
                found.append(DefaultTemplate(channel=channel, language=lang, body=body))
            elif channel == "push":
                found.append(
                    DefaultTemplate(channel=channel, language=lang, subject=subject, body=line)
                )
            else:
                found.append(DefaultTemplate(channel=channel, language=lang, body=line))
    return tuple(found)


PORTAL = "{{ portal_url }}"
"""Every link starts with the portal's address (``[host] base_url``): a path alone is dead
in a mail client."""
ORDER_URL = PORTAL + "/shipments/orders/{{ order_id }}"
VIEWERS = Recipients(organization="organization_id", permission="shipments.orders.view")
PAYERS = Recipients(organization="organization_id", permission="shipments.invoices.view")

NOTIFICATIONS = (
    NotificationType(
        event=ev.STATUS_CHANGED,
        title={"ru": "Статус заявки изменён", "en": "Order status changed"},
        recipients=VIEWERS,
        variables={
            "number": "ТТ-0000123",
            "status_ru": "В работе",
            "status_en": "In progress",
            "origin": "Москва",
            "destination": "Казань",
            "order_id": "1",
        },
        templates=_templates(
            {
                "ru": (
                    "Заявка {{ number }}: {{ status_ru }}",
                    "Статус заявки {{ number }} ({{ origin }} → {{ destination }}): "
                    "{{ status_ru }}.",
                ),
                "en": (
                    "Order {{ number }}: {{ status_en }}",
                    "Order {{ number }} ({{ origin }} → {{ destination }}) is now {{ status_en }}.",
                ),
            },
            url=ORDER_URL,
        ),
    ),
    NotificationType(
        event=ev.DELIVERED,
        title={"ru": "Груз доставлен", "en": "Order delivered"},
        recipients=VIEWERS,
        variables={
            "number": "ТТ-0000123",
            "destination": "Казань",
            "origin": "Москва",
            "delivered_on": "2026-11-25",
            "order_id": "1",
        },
        templates=_templates(
            {
                "ru": (
                    "Заявка {{ number }} выполнена",
                    # the date ends in «г.», which ends the sentence too
                    "Груз по заявке {{ number }} доставлен в {{ destination }} "
                    "{{ delivered_on | date }}",
                ),
                "en": (
                    "Order {{ number }} delivered",
                    "The cargo of order {{ number }} was delivered to {{ destination }} "
                    "on {{ delivered_on | date }}.",
                ),
            },
            url=ORDER_URL,
        ),
    ),
    NotificationType(
        event=ev.INVOICE_CREATED,
        title={"ru": "Новый счёт", "en": "New invoice"},
        recipients=PAYERS,
        variables={
            "number": "СЧ-000042",
            "amount": "120000.00",
            "currency": "RUB",
            "due_date": "2026-12-10",
            "date": "2026-11-25",
            "debt": "120000.00",
        },
        templates=_templates(
            {
                "ru": (
                    "Новый счёт {{ number }}",
                    "Выставлен счёт {{ number }} на {{ amount | money(currency) }}, "
                    "оплатить до {{ due_date | date }}",  # «… 2026 г.»: one full stop
                ),
                "en": (
                    "New invoice {{ number }}",
                    "Invoice {{ number }} for {{ amount | money(currency) }} is due by "
                    "{{ due_date | date }}.",
                ),
            },
            url=PORTAL + "/shipments/invoices",
        ),
    ),
    NotificationType(
        event=ev.INVOICE_OVERDUE,
        title={"ru": "Счёт просрочен", "en": "Invoice overdue"},
        recipients=PAYERS,
        variables={
            "number": "СЧ-000042",
            "debt": "30000.00",
            "currency": "RUB",
            "due_date": "2026-10-30",
            "amount": "30000.00",
            "date": "2026-10-20",
        },
        templates=_templates(
            {
                "ru": (
                    "Просрочен счёт {{ number }}",
                    "Срок оплаты счёта {{ number }} истёк {{ due_date | date }}; "
                    "к оплате {{ debt | money(currency) }}.",
                ),
                "en": (
                    "Invoice {{ number }} is overdue",
                    "Invoice {{ number }} was due on {{ due_date | date }}; "
                    "{{ debt | money(currency) }} remain to be paid.",
                ),
            },
            url=PORTAL + "/shipments/invoices?status=overdue",
        ),
    ),
    NotificationType(
        event=ev.REQUEST_ANSWERED,
        title={"ru": "Ответ на запрос по заявке", "en": "Answer to your request"},
        recipients=Recipients(person="person_id"),
        variables={
            "order_number": "ТТ-0000123",
            "status_ru": "Принят",
            "status_en": "Accepted",
            "answer": "Дата доставки изменена",
            "order_id": "1",
        },
        templates=_templates(
            {
                "ru": (
                    "Запрос по заявке {{ order_number }}: {{ status_ru }}",
                    "Ваш запрос по заявке {{ order_number }}: {{ status_ru }}. {{ answer }}",
                ),
                "en": (
                    "Request on order {{ order_number }}: {{ status_en }}",
                    "Your request on order {{ order_number }}: {{ status_en }}. {{ answer }}",
                ),
            },
            url=ORDER_URL,
        ),
    ),
)
