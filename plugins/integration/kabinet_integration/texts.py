"""Texts of the integration pages in Russian and English (``t.key`` in templates)."""

from __future__ import annotations

from typing import Any

LABELS: dict[str, tuple[str, str]] = {
    "runs": ("Обмен с 1С", "Sync runs"),
    "source": ("Источник", "Source"),
    "mode": ("Режим", "Mode"),
    "state": ("Состояние", "State"),
    "started": ("Начат", "Started"),
    "finished": ("Завершён", "Finished"),
    "received": ("Получено", "Received"),
    "applied": ("Применено", "Applied"),
    "unchanged": ("Без изменений", "Unchanged"),
    "quarantined": ("В карантине", "Quarantined"),
    "error": ("Ошибка", "Error"),
    "progress": ("Ход", "Progress"),
    "run_now": ("Запустить обмен", "Run now"),
    "full": ("Полная сверка", "Full reconciliation"),
    "no_runs": ("Обменов ещё не было.", "No runs yet."),
    "no_sources": (
        "Источники 1С не настроены. Их задают в настройках портала, раздел",
        "No 1C source is configured. Sources are set in the portal's settings, section",
    ),
    "no_source_named": ("Такого источника нет.", "There is no such source."),
    "busy": ("Идёт обмен; повторите через минуту.", "A run is going on; try again in a minute."),
    "retry_done": ("Повтор из карантина", "Quarantine retry"),
    "page_n": ("страница", "page"),
    "progress_full": ("полная сверка", "full reconciliation"),
    "progress_deletions": ("удаления", "deletions"),
    "fetched": ("получен", "fetched"),
    "quarantine": ("Карантин", "Quarantine"),
    "entity": ("Сущность", "Entity"),
    "ref": ("Идентификатор в 1С", "1C id"),
    "reason": ("Причина", "Reason"),
    "attempts": ("Попыток", "Attempts"),
    "retry": ("Повторить", "Retry"),
    "dismiss": ("Отклонить", "Dismiss"),
    "filter": ("Показать", "Filter"),
    "all": ("все", "all"),
    "empty_quarantine": ("В карантине ничего нет.", "Nothing in quarantine."),
    "outbound": ("Запросы клиентов в 1С", "Client requests to 1C"),
    "no_outbound": ("Все запросы переданы.", "Every request went through."),
    "no_write_back": (
        "Источник 1С не настроен: запросы клиентов никуда не передаются.",
        "No 1C source is configured: client requests are not sent anywhere.",
    ),
    "answer_here": ("Ответить на них в портале", "Answer them in the portal"),
    "files": ("Файлы, которые не удалось получить", "Files that could not be fetched"),
    "payload": ("Данные", "Payload"),
    "started_flash": ("Обмен запущен.", "The sync has started."),
    "running": ("идёт", "running"),
    "succeeded": ("успешно", "succeeded"),
    "failed": ("ошибка", "failed"),
    "interrupted": ("прерван", "interrupted"),
    "open": ("открыт", "open"),
    "dismissed": ("отклонён", "dismissed"),
    "pending": ("ожидает", "pending"),
    "sent": ("передан", "sent"),
    "sending": ("передаётся", "sending"),
    "mode_delta": ("изменения", "delta"),
    "mode_full": ("полная сверка", "full"),
    "mode_push": ("приём пакета", "push"),
    "mode_retry": ("повтор карантина", "quarantine retry"),
    "entity_counterparty": ("контрагент", "counterparty"),
    "entity_contract": ("договор", "contract"),
    "entity_order": ("заявка", "order"),
    "entity_invoice": ("счёт", "invoice"),
    "entity_answer": ("ответ на запрос", "request answer"),
    "entity_balance": ("сальдо", "balance"),
    "progress_waiting": ("Обмен запрошен, ждём начала…", "The run is asked for, starting…"),
    "actions": ("Действия", "Actions"),
}


class Texts:
    def __init__(self, lang: str) -> None:
        self.i = 0 if lang == "ru" else 1

    def __getattr__(self, key: str) -> str:
        pair = LABELS.get(key)
        return pair[self.i] if pair else key

    def of(self, key: Any) -> str:
        pair = LABELS.get(str(key))
        return pair[self.i] if pair else str(key)

    def progress(self, text: str) -> str:
        """A running sync's progress (``page 3``, ``order: full``, ``order: deletions``) in
        the reader's words."""
        head, sep, tail = text.partition(": ")
        if sep and tail in ("full", "deletions"):
            return f"{self.of('entity_' + head)}: {self.of('progress_' + tail)}"
        if text.startswith("page "):
            return f"{self.page_n} {text[5:]}"
        return text
