"""Human names of the app's codes (statuses, kinds), in Russian and English."""

from __future__ import annotations

ORDER_STATUS = {
    "registered": {"ru": "Оформлена", "en": "Registered"},
    "in_progress": {"ru": "В работе", "en": "In progress"},
    "done": {"ru": "Выполнена", "en": "Done"},
    "cancelled": {"ru": "Отменена", "en": "Cancelled"},
}
PAYMENT_STATUS = {
    "unpaid": {"ru": "Не оплачен", "en": "Unpaid"},
    "part_paid": {"ru": "Оплачен частично", "en": "Partly paid"},
    "paid": {"ru": "Оплачен", "en": "Paid"},
    "overdue": {"ru": "Просрочен", "en": "Overdue"},
}
CONTRACT_STATUS = {
    "active": {"ru": "Действует", "en": "Active"},
    "suspended": {"ru": "Приостановлен", "en": "Suspended"},
    "terminated": {"ru": "Расторгнут", "en": "Terminated"},
}
REQUEST_KIND = {
    "edit": {"ru": "Изменение", "en": "Change"},
    "cancel": {"ru": "Отмена", "en": "Cancellation"},
}
REQUEST_STATUS = {
    "pending": {"ru": "На рассмотрении", "en": "Pending"},
    "new": {"ru": "Получен", "en": "Received"},
    "accepted": {"ru": "Принят", "en": "Accepted"},
    "rejected": {"ru": "Отклонён", "en": "Rejected"},
    "done": {"ru": "Выполнен", "en": "Done"},
}
FIELDS = {
    "loading_date": {"ru": "Дата погрузки", "en": "Loading date"},
    "delivery_planned": {"ru": "Плановая дата доставки", "en": "Planned delivery"},
    "consignee": {"ru": "Грузополучатель", "en": "Consignee"},
    "shipper": {"ru": "Грузоотправитель", "en": "Shipper"},
    "destination": {"ru": "Пункт назначения", "en": "Destination"},
    "cargo_places": {"ru": "Мест", "en": "Places"},
    "comment": {"ru": "Комментарий", "en": "Comment"},
}


def label(table: dict[str, dict[str, str]], code: str, lang: str) -> str:
    names = table.get(code)
    if names is None:
        return code
    return names.get(lang) or names["en"]
