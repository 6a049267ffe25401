"""Settings from the environment, one msgspec Struct shared by every app and command.

Every variable the product reads is a field of `Settings`: its environment name, meaning and (where the plain
default says little) the default as a reader should understand it live in the field's `Meta`. `docs/configuration.md`
is generated from them (`python -m core.settings_doc`); a test fails when it drifts. Code that must hand settings to
a child process or to a later `load_settings()` in this process uses `export`, `child_environment` and
`environment_restored` below — nothing else touches `os.environ`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import msgspec
from msgspec import Meta


def _var(env: str, description: str, shown: str | None = None) -> Meta:
    extra: dict[str, Any] = {"env": env}
    if shown is not None:
        extra["default"] = shown
    return Meta(description=description, extra=extra)


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: Annotated[
        str,
        _var(
            "DATABASE_URL",
            "PostgreSQL DSN, e.g. `postgresql://szt:pw@db:5432/szt`",
            "embedded PostgreSQL under `var/pg`",
        ),
    ] = ""
    redis_url: Annotated[
        str,
        _var(
            "REDIS_URL",
            "`redis://host:6379/0` or `unix:///path/redis.sock`",
            "embedded Redis under `var/redis` (Unix socket)",
        ),
    ] = ""
    signer_url: Annotated[
        str,
        _var("SIGNER_URL", "signing and verification server", "`http://SZT_HOST:SZT_SIGNER_PORT` (the simulator)"),
    ] = ""
    sim_url: Annotated[
        str, _var("SZT_SIM_URL", "base URL of the external parties (simulators)", "`http://SZT_HOST:SZT_SIM_PORT`")
    ] = ""
    tsa_url: Annotated[
        str | None,
        _var(
            "TSA_URL",
            "RFC 3161 time-stamping authority for PAdES seals; `off` (or empty) seals without timestamps",
            "`SZT_SIM_URL/tsa/v1/timestamp` (the simulator)",
        ),
    ] = None
    govplatform_url: Annotated[
        str,
        _var(
            "GOVPLATFORM_URL",
            "the integrated government-service platform's exchange gateway (办件 feed, item catalogue)",
            "`SZT_SIM_URL/govplatform` (the simulator)",
        ),
    ] = ""
    seal_platform_url: Annotated[
        str,
        _var(
            "SZT_SEAL_PLATFORM_URL",
            "national / provincial e-seal platform (赋码, 备案, status sync, mutual recognition)",
            "`SZT_SIM_URL/sealplatform` (the simulator)",
        ),
    ] = ""
    var_dir: Annotated[str, _var("SZT_VAR_DIR", "where embedded databases, keys and files live")] = "var"
    host: Annotated[str, _var("SZT_HOST", "where `szt serve` listens (address)")] = "127.0.0.1"
    port: Annotated[int, _var("SZT_PORT", "where `szt serve` listens (port)")] = 8000
    sim_port: Annotated[int, _var("SZT_SIM_PORT", "where the simulators listen")] = 8100
    signer_port: Annotated[int, _var("SZT_SIGNER_PORT", "where the signing server simulator listens")] = 8200
    public_url: Annotated[str, _var("SZT_PUBLIC_URL", "the server's public base URL", "`http://SZT_HOST:SZT_PORT`")] = (
        ""
    )
    issuer: Annotated[str, _var("SZT_ISSUER", "OpenID Connect issuer", "`SZT_PUBLIC_URL/identity`")] = ""
    admin_password: Annotated[
        str,
        _var(
            "SZT_ADMIN_PASSWORD",
            "password of the platform administrator `admin`",
            "generated once, printed, stored under `var/`",
        ),
    ] = ""
    demo_client_secret: Annotated[
        str,
        _var(
            "SZT_DEMO_CLIENT_SECRET",
            "secret of the demo portal client `demo-portal`",
            "generated once, stored under `var/`",
        ),
    ] = ""
    field_keys: Annotated[
        str,
        _var(
            "SZT_FIELD_KEYS",
            "`kid:hex,…,index:hex` — master secrets for personal-data encryption (core.fieldcrypt); the first kid "
            "encrypts, all decrypt; `index` keys the blind index and never rotates",
            "generated once into `var/keys/field-keys` (0600)",
        ),
    ] = ""
    log_level: Annotated[str, _var("SZT_LOG_LEVEL", "`DEBUG` also writes one access-log line per request")] = "INFO"
    db_pool_max: Annotated[int, _var("SZT_DB_POOL_MAX", "PostgreSQL pool size per process")] = 10
    max_body_bytes: Annotated[int, _var("SZT_MAX_BODY_BYTES", "request body cap (413 above it)")] = 1_048_576
    server: Annotated[str, _var("SZT_SERVER", "ASGI server of `szt serve`: `granian` or `uvicorn`")] = "granian"
    workers: Annotated[int, _var("SZT_WORKERS", "worker processes of the ASGI server")] = 1
    server_loop: Annotated[
        str,
        _var(
            "SZT_SERVER_LOOP",
            "granian's event loop (`uvloop`, `asyncio`, `rloop`): uvloop wakes the loop for each request's I/O from "
            "granian's threads at about half the cost of asyncio's self-pipe",
        ),
    ] = "uvloop"
    serve_apps: Annotated[
        str,
        _var(
            "SZT_SERVE_APPS",
            "comma-separated apps `szt serve` mounts (set by `szt serve NAME…` for its server processes)",
            "all",
        ),
    ] = ""
    oidc_rate_per_ip: Annotated[
        int,
        _var(
            "SZT_OIDC_RATE_PER_IP",
            "requests per minute and network address at the OIDC token, introspection, revocation and PAR endpoints",
        ),
    ] = 1200
    oidc_rate_per_client: Annotated[
        int, _var("SZT_OIDC_RATE_PER_CLIENT", "requests per minute and client at the same OIDC endpoints")
    ] = 6000
    sms_rate_per_ip: Annotated[
        int,
        _var(
            "SZT_SMS_RATE_PER_IP",
            "SMS codes sent per hour and network address (per phone: one code a minute, ten a day)",
        ),
    ] = 20
    enrol_rate_per_ip: Annotated[
        int, _var("SZT_ENROL_RATE_PER_IP", "enrolments attempted per hour and network address")
    ] = 10
    eseal_verify_rate_per_ip: Annotated[
        int,
        _var(
            "SZT_ESEAL_VERIFY_RATE_PER_IP",
            "document verifications per minute and network address at `POST /eseal/v1/verifications` (a business "
            "system behind one address verifying in bulk may need more)",
        ),
    ] = 120
    signer_app_id: Annotated[
        str,
        _var(
            "SZT_SIGNER_APP_ID",
            "app id eseal signs its requests to the signing server with (with `SZT_SIGNER_APP_SECRET`)",
            "the simulator's app file under `var/signer/`",
        ),
    ] = ""
    signer_app_secret: Annotated[
        str,
        _var(
            "SZT_SIGNER_APP_SECRET",
            "the secret of `SZT_SIGNER_APP_ID`",
            "the simulator's app file under `var/signer/`",
        ),
    ] = ""
    signer_allow: Annotated[
        str, _var("SZT_SIGNER_ALLOW", "addresses or CIDRs the signing server simulator accepts (comma-separated)")
    ] = "127.0.0.1,::1"
    biz_step_seconds: Annotated[
        float,
        _var("SZT_BIZ_STEP_SECONDS", "the business-system simulator moves each case one step this often (seconds)"),
    ] = 30.0
    push_consumers: Annotated[
        int,
        _var(
            "SZT_PUSH_CONSUMERS",
            "concurrent consumers per push provider channel in each worker (at least 1)",
        ),
    ] = 4
    push_recover_every: Annotated[
        int,
        _var("SZT_PUSH_RECOVER_EVERY", "seconds between the worker's runs that take back stale 'sending' pairs"),
    ] = 30
    push_claim_idle_ms: Annotated[
        int,
        _var(
            "SZT_PUSH_CLAIM_IDLE_MS",
            "a crashed push consumer's stream entries are taken over after this many milliseconds",
        ),
    ] = 60_000
    push_sending_timeout: Annotated[
        float,
        _var(
            "SZT_PUSH_SENDING_TIMEOUT",
            "a pair left 'sending' by a worker whose heartbeat is gone is taken back after this many seconds "
            "(longer than any provider call)",
        ),
    ] = 120.0
    worker_heartbeat: Annotated[
        float,
        _var(
            "SZT_WORKER_HEARTBEAT",
            "seconds between a worker's proofs of life (its heartbeat key lives three times as long)",
        ),
    ] = 10.0
    worker_metrics_port: Annotated[
        int, _var("SZT_WORKER_METRICS_PORT", "port of each worker's Prometheus `/metrics` (0: none)")
    ] = 8300
    worker_metrics_host: Annotated[
        str, _var("SZT_WORKER_METRICS_HOST", "address each worker's Prometheus `/metrics` listens on")
    ] = "127.0.0.1"
    worker_extra_jobs: Annotated[
        str,
        _var(
            "SZT_WORKER_EXTRA_JOBS",
            "more job modules `szt worker` imports (comma-separated), e.g. a deployment's own or the tests' probe",
            "none",
        ),
    ] = ""
    bench_push_n: Annotated[
        int,
        _var(
            "SZT_BENCH_PUSH_N", "bench only: recipients of the push broadcast scenario", "100,000 quick, else 1,000,000"
        ),
    ] = 0
    bench_push_pyspy: Annotated[
        str,
        _var(
            "SZT_BENCH_PUSH_PYSPY",
            "bench only: a directory; samples each push worker with py-spy during the broadcast",
            "off",
        ),
    ] = ""
    bench_home_body: Annotated[
        str,
        _var("SZT_BENCH_HOME_BODY", "bench only: the body file the bare home peer serves (set by the bench)", "none"),
    ] = ""
    outbound_allow: Annotated[
        str,
        _var(
            "SZT_OUTBOUND_ALLOW",
            "destinations the outbound-request guard (core.outbound) lets through although they are private, loopback, "
            "link-local or our own services, for URLs outsiders give us (app entries, back-channel logout): "
            "comma-separated host names, addresses or CIDRs, each optionally with `:port` (`[v6]:port`), e.g. "
            "`10.20.0.0/16,intranet.example.gov.cn:8443`",
            "none: only public addresses",
        ),
    ] = ""
    outbound_http: Annotated[
        bool,
        _var(
            "SZT_OUTBOUND_HTTP",
            "the outbound-request guard also accepts plain `http://` URLs from outsiders (development and tests, "
            "where the simulators speak http); otherwise only `https://`",
        ),
    ] = False
    # Hardening (core.edge, core.forwarded, core.idempotency, core.observe).
    trusted_proxies: Annotated[
        str,
        _var(
            "SZT_TRUSTED_PROXIES",
            "load balancers whose `X-Forwarded-For` / `X-Forwarded-Proto` / `Forwarded` headers are believed (for "
            "rate limits, logs, `Secure` cookies, the console's Origin check): comma-separated addresses or CIDRs",
            "none: the connection's peer is the client",
        ),
    ] = ""
    metrics_token: Annotated[
        str,
        _var(
            "SZT_METRICS_TOKEN",
            "bearer token `/metrics` asks for (`Authorization: Bearer …`)",
            "generated once into `var/metrics-token` (0600)",
        ),
    ] = ""
    metrics_open: Annotated[
        bool,
        _var("SZT_METRICS_OPEN", "serve `/metrics` without a token (only where the scraper alone reaches the port)"),
    ] = False
    idempotency_keys_per_caller: Annotated[
        int,
        _var("SZT_IDEMPOTENCY_KEYS_PER_CALLER", "stored `Idempotency-Key` answers one caller may hold (24 h each)"),
    ] = 1000
    admin_session_idle_s: Annotated[
        int,
        _var(
            "SZT_ADMIN_SESSION_IDLE_S",
            "an administrator session (API token and console cookie) ends after this many seconds without a request; "
            "each request restarts the count (sliding)",
        ),
    ] = 1800
    admin_session_max_s: Annotated[
        int,
        _var(
            "SZT_ADMIN_SESSION_MAX_S",
            "an administrator session ends this many seconds after sign-in however active it is (absolute cap)",
        ),
    ] = 43200
    op_log_online_months: Annotated[
        int,
        _var(
            "SZT_OP_LOG_ONLINE_MONTHS",
            "months of the operation log kept online (searchable) before the monthly job moves each older month, "
            "chain hashes and all, into the archive, which is kept for good and exported by month (at least 1)",
        ),
    ] = 24
    haocp_url: Annotated[
        str, _var("SZT_HAOCP_URL", "the provincial 好差评 system (ratings reported)", "`SZT_SIM_URL/haocp`")
    ] = ""

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def simulators_url(self) -> str:
        return self.sim_url or f"http://{self.host}:{self.sim_port}"

    @property
    def govplatform_base(self) -> str:
        return self.govplatform_url or f"{self.simulators_url}/govplatform"

    @property
    def seal_platform(self) -> str:
        return self.seal_platform_url or f"{self.simulators_url}/sealplatform"

    @property
    def haocp_endpoint(self) -> str:
        return self.haocp_url or f"{self.simulators_url}/haocp"

    @property
    def signing_server_url(self) -> str:
        return self.signer_url or f"http://{self.host}:{self.signer_port}"

    @property
    def issuer_url(self) -> str:
        return self.issuer or f"{self.base_url}/identity"

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir).resolve()

    @property
    def serve_app_names(self) -> list[str]:
        """The apps named in `serve_apps` (empty: all)."""
        return [n for n in self.serve_apps.split(",") if n]


def _metas() -> dict[str, Meta]:
    hints = get_type_hints(Settings, include_extras=True)
    out: dict[str, Meta] = {}
    for field in Settings.__struct_fields__:
        metas = [m for m in getattr(hints[field], "__metadata__", ()) if isinstance(m, Meta)]
        out[field] = metas[0]
    return out


FIELD_META: dict[str, Meta] = _metas()
# Environment variable name -> Settings field.
ENV_VARS: dict[str, str] = {(m.extra or {})["env"]: field for field, m in FIELD_META.items()}
ENV_NAME: dict[str, str] = {field: env for env, field in ENV_VARS.items()}
# Variables read even when set to the empty string (TSA_URL="" turns timestamps off, SZT_SIGNER_ALLOW="" admits none).
KEEP_EMPTY = frozenset({"TSA_URL", "SZT_SIGNER_ALLOW"})


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from the environment; `overrides` win (used by tests and the CLI)."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {
        field: env[name] for name, field in ENV_VARS.items() if env.get(name) or (name in KEEP_EMPTY and name in env)
    }
    raw.update(overrides)
    return msgspec.convert(raw, Settings, strict=False)


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def export(**fields: object) -> None:
    """Set settings (by field name) in this process's environment, for the child processes it starts and a later
    `load_settings()` (the embedded servers' URLs, a bench's temporary var directory)."""
    for field, value in fields.items():
        os.environ[ENV_NAME[field]] = _text(value)


def child_environment(
    *, clean: bool = False, extra: Mapping[str, str] | None = None, **fields: object
) -> dict[str, str]:
    """The environment for a child process: this process's, without any setting when `clean` (the child gets only
    the `fields` given, by field name), plus `extra` variables that are not settings (PYTHONUNBUFFERED, a peer's)."""
    env = dict(os.environ)
    if clean:
        env = {k: v for k, v in env.items() if k not in ENV_VARS and not k.startswith("SZT_")}
    env.update({ENV_NAME[field]: _text(value) for field, value in fields.items()})
    env.update(extra or {})
    return env


def saved_environment(*fields: str) -> Callable[[], None]:
    """Remember this process's environment variables of these settings (by field name); the returned function puts
    them back as they were."""
    saved = {ENV_NAME[f]: os.environ.get(ENV_NAME[f]) for f in fields}

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore


@contextlib.contextmanager
def environment_restored(*fields: str) -> Iterator[None]:
    """Put back this process's environment variables of these settings (by field name) on leaving."""
    restore = saved_environment(*fields)
    try:
        yield
    finally:
        restore()


def unset(*fields: str) -> None:
    """Remove settings (by field name) from this process's environment."""
    for field in fields:
        os.environ.pop(ENV_NAME[field], None)
