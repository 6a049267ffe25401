"""Settings from the environment, one msgspec Struct shared by every app and command."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

# Environment variable name -> Settings field. Documented in docs/configuration.md.
ENV_VARS: dict[str, str] = {
    "DATABASE_URL": "database_url",
    "REDIS_URL": "redis_url",
    "SIGNER_URL": "signer_url",
    "SZT_SIM_URL": "sim_url",
    "SZT_VAR_DIR": "var_dir",
    "SZT_HOST": "host",
    "SZT_PORT": "port",
    "SZT_SIM_PORT": "sim_port",
    "SZT_SIGNER_PORT": "signer_port",
    "SZT_PUBLIC_URL": "public_url",
    "SZT_ISSUER": "issuer",
    "SZT_ADMIN_PASSWORD": "admin_password",
    "SZT_DEMO_CLIENT_SECRET": "demo_client_secret",
    "SZT_FIELD_KEYS": "field_keys",
    "SZT_LOG_LEVEL": "log_level",
    "SZT_DB_POOL_MAX": "db_pool_max",
    "SZT_MAX_BODY_BYTES": "max_body_bytes",
    "SZT_SERVER": "server",
    "SZT_WORKERS": "workers",
    "SZT_SERVER_LOOP": "server_loop",
    "SZT_OIDC_RATE_PER_IP": "oidc_rate_per_ip",
    "SZT_OIDC_RATE_PER_CLIENT": "oidc_rate_per_client",
    "SZT_SMS_RATE_PER_IP": "sms_rate_per_ip",
    "SZT_ENROL_RATE_PER_IP": "enrol_rate_per_ip",
}


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str = ""
    redis_url: str = ""
    signer_url: str = ""
    sim_url: str = ""
    var_dir: str = "var"
    host: str = "127.0.0.1"
    port: int = 8000
    sim_port: int = 8100
    signer_port: int = 8200
    public_url: str = ""
    issuer: str = ""
    admin_password: str = ""
    demo_client_secret: str = ""
    # "kid:hex,kid:hex,index:hex" — master secrets for personal data (core.fieldcrypt); the first kid encrypts,
    # all decrypt; `index` keys the blind index and never rotates. Unset: generated once under var/keys/.
    field_keys: str = ""
    log_level: str = "INFO"
    db_pool_max: int = 10
    max_body_bytes: int = 1_048_576
    server: str = "granian"
    workers: int = 1
    # granian's event loop: uvloop wakes the loop for each request's I/O from granian's threads at about half the
    # cost of asyncio's self-pipe (OIDC introspection 5,800 → 7,700 req/s); "asyncio" to compare.
    server_loop: str = "uvloop"
    # Requests per minute at the OIDC token, introspection, revocation and PAR endpoints.
    oidc_rate_per_ip: int = 1200
    oidc_rate_per_client: int = 6000
    # Per hour and network address: SMS codes sent, enrolments attempted.
    sms_rate_per_ip: int = 20
    enrol_rate_per_ip: int = 10
    # Hardening (core.edge, core.forwarded, core.idempotency). Addresses or CIDRs of the load balancers whose
    # X-Forwarded-For / X-Forwarded-Proto / Forwarded headers are believed; empty: none, the peer is the client.
    trusted_proxies: str = ""
    # `/metrics` needs `Authorization: Bearer <token>`; unset: a token generated once in var/metrics-token.
    metrics_token: str = ""
    # Serve `/metrics` without a token (only where the port is reachable by the scraper alone).
    metrics_open: bool = False
    # Idempotency-Key answers one caller may have stored at a time (24 h each).
    idempotency_keys_per_caller: int = 1000

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def simulators_url(self) -> str:
        return self.sim_url or f"http://{self.host}:{self.sim_port}"

    @property
    def signing_server_url(self) -> str:
        return self.signer_url or f"http://{self.host}:{self.signer_port}"

    @property
    def issuer_url(self) -> str:
        return self.issuer or f"{self.base_url}/identity"

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir).resolve()


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from the environment; `overrides` win (used by tests and the CLI)."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {field: env[name] for name, field in ENV_VARS.items() if env.get(name)}
    raw.update(overrides)
    return msgspec.convert(raw, Settings, strict=False)


# Environment variables of the fields appended above (kept here so the table at the top stays untouched).
ENV_VARS.update(
    {
        "SZT_TRUSTED_PROXIES": "trusted_proxies",
        "SZT_METRICS_TOKEN": "metrics_token",
        "SZT_METRICS_OPEN": "metrics_open",
        "SZT_IDEMPOTENCY_KEYS_PER_CALLER": "idempotency_keys_per_caller",
    }
)
