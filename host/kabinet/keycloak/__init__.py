"""Keycloak as the portal's identity provider (the built-in plugin ``keycloak``).

Inactive until ``[keycloak] server_url`` is set. Then people sign in through Keycloak
(OIDC authorization code with PKCE), and the portal, which stays the source of truth for
roles and grants, pushes them to Keycloak through its admin API from event subscribers.
"""
