//! Leases in PostgreSQL: several replicas of the signer share the roots of trust, and each
//! root has at most one leader at a time, the only writer of its snapshot and timestamp.
//!
//! A lease is a row of `ocituf_leases`: who holds it, a fencing token that grows every time
//! the lease is granted anew, and when it expires. Expiry is always the database's clock
//! (`now()`), never a replica's. A leader checks its lease, with its token, in one
//! statement right before every publish ([`Leases::check`]); no row back means another
//! replica may hold it now, and the leader stops at once.
//!
//! Every statement is a single autocommit statement, sent with tokio-postgres'
//! [`query_typed`](tokio_postgres::Client::query_typed): the unnamed statement, parsed,
//! bound and run in one round trip. Nothing lives in the session (no named prepared
//! statements, no advisory locks, no `LISTEN`, no `SET`), so it works behind pgbouncer in
//! transaction pooling, where each statement may reach another server connection.
//!
//! Spreading: every replica beats in `ocituf_replicas` with each statement, and a replica
//! takes a free lease only while it leads fewer than its fair share
//! (`ceil(roots / live replicas)`, live: seen within one lease time). A leader over its
//! share gives up the roots it would rank last ([`Standing::shed`]) so that a replica that
//! joins later gets its part.

use std::sync::Arc;
use std::time::Duration;

use ocituf_resolver::ErrorKind;
use ocituf_writer::{Error, Result};
use tokio_postgres::types::{ToSql, Type};

use crate::config::DatabaseConfig;

/// The tables, created at start if missing (each replica runs this; it is idempotent).
pub const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS ocituf_leases (
    root_of_trust text PRIMARY KEY,
    holder text NOT NULL,
    fencing_token bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS ocituf_replicas (
    id text PRIMARY KEY,
    seen_at timestamptz NOT NULL
);";

/// The heartbeat that every lease statement carries (a data-modifying CTE: one statement).
/// Rows of replicas gone for a day are deleted on the way.
const BEAT: &str = "\
beat AS (
    INSERT INTO ocituf_replicas (id, seen_at) VALUES ($2, now())
    ON CONFLICT (id) DO UPDATE SET seen_at = now()
), gone AS (
    DELETE FROM ocituf_replicas WHERE seen_at < now() - interval '1 day'
)";

/// `ceil(roots / live replicas)`; this replica counts as live ($2 = me, $3 = lease seconds,
/// $4 = how many roots this replica serves). The CTE's own beat is not visible to the
/// statement, hence the `1 +`.
const SHARE: &str = "ceil($4::float8 / (1 + (SELECT count(*) FROM ocituf_replicas r \
     WHERE r.id <> $2 AND r.seen_at > now() - make_interval(secs => $3))))";

/// Acquire a free (absent or expired) lease while under the fair share. $1 root.
fn acquire_sql() -> String {
    format!(
        "WITH {BEAT}
INSERT INTO ocituf_leases AS l (root_of_trust, holder, fencing_token, expires_at)
SELECT $1, $2, 1, now() + make_interval(secs => $3)
WHERE (SELECT count(*) FROM ocituf_leases m
       WHERE m.holder = $2 AND m.expires_at > now() AND m.root_of_trust <> $1) < {SHARE}
ON CONFLICT (root_of_trust) DO UPDATE
    SET holder = EXCLUDED.holder,
        fencing_token = l.fencing_token + 1,
        expires_at = EXCLUDED.expires_at
    WHERE l.expires_at <= now()
RETURNING fencing_token"
    )
}

/// The fencing check, which renews: the row comes back only while `$2` holds the lease of
/// `$1` with token `$5` and it has not expired. Also returns this root's rank among the
/// leases `$2` holds (by name) and the fair share, to tell whether to shed it.
fn check_sql() -> String {
    format!(
        "WITH {BEAT}
UPDATE ocituf_leases SET expires_at = now() + make_interval(secs => $3)
WHERE root_of_trust = $1 AND holder = $2 AND fencing_token = $5 AND expires_at > now()
RETURNING
    (SELECT count(*) FROM ocituf_leases m
     WHERE m.holder = $2 AND m.expires_at > now() AND m.root_of_trust < $1) AS rank,
    {SHARE}::int8 AS share"
    )
}

/// Give a lease up (it expires now), only if still ours with this token.
const RELEASE_SQL: &str = "UPDATE ocituf_leases SET expires_at = now() \
     WHERE root_of_trust = $1 AND holder = $2 AND fencing_token = $3 AND expires_at > now()";

/// Who holds the lease of `$1`, its token, and whether it is still valid.
const HOLDER_SQL: &str =
    "SELECT holder, fencing_token, expires_at > now() FROM ocituf_leases WHERE root_of_trust = $1";

/// What a successful check says besides "still the leader".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// This replica leads more than its fair share and this root is one it ranks past it:
    /// give it up (between publishes) so a replica under its share can take it.
    pub shed: bool,
}

/// Who leads a root of trust, as the database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub replica: String,
    pub fencing_token: i64,
    /// `false`: the lease has expired and is free to take.
    pub live: bool,
}

