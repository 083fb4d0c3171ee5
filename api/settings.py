"""The API's settings: serving and live fan-out (`api`), accounts, email and billing."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from runtime.settings import RuntimeSettings


class ApiSettings(BaseModel):
    """How the API serves and fans out live data."""

    host: str = "127.0.0.1"
    """Address the API listens on (`tickscan run` and `tickscan api`)."""

    port: int = Field(default=8000, ge=0, le=65535)
    """Port the API listens on; 0 picks a free one."""

    topic_prefix: str = ""
    """Prefix of the topics the API follows (tests isolate themselves with one)."""

    client_queue: int = Field(default=64, ge=1)
    """Updates buffered per live client; a slow client loses the oldest, and is told."""

    max_clients: int = Field(default=5_000, ge=1)
    """Live clients (SSE and WebSocket) one API process accepts at once."""

    board_interval_s: float = Field(default=1.0, gt=0)
    """How often live boards (ranks streams) send their diffs."""

    heartbeat_s: float = Field(default=15.0, gt=0)
    """Idle SSE streams and WebSockets get a keep-alive this often."""

    symbols_refresh_s: float = Field(default=60.0, gt=0)
    """How often the symbol metadata is re-read from ClickHouse."""

    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (none: same origin only); their pages may
    also open WebSockets signed in with the session cookie."""

    max_body_bytes: int = Field(default=128 * 1024, ge=1024)
    """Largest request body of the JSON routes; a larger one is answered 413 unread. A
    preset's filter alone may be 64 KiB of JSON."""

    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest body of Stripe's webhook: an event is a snapshot of one object (a few KiB;
    Stripe cuts the lists inside it at 10 items), so 1 MiB leaves a wide margin."""

    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (`10.0.0.0/8`) of the reverse proxies in front of the API:
    only from them are `X-Forwarded-For` and `X-Forwarded-Proto` believed, which name the
    client that per-address rate limits count. Empty: no one's (the socket's peer is the
    client); `*`: anyone's, only for an API no client can reach but through a proxy."""


class OidcProviderSettings(BaseModel):
    """One OpenID Connect provider users may sign in with (any, by its discovery URL)."""

    name: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    """Short name in URLs: `/api/v1/auth/oidc/<name>/login`."""

    discovery_url: str
    """The provider's `.well-known/openid-configuration` URL."""

    client_id: str
    client_secret: SecretStr
    label: str = ""
    """What the sign-in button says (the name when empty)."""


class PlanSettings(BaseModel):
    """A paid plan: the Stripe price (or legacy plan) behind it and what it unlocks."""

    id: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    """Our name for it (`pro`)."""

    stripe_price: str
    """The Stripe price id (`price_...`) or plan id (`plan_...`) Checkout subscribes to."""

    label: str = ""
    features: list[str] = Field(default_factory=list)
    """Entitlements the plan grants (see `api.accounts.entitlements.FEATURES`)."""


class EmailSettings(BaseModel):
    """Outgoing email through SendGrid."""

    sendgrid_api_key: SecretStr | None = None
    """None: emails are logged, not sent (a development default)."""

    sendgrid_host: str = "https://api.sendgrid.com"
    """The SendGrid API base; tests point it at a local server."""

    sandbox: bool = False
    """SendGrid's sandbox mode: requests are validated but nothing is delivered."""

    sender: str = "tickscan <no-reply@tickscan.local>"


class BillingSettings(BaseModel):
    """Stripe subscriptions."""

    stripe_api_key: SecretStr | None = None
    """None: billing is off, and every account has every feature (self-hosted)."""

    stripe_api_base: str = "https://api.stripe.com"
    """The Stripe API base; tests point it at localstripe."""

    webhook_secret: SecretStr | None = None
    """Signing secret of the webhook endpoint (`whsec_...`): events are verified with it."""

    plans: list[PlanSettings] = Field(default_factory=list)


class AccountsSettings(BaseModel):
    """User accounts: storage, sign-in, tokens, email and billing."""

    database_url: str | None = None
    """SQLAlchemy URL (`postgresql+asyncpg://...`); None: SQLite in `<data_dir>/accounts.db`."""

    secret_key: SecretStr | None = None
    """Signs access tokens and OIDC state; None: one generated once into
    `<data_dir>/secret_key` (fine for one machine, not for several API processes)."""

    public_url: str = "http://127.0.0.1:8000"
    """Where users reach the site: links in emails, OIDC redirects, the SIWE domain."""

    access_ttl_s: int = Field(default=900, ge=30)
    """Lifetime of an access token (a JWT, not revocable: keep it short)."""

    refresh_ttl_s: int = Field(default=30 * 86_400, ge=60)
    """Lifetime of a refresh token; each use replaces it."""

    email_token_ttl_s: int = Field(default=3_600, ge=60)
    """Lifetime of an email verification or password reset link."""

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65_536, ge=8)
    """argon2id cost (RFC 9106's second recommendation); tests lower it."""

    login_attempts: int = Field(default=5, ge=1)
    """Failed password logins of an account before it is locked for `lockout_s`."""

    lockout_s: int = Field(default=900, ge=1)
    auth_rate_limit: str = "20/minute"
    """Requests to sign-in endpoints per client address (`limits` notation)."""

    cookie_secure: bool | None = None
    """Secure cookies; None: when `public_url` is https."""

    oidc: list[OidcProviderSettings] = Field(default_factory=list)
    email: EmailSettings = Field(default_factory=EmailSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    free_delay_s: int = Field(default=60, ge=0)
    """How far behind the live board a free account's board runs when billing is on."""


class ApiAppSettings(RuntimeSettings):
    """What an API process reads: the plumbing, `api` and `accounts`.

    E.g. `TICKSCAN_API__PORT=8080`, `TICKSCAN_ACCOUNTS__PUBLIC_URL=https://scan.example.com`.
    """

    api: ApiSettings = Field(default_factory=ApiSettings)
    accounts: AccountsSettings = Field(default_factory=AccountsSettings)

    def accounts_url(self) -> str:
        """The accounts database URL: `accounts.database_url`, else SQLite (aiosqlite) in
        `<data_dir>/accounts.db`, by absolute path."""
        if self.accounts.database_url:
            return self.accounts.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'accounts.db').resolve()}"
