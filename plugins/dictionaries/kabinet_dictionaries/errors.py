"""Refusals of the dictionaries app, each in Russian and English.

A refusal names the field at fault (``field``) and says what to do; pages show it next
to that field in the person's language, the API answers problem details in English with
``errors: [{field, message}]``. :class:`DictionaryError` is a
:class:`kabinet.forms.FieldError` (the page kit shows it beside its field, the host's
problem handler answers it), with its messages from the app's own text keys below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kabinet import forms

MESSAGES: dict[str, tuple[str, str]] = {
    # key: (Russian, English)
    "required": ("Заполните это поле.", "A value is required."),
    "too_long": ("Не длиннее {max} символов.", "At most {max} characters."),
    "number": ("Введите число.", "Enter a number."),
    "precision": (
        "Не больше {precision} знаков после запятой.",
        "At most {precision} decimal places.",
    ),
    "too_big": ("Слишком большое число.", "The number is too large."),
    "date": ("Введите дату (ГГГГ-ММ-ДД или ДД.ММ.ГГГГ).", "Enter a date (YYYY-MM-DD)."),
    "datetime": ("Введите дату и время.", "Enter a date and time."),
    "bool": ("Ответьте «да» или «нет».", "Answer yes or no."),
    "choice": ("Выберите одно из значений: {choices}.", "Choose one of: {choices}."),
    "reference": ("Нет такой записи в справочнике «{type}».", "No such entry in “{type}”."),
    "file": ("Загрузите файл.", "Upload a file."),
    "file_import": ("Файлы не загружаются из таблицы.", "Files cannot be imported."),
    "unique": ("Такое значение уже есть у записи №{entry}.", "Entry #{entry} has this value."),
    "unknown_field": ("В справочнике нет поля «{code}».", "The dictionary has no field {code}."),
    "code": (
        "Код: латинские буквы, цифры и «_», с буквы, до 64 знаков.",
        "A code is Latin letters, digits and _, starting with a letter, up to 64.",
    ),
    "name": ("Укажите название.", "A name is required."),
    "taken_type": ("Справочник с кодом «{code}» уже есть.", "A dictionary {code} exists."),
    "taken_field": ("Поле с кодом «{code}» уже есть.", "A field {code} exists."),
    "kind": ("Неизвестный вид поля «{kind}».", "Unknown field kind {kind}."),
    "kind_change": (
        "Вид поля не меняется: удалите поле и добавьте новое.",
        "A field's kind cannot change: remove it and add a new one.",
    ),
    "choices_needed": ("Перечислите значения списка.", "List the choices."),
    "choice_in_use": (
        "Значение «{choice}» выбрано в {count} записях.",
        "{count} entries use the choice {choice}.",
    ),
    "reference_type": (
        "Укажите справочник, на записи которого ссылается поле.",
        "Name the dictionary whose entries the field refers to.",
    ),
    "precision_range": ("Точность: от 0 до 6 знаков.", "Precision is 0 to 6 places."),
    "default_file": ("У поля-файла нет значения по умолчанию.", "A file field has no default."),
    "default_invalid": ("Значение по умолчанию: {reason}", "The default: {reason}"),
    "required_missing": (
        "У {count} записей нет значения «{name}»: заполните их или задайте значение по умолчанию.",
        "{count} entries have no value for {name}: give them one or set a default.",
    ),
    "unique_duplicates": (
        "Значения «{name}» повторяются в {count} записях.",
        "{count} entries share values of {name}.",
    ),
    "referenced": (
        "На справочник ссылается поле «{name}» справочника «{type}».",
        "Field {name} of {type} refers to this dictionary.",
    ),
    "entry_referenced": (
        "На запись ссылаются {count} записей.",
        "{count} entries refer to this entry.",
    ),
    "publish": ("Публикация: none, all или some.", "Publish is none, all or some."),
    "organization": ("Номер организации — целое число.", "An organization is a whole number."),
    "role": ("Нет роли «{role}».", "No role {role}."),
    "not_found": ("Не найдено.", "Not found."),
    "document_reach": (
        "Документы этой организации ведут её менеджеры; документы для всех — администратор.",
        "Documents of an organization are managed by its managers; those for all, by an admin.",
    ),
    "edit_reach": (
        "Записи справочника, опубликованного не только вашим организациям, ведёт администратор.",
        "Entries of a dictionary published beyond your organizations are edited by an admin.",
    ),
    "file_type": (
        "Файл этого вида не принимается ({found}); можно: {allowed}.",
        "This kind of file is not accepted ({found}); allowed: {allowed}.",
    ),
    "file_size": ("Файл больше {limit} МБ.", "The file is larger than {limit} MB."),
    "file_empty": ("Файл пуст.", "The file is empty."),
    "import_format": (
        "Загрузите таблицу CSV или XLSX с заголовками полей в первой строке.",
        "Upload a CSV or XLSX table with the field headers in the first row.",
    ),
    "import_header": (
        "Столбец «{header}» не совпадает ни с одним полем.",
        "Column {header} matches no field.",
    ),
    "title": ("Укажите название документа.", "A title is required."),
    "validity": (
        "Дата окончания раньше даты начала.",
        "The end of validity is before its start.",
    ),
}


PLURALS: dict[str, tuple[str, str]] = {
    # key: (English singular, English plural); the Russian forms (one, few, many) are in
    # locale/ru/LC_MESSAGES/messages.po, chosen by Babel's plural rule for ``count``.
    "choice_in_use": (
        "{count} entry uses the choice {choice}.",
        "{count} entries use the choice {choice}.",
    ),
    "required_missing": (
        "{count} entry has no value for {name}: give it one or set a default.",
        "{count} entries have no value for {name}: give them one or set a default.",
    ),
    "unique_duplicates": (
        "{count} entry shares values of {name}.",
        "{count} entries share values of {name}.",
    ),
    "entry_referenced": (
        "{count} entry refers to this entry.",
        "{count} entries refer to this entry.",
    ),
}


def render(key: str, params: Mapping[str, Any], language: str) -> str:
    """The message in ``language``: a count takes its noun's plural form (the host's
    ngettext), a refusal given as a parameter (the reason of another) is said in the same
    language."""
    said = {
        k: v.text(language) if isinstance(v, (ValueRefused, DictionaryError)) else v
        for k, v in params.items()
    }
    if key in PLURALS and isinstance(params.get("count"), int):
        from kabinet.i18n import ngettext_

        singular, plural = PLURALS[key]
        return ngettext_(language, singular, plural, int(params["count"])).format(**said)
    ru, en = MESSAGES[key]
    return (ru if language == "ru" else en).format(**said)


class Said(str):
    """A refusal's English message that also says it in another language when called:
    ``exc.message("ru")``, what callers of the app's errors used before they became
    :class:`kabinet.forms.FieldError` (whose ``message`` is a text); prefer ``text(lang)``."""

    say: Callable[[str], str]

    def __new__(cls, english: str, say: Callable[[str], str]) -> Said:
        made = super().__new__(cls, english)
        made.say = say
        return made

    def __call__(self, language: str) -> str:
        return self.say(language)


class DictionaryError(forms.FieldError):
    """A refusal: ``status`` 400/403/404/409/413/415/422, ``field`` the input at fault,
    ``key`` its message in :data:`MESSAGES` filled with ``params``."""

    status = 400

    def __init__(self, key: str, field: str | None = None, **params: Any) -> None:
        self.key = key
        super().__init__(render(key, params, "en"), field, params=params)

    @property
    def message(self) -> Said:
        return Said(self.english(), self.text)

    @message.setter
    def message(self, value: str) -> None:
        pass  # always said from ``key`` and ``params``

    def text(self, lang: str) -> str:
        return render(self.key, self.params, lang)

    def english(self) -> str:
        return render(self.key, self.params, "en")


class NotFound(DictionaryError):
    status = 404

    def __init__(self, what: str = "") -> None:
        super().__init__("not_found", None)
        self.what = what


class Forbidden(DictionaryError):
    """A staff right that does not reach the organizations the object is addressed to."""

    status = 403


class Conflict(DictionaryError):
    """The structure change would break entries; nothing was changed."""

    status = 409


class FileRefused(DictionaryError):
    status = 415


class FileTooBig(DictionaryError):
    status = 413


class ValueRefused(ValueError):
    """One value refused by its field's rules (collected into :class:`Invalid`); not a
    form's field yet: :class:`Invalid` names the field."""

    def __init__(self, key: str, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(render(key, params, "en"))

    def text(self, lang: str) -> str:
        return render(self.key, self.params, lang)


class Invalid(DictionaryError):
    """Values refused, by field code; the form comes back with each field's error.

    ``refused`` holds the refusals by field code; ``errors`` (the page kit's) one
    :class:`DictionaryError` for each, named by the field's code."""

    status = 422

    def __init__(self, refused: Mapping[str, ValueRefused]) -> None:
        self.refused = dict(refused)
        first = next(iter(self.refused), None)
        super().__init__("required", first)
        self.errors = [DictionaryError(e.key, code, **e.params) for code, e in self.refused.items()]
        self.args = ("; ".join(f"{k}: {v}" for k, v in self.refused.items()),)

    def text(self, lang: str) -> str:
        return "; ".join(e.text(lang) for e in self.refused.values())

    def english(self) -> str:
        return self.text("en")

    def by_field(self, language: str) -> dict[str, str]:
        return {code: e.text(language) for code, e in self.refused.items()}