/// This replica's handle on the lease tables. One connection, shared by every worker
/// (tokio-postgres pipelines concurrent statements), opened again when it breaks.
pub struct Leases {
    pg: tokio_postgres::Config,
    client: tokio::sync::Mutex<Option<Arc<tokio_postgres::Client>>>,
    replica: String,
    lease: Duration,
    roots: usize,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("replica", &self.replica)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

fn db_error(what: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::wrap(
        ErrorKind::Network,
        format!("{what} (is PostgreSQL up, and database-url right?)"),
        e,
    )
}

impl Leases {
    /// Connect to `config.url` and create the tables if missing. `roots`: how many roots of
    /// trust this replica serves (its fair share is computed from it).
    ///
    /// # Errors
    /// A configuration error for a URL that does not parse; a network error when the
    /// database cannot be reached or the tables cannot be created.
    pub async fn connect(config: &DatabaseConfig, roots: usize) -> Result<Self> {
        let mut pg: tokio_postgres::Config = config.url.parse().map_err(|e| {
            // The URL may hold a password: it is not repeated.
            Error::wrap(ErrorKind::Config, "database-url is not a PostgreSQL URL", e)
        })?;
        pg.connect_timeout(config.lease.max(Duration::from_secs(2)))
            .application_name("ocituf-signer");
        let leases = Self {
            pg,
            client: tokio::sync::Mutex::new(None),
            replica: config.replica_id.clone(),
            lease: config.lease,
            roots: roots.max(1),
        };
        let client = leases.client().await?;
        // Two replicas starting at once may both create a table: the loser's CREATE fails
        // on the catalog's unique index; the table exists then, so once more succeeds.
        let mut tries = 0;
        loop {
            match client.simple_query(SCHEMA).await {
                Ok(_) => break,
                Err(e)
                    if tries < 3
                        && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
                    tries += 1;
                }
                Err(e) => return Err(db_error("could not create the lease tables", e)),
            }
        }
        Ok(leases)
    }

    /// This replica's id (the `holder` of its leases).
    pub fn replica_id(&self) -> &str {
        &self.replica
    }

    /// How long a lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The shared connection, opened (again) if there is none or it broke.
    async fn client(&self) -> Result<Arc<tokio_postgres::Client>> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let (client, connection) = tokio::time::timeout(
            self.lease.max(Duration::from_secs(2)),
            self.pg.connect(tokio_postgres::NoTls),
        )
        .await
        .map_err(|_| db_error("connecting to PostgreSQL timed out", "timeout"))?
        .map_err(|e| db_error("could not connect to PostgreSQL", e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the connection to PostgreSQL broke; it is opened again at the next statement");
            }
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Run one statement within a time limit (a third of the lease: a leader that cannot
    /// hear from the database in that time must not go on as if it could).
    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.client().await?;
        let limit = (self.lease / 3).max(Duration::from_millis(500));
        match tokio::time::timeout(limit, client.query_typed(sql, params)).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(db_error(what, e)),
            Err(_) => Err(db_error(what, format!("no answer within {limit:?}"))),
        }
    }

    fn lease_secs(&self) -> f64 {
        self.lease.as_secs_f64()
    }

    fn roots(&self) -> i64 {
        i64::try_from(self.roots).unwrap_or(i64::MAX)
    }

    /// Take the lease of `root` if it is free (absent or expired) and this replica leads
    /// fewer roots than its fair share. `Some(token)`: leader now, with that fencing token
    /// (higher than any before it for this root).
    ///
    /// # Errors
    /// The database failed (not a leader then).
    pub async fn try_acquire(&self, root: &str) -> Result<Option<i64>> {
        let rows = self
            .query(
                &format!("could not try to take the lease of {root:?}"),
                &acquire_sql(),
                &[
                    (&root, Type::TEXT),
                    (&self.replica.as_str(), Type::TEXT),
                    (&self.lease_secs(), Type::FLOAT8),
                    (&self.roots(), Type::INT8),
                ],
            )
            .await?;
        rows.first()
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()
            .map_err(|e| db_error("the lease statement returned no fencing token", e))
    }

    /// The fencing check before a publish (and the renewal): `Some` while this replica
    /// still holds the lease of `root` with `token` and it has not expired (it now lasts
    /// another lease time); `None`: fenced, another replica may lead, publish nothing.
    ///
    /// # Errors
    /// The database failed or did not answer in time: the caller must treat it as `None`.
    pub async fn check(&self, root: &str, token: i64) -> Result<Option<Standing>> {
        let rows = self
            .query(
                &format!("could not check the lease of {root:?}"),
                &check_sql(),
                &[
                    (&root, Type::TEXT),
                    (&self.replica.as_str(), Type::TEXT),
                    (&self.lease_secs(), Type::FLOAT8),
                    (&self.roots(), Type::INT8),
                    (&token, Type::INT8),
                ],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let rank: i64 = row
            .try_get(0)
            .map_err(|e| db_error("the lease check returned no rank", e))?;
        let share: i64 = row
            .try_get(1)
            .map_err(|e| db_error("the lease check returned no share", e))?;
        Ok(Some(Standing {
            shed: rank >= share,
        }))
    }

    /// Give up the lease of `root` (it expires now) if this replica still holds it with
    /// `token`; called once publishing for `root` has stopped.
    ///
    /// # Errors
    /// The database failed (the lease then simply runs out).
    pub async fn release(&self, root: &str, token: i64) -> Result<()> {
        self.query(
            &format!("could not give up the lease of {root:?}"),
            RELEASE_SQL,
            &[
                (&root, Type::TEXT),
                (&self.replica.as_str(), Type::TEXT),
                (&token, Type::INT8),
            ],
        )
        .await
        .map(drop)
    }

    /// Who holds the lease of `root` (`None`: nobody ever did).
    ///
    /// # Errors
    /// The database failed.
    pub async fn holder(&self, root: &str) -> Result<Option<Holder>> {
        let rows = self
            .query(
                &format!("could not read the lease of {root:?}"),
                HOLDER_SQL,
                &[(&root, Type::TEXT)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let bad = |e| db_error("the lease row is not what this signer wrote", e);
        Ok(Some(Holder {
            replica: row.try_get(0).map_err(bad)?,
            fencing_token: row.try_get(1).map_err(bad)?,
            live: row.try_get(2).map_err(bad)?,
        }))
    }
}
