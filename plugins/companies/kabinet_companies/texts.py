"""Texts of the companies pages in Russian and English.

Labels are keyed (``t.inn`` in templates); messages from the services and identity are
English message ids, translated by the catalogs (this app's in ``locale/``), falling back
to the English text.
"""

from __future__ import annotations

from kabinet import i18n

LABELS: dict[str, tuple[str, str]] = {
    "register": ("Регистрация", "Registration"),
    "full_name": ("ФИО", "Full name"),
    "email": ("E-mail", "E-mail"),
    "phone": ("Телефон", "Phone"),
    "password": ("Пароль", "Password"),
    "password2": ("Пароль ещё раз", "Password again"),
    "consent": ("Согласие на обработку персональных данных", "Personal data consent"),
    "agree": ("Я согласен(на)", "I agree"),
    "version": ("Версия", "Version"),
    "submit_register": ("Зарегистрироваться", "Register"),
    "confirm_title": ("Подтвердите e-mail и телефон", "Confirm your e-mail and phone"),
    "confirm_lead": (
        "Мы отправили коды на вашу почту и по СМС. Пока оба не подтверждены, кабинет недоступен.",
        "We sent codes to your e-mail and by SMS. Until both are confirmed the portal is closed.",
    ),
    "email_code": ("Код из письма", "Code from the e-mail"),
    "phone_code": ("Код из СМС", "Code from the SMS"),
    "confirm": ("Подтвердить", "Confirm"),
    "resend": ("Отправить код ещё раз", "Send the code again"),
    "confirmed": ("подтверждён", "confirmed"),
    "my_companies": ("Мои компании", "My companies"),
    "no_companies": ("Вы пока не привязаны ни к одной компании.", "You belong to no company yet."),
    "my_requests": ("Мои запросы", "My requests"),
    "new_request": ("Запрос на привязку к компании", "Ask to join a company"),
    "inn": ("ИНН", "INN"),
    "kpp": ("КПП", "KPP"),
    "company_name": ("Название компании", "Company name"),
    "new_company": (
        "Компании ещё нет в кабинете (новая компания)",
        "The company is not in the portal yet (a new company)",
    ),
    "comment": ("Комментарий", "Comment"),
    "send": ("Отправить", "Send"),
    "status": ("Статус", "Status"),
    "organization": ("Организация", "Organization"),
    "organizations": ("Организации", "Organizations"),
    "roles": ("Роли", "Roles"),
    "role": ("Роль", "Role"),
    "search": ("Поиск", "Search"),
    "search_org": ("Название или ИНН", "Name or INN"),
    "search_contact": ("Имя, e-mail или телефон", "Name, e-mail or phone"),
    "manager": ("Менеджер", "Manager"),
    "managers": ("Менеджеры", "Managers"),
    "any": ("Все", "Any"),
    "home_open_requests": ("Запросы на привязку к компании", "Requests to join a company"),
    "home_unassigned": (
        "Контрагенты без организации",
        "Counterparties without an organization",
    ),
    "any_organization": ("Любая (введите название)", "Any (type a name)"),
    "find": ("Найти", "Find"),
    "create": ("Создать", "Create"),
    "new_organization": ("Новая организация", "New organization"),
    "counterparties": ("Контрагенты", "Counterparties"),
    "unassigned": ("Нераспределённые контрагенты", "Unassigned counterparties"),
    "contacts": ("Контакты", "Contacts"),
    "requests": ("Запросы на привязку", "Link requests"),
    "invitations": ("Приглашения", "Invitations"),
    "invite": ("Пригласить", "Invite"),
    "expires": ("Действует до", "Expires"),
    "revoke": ("Отозвать", "Revoke"),
    "save": ("Сохранить", "Save"),
    "attach": ("Привязать", "Attach"),
    "make_org": ("Создать организацию", "Create an organization"),
    "person": ("Человек", "Person"),
    "created": ("Создан", "Created"),
    "decided": ("Решение", "Decided"),
    "history": ("История решений", "Decision history"),
    "accept": ("Принять", "Accept"),
    "reject": ("Отклонить", "Reject"),
    "review": ("Взять в работу", "Take into review"),
    "reason": ("Причина", "Reason"),
    "new_org_hint": (
        "Пусто — организация из запроса (или новая из контрагента)",
        "Empty: the request's organization (or a new one from its counterparty)",
    ),
    "leads_to": ("Ведёт в организацию", "Leads to"),
    "led_to": ("Организация", "Organization"),
    "new_org_on_accept": (
        "новая организация (будет создана при принятии)",
        "a new organization (made on acceptance)",
    ),
    "no_organization": ("без организации", "no organization"),
    "target_changed": (
        "Запрос отправлен для другой организации",
        "The request was made for another organization",
    ),
    "target_changed_hint": (
        "Контрагент с тех пор перенесён: человек получит доступ к организации, в которой "
        "контрагент сейчас.",
        "Its counterparty has moved since: the person gets access to the organization the "
        "counterparty is in now.",
    ),
    "changed": ("изменилась", "changed"),
    "since": ("С", "From"),
    "until": ("По", "To"),
    "sort": ("Сортировка", "Sort"),
    "name": ("Название", "Name"),
    "assign": ("Назначить", "Assign"),
    "unassign": ("Снять", "Remove"),
    "none": ("Нет.", "None."),
    "edit": ("Изменить", "Edit"),
    "no_my_requests": (
        "Вы ещё не отправляли запросов на привязку к компании.",
        "You have not asked to join a company yet.",
    ),
    "no_unassigned": (
        "Все контрагенты привязаны к организациям.",
        "Every counterparty belongs to an organization.",
    ),
    "current_org": ("Текущая организация", "Current organization"),
    "switch": ("Перейти", "Switch"),
    "all_mine": ("Все мои компании", "All my companies"),
    "invitation": ("Приглашение", "Invitation"),
    "invitation_gone": (
        "Ссылка приглашения неверна. Проверьте её или попросите менеджера отправить новое "
        "приглашение.",
        "This invitation link is not valid. Check it, or ask your manager for a new invitation.",
    ),
    "sign_in": ("Войти", "Sign in"),
    "invitation_expired": (
        "Срок приглашения истёк. Попросите менеджера отправить его ещё раз.",
        "The invitation has expired. Ask your manager to send it again.",
    ),
    "invitation_revoked": (
        "Приглашение отозвано. Если это ошибка, обратитесь к менеджеру.",
        "The invitation was revoked. If this is a mistake, contact your manager.",
    ),
    "invitation_accepted": (
        "Приглашение уже принято. Войдите со своим e-mail и паролем.",
        "The invitation has already been accepted. Sign in with your e-mail and password.",
    ),
    "set_password": ("Задайте пароль и подтвердите телефон", "Set a password, confirm your phone"),
    "consent_new": (
        "Текст согласия изменился. Чтобы продолжить, ознакомьтесь и согласитесь.",
        "The consent text has changed. Read it and agree to continue.",
    ),
    "consent_edit": ("Текст согласия", "Consent text"),
    "publish": ("Опубликовать новую версию", "Publish a new version"),
    "text_ru": ("Текст (рус.)", "Text (Russian)"),
    "text_en": ("Текст (англ.)", "Text (English)"),
    "pages": ("Страница", "Page"),
    "total": ("Всего", "Total"),
    "open": ("Открытые", "Open"),
    "st_new": ("новый", "new"),
    "st_in_review": ("на рассмотрении", "in review"),
    "st_accepted": ("принят", "accepted"),
    "st_rejected": ("отклонён", "rejected"),
    "withdraw": ("Отозвать", "Withdraw"),
    "withdraw_confirm": ("Отозвать запрос?", "Withdraw the request?"),
    "st_withdrawn": ("отозван", "withdrawn"),
    "st_pending": ("ожидает", "pending"),
    "st_expired": ("просрочено", "expired"),
    "st_revoked": ("отозвано", "revoked"),
    "a_created": ("создан", "created"),
    "a_in_review": ("взят в работу", "taken into review"),
    "a_accepted": ("принят", "accepted"),
    "a_rejected": ("отклонён", "rejected"),
    "a_withdrawn": ("отозван", "withdrawn"),
    "sent": ("Отправлено", "Sent"),
    "have_account": ("Уже зарегистрированы? Войти", "Registered already? Sign in"),
}


def texts(lang: str) -> dict[str, str]:
    index = 0 if lang == "ru" else 1
    return {key: pair[index] for key, pair in LABELS.items()}


def text(message: str, lang: str) -> str:
    """A message of the services (English) in ``lang``: through the shell's catalogs, which
    include this app's (``locale/``, the ``locale_dir`` hook) and identity's."""
    return i18n.gettext_(lang, message)
