"""Default notification templates of the booking app's answers to the author (ru, en; each
channel): the request accepted (it became an order), rejected (with the reason), returned
by a manager (with the comment). Declared through the notifications app's
``notifications_types`` hook (plain ``kabinet.contrib`` types: nothing of that app is
imported); staff edit them there."""

from __future__ import annotations

from kabinet.contrib import DefaultTemplate, NotificationType, Recipients
from kabinet_booking import events as ev

CHANNELS = ("email", "sms", "telegram", "push")
URL = "{{ portal_url }}/booking/{{ request_id }}"
AUTHOR = Recipients(person="person_id")


def _templates(texts: dict[str, tuple[str, str]]) -> tuple[DefaultTemplate, ...]:
    """One template per channel and language from a (subject, line) pair per language."""
    found = []
    for lang, (subject, line) in texts.items():
        hello = "Здравствуйте" if lang == "ru" else "Hello"
        link = "Открыть в личном кабинете" if lang == "ru" else "Open in the portal"
        for channel in CHANNELS:
            if channel == "email":
                body = f"{hello}, {{{{ recipient_name }}}}!\n\n{line}\n\n{link}: {URL}\n"
                html = (
                    f"<p>{hello}, {{{{ recipient_name }}}}!</p><p>{line}</p>"
                    f'<p><a href="{URL}">{link}</a></p>'
                )
                found.append(
                    DefaultTemplate(
                        channel=channel, language=lang, body=body, subject=subject, html=html
                    )
                )
            elif channel == "telegram":
                body = f'<b>{subject}</b>\n{line}\n<a href="{URL}">{link}</a>'
                found.append(DefaultTemplate(channel=channel, language=lang, body=body))
            elif channel == "push":
                found.append(
                    DefaultTemplate(channel=channel, language=lang, body=line, subject=subject)
                )
            else:
                found.append(DefaultTemplate(channel=channel, language=lang, body=f"{line} {URL}"))
    return tuple(found)


SAMPLE = {"request_id": "12", "summary": "Москва → Казань · Станки"}

NOTIFICATIONS = (
    NotificationType(
        event=ev.ACCEPTED,
        title={"ru": "Заявка принята", "en": "Request accepted"},
        recipients=AUTHOR,
        variables={**SAMPLE, "order_number": "ТТ-000123"},
        templates=_templates(
            {
                "ru": (
                    "Заявка № {{ request_id }} принята",
                    "Ваша заявка № {{ request_id }} ({{ summary }}) принята"
                    "{% if order_number %} и стала заказом {{ order_number }}{% endif %}.",
                ),
                "en": (
                    "Request {{ request_id }} accepted",
                    "Your request {{ request_id }} ({{ summary }}) was accepted"
                    "{% if order_number %} and became order {{ order_number }}{% endif %}.",
                ),
            }
        ),
    ),
    NotificationType(
        event=ev.REJECTED,
        title={"ru": "Заявка отклонена", "en": "Request rejected"},
        recipients=AUTHOR,
        variables={**SAMPLE, "reason": "Нет свободного транспорта на эту дату"},
        templates=_templates(
            {
                "ru": (
                    "Заявка № {{ request_id }} отклонена",
                    "Ваша заявка № {{ request_id }} ({{ summary }}) отклонена: {{ reason }}",
                ),
                "en": (
                    "Request {{ request_id }} rejected",
                    "Your request {{ request_id }} ({{ summary }}) was rejected: {{ reason }}",
                ),
            }
        ),
    ),
    NotificationType(
        event=ev.RETURNED,
        title={"ru": "Заявка возвращена на доработку", "en": "Request returned"},
        recipients=AUTHOR,
        variables={**SAMPLE, "reason": "Уточните вес груза"},
        templates=_templates(
            {
                "ru": (
                    "Заявка № {{ request_id }} возвращена",
                    "Заявку № {{ request_id }} ({{ summary }}) вернули на доработку: {{ reason }}",
                ),
                "en": (
                    "Request {{ request_id }} returned",
                    "Your request {{ request_id }} ({{ summary }}) was returned for changes: "
                    "{{ reason }}",
                ),
            }
        ),
    ),
)
