"""Process settings read from the environment (prefix TICKSCAN_, nested with __)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    """Where Kafka is and how we create topics."""

    bootstrap: str | None = None
    """`host:port[,host:port]` of a Kafka cluster; None starts the embedded broker."""

    partitions: int = Field(default=6, ge=1)
    """Partitions of each topic we create (existing topics are left as they are)."""

    replication_factor: int = Field(default=1, ge=1)
    """Replication factor of each topic we create."""

    retention_hours: float = Field(default=6.0, gt=0)
    """How long Kafka keeps a record of each topic we create (`retention.ms`).

    ClickHouse is the durable record and every stage rebuilds its state from it, so Kafka
    only has to hold what a stage that was down for a while still has to read. At a whole
    exchange's rate (~1 MB/s of trades) 6 h is ~20 GB a replica."""

    embedded_max_mb: int = Field(default=1024, ge=32)
    """The embedded broker's memory bound (MB). Its memory storage keeps every record and
    honours no retention, so once it holds this much, `tickscan run` restarts its pipeline
    on a fresh broker: every stage resumes from ClickHouse, the API comes back on the
    same port and browsers reconnect. No effect with an external Kafka (`bootstrap`)."""


class ClickHouseSettings(BaseModel):
    """Where ClickHouse is and which database holds our tables."""

    dsn: str | None = None
    """`chdb://<dir>` (embedded engine) or `http(s)://user:password@host:port`; None means
    `chdb://<data_dir>/clickhouse`."""

    database: str = "tickscan"
    """Database holding every tickscan table."""


class IngestSettings(BaseModel):
    """How live ingestion uses the exchange's WebSockets and REST API.

    Times are seconds; tests shorten them. Defaults are for production against Binance.
    """

    max_streams: int | None = Field(default=None, ge=1, le=1024)
    """Streams per WebSocket connection; None: 200 on spot, 100 on USDⓈ-M (Binance: 1024)."""

    max_connection_age_s: float = Field(default=23 * 3600.0, gt=0)
    """Rotate each connection before this age (Binance disconnects at 24 h)."""

    rotation_overlap_s: float = Field(default=1.0, ge=0)
    """How long the old connection keeps delivering once its replacement receives."""

    open_timeout_s: float = Field(default=10.0, gt=0)
    """Connecting, a subscription's reply, and a replacement's first message."""

    stall_s: float = Field(default=60.0, gt=0)
    """A connection silent (not even a ping) this long is replaced."""

    behind_s: float = Field(default=30.0, gt=0)
    """A socket blocked this long on a full queue is dropped; gap repair fills in."""

    queue_size: int = Field(default=10_000, ge=1)
    """Messages buffered between the sockets and the publisher."""

    backoff_base_s: float = Field(default=0.5, gt=0)
    """First reconnect delay cap (full jitter); doubles per failure."""

    backoff_max_s: float = Field(default=30.0, gt=0)
    """Largest reconnect delay cap."""

    refresh_s: float = Field(default=600.0, gt=0)
    """How often the symbol universe is re-read from exchangeInfo."""

    gap_grace_s: float = Field(default=2.0, ge=0)
    """How long a hole in a symbol's trade ids may wait to be filled by an overlapping
    connection before it is repaired from REST."""

    repair_concurrency: int = Field(default=4, ge=1)
    """Gap repairs running at once (REST requests share one weight budget)."""

    repair_attempts: int = Field(default=3, ge=1)
    """Attempts at a repair before the gap is recorded unrepairable."""

    status_every_s: float = Field(default=30.0, gt=0)
    """How often the live status is logged."""

    max_restart_gap_trades: int = Field(default=50_000, ge=0)
    """Largest restart gap (trades printed while ingest was down) fetched from REST; a
    larger one is recorded unrepairable, with the `tickscan backfill` to run."""

    max_restart_gap_s: float = Field(default=300.0, ge=0)
    """Oldest restart gap fetched from REST: the candle flow's revision horizon, before
    which repaired trades could only be dead-lettered as too late."""

    resume_scan_records: int = Field(default=200_000, ge=0)
    """Records read back from the end of each trades partition at start, to find where
    each symbol left off (ClickHouse `trades` covers the symbols not found)."""

    stale_after_s: float = Field(default=60.0, gt=0)
    """A symbol whose bookTicker (and trade) streams are silent this long, while other
    streams on its connection flow, is recorded stale in data_quality."""

    release_memory_every_s: float = Field(default=300.0, gt=0)
    """How often cyclic garbage is collected and free heap pages handed back to the
    system (`runtime.process.release_memory`), so RSS stays flat over days."""

    crosscheck_settle_s: float = Field(default=30.0, ge=0)
    """Cross-check: how long after a closed kline (and our candle) arrived to wait before
    judging, since a late trade or a gap repair may still revise our candle."""

    crosscheck_every_s: float = Field(default=5.0, gt=0)
    """Cross-check: how often our candles are read, minutes judged and mismatches recorded."""

    history_h: float = Field(default=24.0, ge=0, le=24 * 30)
    """At start, fetch the exchange's 1m klines of this many hours back for the minutes
    candles_1m lacks (and the 24h tickers), so the board is complete at once; 0: none."""

    history_concurrency: int = Field(default=8, ge=1)
    """History: symbols fetched at once (they share the REST weight budget)."""

    history_reserve: float = Field(default=0.25, ge=0, lt=1)
    """History: share of each minute's REST weight cap it leaves to gap repair."""

    history_progress_every_s: float = Field(default=10.0, gt=0)
    """History: how often progress is logged and written for `/api/v1/health`."""


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


class Settings(BaseSettings):
    """Settings of a tickscan process, e.g. `TICKSCAN_KAFKA__BOOTSTRAP=kafka:9092`."""

    model_config = SettingsConfigDict(
        env_prefix="TICKSCAN_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    """Directory for local state: the embedded ClickHouse data and the broker's log."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    accounts: AccountsSettings = Field(default_factory=AccountsSettings)

    def clickhouse_dsn(self) -> str:
        """The ClickHouse DSN to use.

        Returns:
            `clickhouse.dsn` when set, else `chdb://` plus the absolute path of
            `<data_dir>/clickhouse` (absolute, so a later change of working directory
            cannot point the same process at a second chdb directory).
        """
        if self.clickhouse.dsn:
            return self.clickhouse.dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    def accounts_url(self) -> str:
        """The accounts database URL: `accounts.database_url`, else SQLite (aiosqlite) in
        `<data_dir>/accounts.db`, by absolute path."""
        if self.accounts.database_url:
            return self.accounts.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'accounts.db').resolve()}"
