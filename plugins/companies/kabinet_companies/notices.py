"""The notifications the companies app declares (sent by the notifications app, if any).

Links start with ``{{ portal_url }}`` (the portal's ``[host] base_url``): absolute, so they
work in any mail client."""

from __future__ import annotations

from kabinet.contrib import DefaultTemplate, NotificationType, Recipients
from kabinet_companies import events as ev

VARIABLES = {
    "person_name": "Иван Петров",
    "company": "ООО «Ромашка»",
    "role": "client",
    "reason": "Не удалось подтвердить, что вы работаете в компании",
}


def notification_types() -> list[NotificationType]:
    return [
        NotificationType(
            event=ev.REQUEST_ACCEPTED,
            title={"ru": "Запрос на привязку принят", "en": "Link request accepted"},
            recipients=Recipients(person="person_id"),
            variables=VARIABLES,
            mandatory=True,
            templates=(
                DefaultTemplate(
                    channel="email",
                    language="ru",
                    subject="Доступ к компании {{ company }} открыт",
                    body="{{ recipient_name }}, ваш запрос принят: теперь вам доступны "
                    "заявки и документы компании {{ company }}.\n\n"
                    "Открыть личный кабинет: {{ portal_url }}/",
                ),
                DefaultTemplate(
                    channel="email",
                    language="en",
                    subject="Access to {{ company }} granted",
                    body="{{ recipient_name }}, your request was accepted: you now see "
                    "the orders and documents of {{ company }}.\n\n"
                    "Open the portal: {{ portal_url }}/",
                ),
            ),
        ),
        NotificationType(
            event=ev.REQUEST_REJECTED,
            title={"ru": "Запрос на привязку отклонён", "en": "Link request rejected"},
            recipients=Recipients(person="person_id"),
            variables=VARIABLES,
            mandatory=True,
            templates=(
                DefaultTemplate(
                    channel="email",
                    language="ru",
                    subject="Запрос на привязку к {{ company }} отклонён",
                    body="{{ recipient_name }}, ваш запрос на привязку к компании "
                    "{{ company }} отклонён. Причина: {{ reason }}\n\n"
                    "Ваши запросы: {{ portal_url }}/companies/my",
                ),
                DefaultTemplate(
                    channel="email",
                    language="en",
                    subject="Your request to join {{ company }} was rejected",
                    body="{{ recipient_name }}, your request to join {{ company }} was "
                    "rejected. Reason: {{ reason }}\n\n"
                    "Your requests: {{ portal_url }}/companies/my",
                ),
            ),
        ),
    ]
