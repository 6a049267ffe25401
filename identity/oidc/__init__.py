"""The OpenID provider: authorization requests, tokens, client authentication, JOSE, scopes, logout, demo portal."""
