"""The Keycloak plugin's services moved to ``kabinet.keycloak.services`` (the file name every
plugin uses for its services); the old module still answers, warning, under the
deprecation policy of docs/plugins.md."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.smoke


def test_a_name_from_the_old_module_resolves_and_warns_naming_the_new_one() -> None:
    from kabinet.keycloak import services

    with pytest.warns(DeprecationWarning, match=r"use kabinet\.keycloak\.services\.KEYCLOAK"):
        from kabinet.keycloak.service import KEYCLOAK
    assert KEYCLOAK is services.KEYCLOAK


def test_a_name_the_old_module_never_had_is_refused() -> None:
    import kabinet.keycloak.service as old

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = old.nothing
