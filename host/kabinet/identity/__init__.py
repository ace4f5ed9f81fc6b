"""The built-in identity: accounts, passwords, sessions, codes, API tokens, security log.

It is the embedded default of "who is asking"; Keycloak replaces the login flow in
production but the accounts table stays the portal's own (grants point at it).
"""
