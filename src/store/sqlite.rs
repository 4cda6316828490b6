//! The embedded store in one SQLite file (WAL). `SqliteStore::memory` (an in-memory SQLite database) serves
//! the Rust tests; `SessionClient.memory()` uses the collections of `store::memory` instead.
//!
//! Durability: every write is one `BEGIN IMMEDIATE` transaction, committed before the call returns,
//! so an acknowledged write survives `kill -9` of the process (and power loss with `Durability::Full`).
//! Several processes may share one file: SQLite's locks serialize writers (waiting up to `busy_timeout`)
//! while readers keep reading their own snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::threads::ThreadIndex;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::encryption::{
    AtRest, Kept, Record, Sealing, metadata_json, open_invocations, text_from_bytes,
};
use super::payload::{decode_payload, encode_payload};
use super::retention::{self, Erasure};
use super::{Durability, SessionStore, StoreConfig, not_found_session};
use crate::clock::Micros;
use crate::error::{Error, Result};
use crate::model::{
    CreateInvocation, CreateSession, GetStep, Invocation, ListSteps, Page, PageRequest, PutStep,
    ResourceArn, Session, SessionRef, SessionStatus, Step, StepSummary, UpdateSession,
};
use crate::token::{self, Cursor};
use crate::validate::SessionArn;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sessions (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    arn               TEXT    NOT NULL UNIQUE,
    status            TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    last_updated_at   INTEGER NOT NULL,
    metadata          TEXT    NOT NULL,
    encryption_key_arn TEXT,
    step_count        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_newest ON sessions (created_at DESC, seq DESC);
CREATE TABLE tags (
    session_seq INTEGER NOT NULL REFERENCES sessions(seq) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (session_seq, key)
) WITHOUT ROWID;
CREATE TABLE invocations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_seq INTEGER NOT NULL REFERENCES sessions(seq) ON DELETE CASCADE,
    id          TEXT    NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (session_seq, id)
);
CREATE INDEX invocations_newest ON invocations (session_seq, created_at DESC, seq DESC);
CREATE TABLE steps (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_seq    INTEGER NOT NULL REFERENCES sessions(seq) ON DELETE CASCADE,
    invocation_seq INTEGER NOT NULL REFERENCES invocations(seq) ON DELETE CASCADE,
    id             TEXT    NOT NULL,
    step_time      INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    UNIQUE (session_seq, id)
);
CREATE INDEX steps_newest ON steps (session_seq, step_time DESC, seq DESC);
CREATE INDEX steps_newest_by_invocation ON steps (invocation_seq, step_time DESC, seq DESC);
"#,
    r#"
CREATE TABLE threads (
    thread_id   TEXT    PRIMARY KEY,
    session_seq INTEGER NOT NULL REFERENCES sessions(seq) ON DELETE CASCADE
);
CREATE INDEX threads_by_session ON threads (session_seq);
"#,
    // Version 3: times in microseconds (were milliseconds), so a step keeps the time its client sent.
    // Times that no SDK can read back (outside years 1 to 9999, which version 2 let in) are clamped into
    // that range, so that no stored value can make a read fail.
    r#"
UPDATE sessions SET created_at = MIN(MAX(created_at, -62135596800000), 253402300799999) * 1000,
                    last_updated_at = MIN(MAX(last_updated_at, -62135596800000), 253402300799999) * 1000;
UPDATE invocations SET created_at = MIN(MAX(created_at, -62135596800000), 253402300799999) * 1000;
UPDATE steps SET step_time = MIN(MAX(step_time, -62135596800000), 253402300799999) * 1000;
"#,
    // Version 4: encryption at rest and retention (issue 16). An encrypted session's wrapped data key is a row of
    // its own (destroyed first when the session is erased); its sealed records stay in their columns, as BLOBs
    // (sessions.metadata, invocations.description) or in the payload BLOB. Sessions of earlier versions stay
    // clear and readable. Retention sweeps find sessions by their last update.
    r#"
CREATE TABLE session_keys (
    session_seq INTEGER PRIMARY KEY REFERENCES sessions(seq) ON DELETE CASCADE,
    wrapped     BLOB    NOT NULL
);
CREATE INDEX sessions_by_update ON sessions (last_updated_at);
"#,
];

/// The status of a session being erased: its data key is destroyed, it is gone from the API, and its records go
/// at the next step of the erasure (a sweep finishes one that a crash interrupted).
const ERASING: &str = "ERASING";

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    Memory,
}

#[derive(Debug)]
struct Inner {
    /// The configuration the store was opened with (connections are opened with it).
    cfg: StoreConfig,
    location: Location,
    writer: Mutex<Connection>,
    /// Idle reader connections (file stores only; in memory everything goes through `writer`).
    readers: Mutex<Vec<Connection>>,
    /// Encryption at rest: the key source and the data key cache.
    at_rest: AtRest,
    /// The file was created with `auto_vacuum = INCREMENTAL`: erasing gives the freed pages back to the file
    /// system.
    incremental_vacuum: bool,
    /// The last erasure could not checkpoint the WAL whole (another process was reading): the next sweep tries.
    checkpoint_pending: AtomicBool,
}

/// The embedded session store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// This handle's configuration: the store's, or one account's (see [`SessionStore::for_account`]).
    cfg: Arc<StoreConfig>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (the transaction rolls back on drop).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteStore {
    fn is_memory(&self) -> bool {
        matches!(self.inner.location, Location::Memory)
    }

    /// Opens (creating if needed) the store in the file at `path`.
    pub fn open(path: impl AsRef<Path>, cfg: StoreConfig) -> std::result::Result<Self, String> {
        cfg.validate()?;
        configure_sqlite();
        let path = path.as_ref().to_path_buf();
        let failed = |e: &dyn std::fmt::Display| {
            format!("cannot open session store {}: {e}", path.display())
        };
        // Processes opening a new file at the same moment: switching it to WAL and creating the schema
        // can answer "locked" at once, without waiting on the busy handler: tried again until the busy
        // timeout.
        let start = std::time::Instant::now();
        let writer = loop {
            let opened =
                open_connection(&path, &cfg).and_then(|c| migrate_locked(&c).map(|m| (c, m)));
            match opened {
                Ok((c, Ok(()))) => break c,
                Ok((_, Err(e))) => return Err(failed(&e)),
                Err(e) if crate::error::is_busy(&e) && start.elapsed() < cfg.busy_timeout => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(failed(&e)),
            }
        };
        Self::build(cfg, Location::File(path.clone()), writer).map_err(|e| failed(&e))
    }

    fn build(
        cfg: StoreConfig,
        location: Location,
        writer: Connection,
    ) -> rusqlite::Result<SqliteStore> {
        let incremental_vacuum =
            writer.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0))? == 2;
        let store = SqliteStore {
            cfg: Arc::new(cfg.clone()),
            inner: Arc::new(Inner {
                at_rest: AtRest::new(cfg.key_source.clone()),
                cfg,
                location,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                incremental_vacuum,
                checkpoint_pending: AtomicBool::new(false),
            }),
        };
        // Sessions past retention, and an erasure a crash interrupted, are erased before the store serves; a
        // failure here (another process holds the file) is left to the next sweep.
        let _ = sweep_locked(&store.inner);
        Ok(store)
    }

    /// A store that lives in this process's memory only.
    pub fn memory(cfg: StoreConfig) -> std::result::Result<Self, String> {
        cfg.validate()?;
        configure_sqlite();
        // The memdb VFS keeps the file in memory behind an ordinary, bounded page cache (a plain
        // ":memory:" database *is* its page cache, which every commit scans: O(database) per write).
        let name = format!("file:/bedrock-sessions-{}?vfs=memdb", uuid::Uuid::new_v4());
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&name, flags).map_err(|e| e.to_string())?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;")
            .map_err(|e| e.to_string())?;
        tune(&conn).map_err(|e| e.to_string())?;
        migrate(&conn)?;
        Self::build(cfg, Location::Memory, conn).map_err(|e| e.to_string())
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The file of this store, or None in memory.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner.location {
            Location::File(p) => Some(p),
            Location::Memory => None,
        }
    }

    /// Runs `f` in a write transaction on a blocking thread.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>, &StoreConfig) -> Result<T> + Send + 'static,
    {
        let (inner, cfg) = (self.inner.clone(), self.cfg.clone());
        run_blocking(self.is_memory(), move || {
            let conn = lock(&inner.writer);
            let tx = Tx::begin(&conn, "BEGIN IMMEDIATE")?;
            let out = f(&tx, &cfg)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` in a read transaction (one snapshot) on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>, &StoreConfig) -> Result<T> + Send + 'static,
    {
        let (inner, cfg) = (self.inner.clone(), self.cfg.clone());
        run_blocking(self.is_memory(), move || match &inner.location {
            Location::Memory => {
                let conn = lock(&inner.writer);
                let tx = Tx::begin(&conn, "BEGIN")?;
                f(&tx, &cfg)
            }
            Location::File(path) => {
                let pooled = lock(&inner.readers).pop();
                let conn = match pooled {
                    Some(c) => c,
                    None => open_connection(path, &inner.cfg).map_err(Error::from)?,
                };
                let out = {
                    let tx = Tx::begin(&conn, "BEGIN")?;
                    f(&tx, &cfg)
                };
                let mut idle = lock(&inner.readers);
                if idle.len() < 4 {
                    idle.push(conn);
                }
                out
            }
        })
        .await
    }
}

/// A transaction begun and ended with cached statements (rusqlite's `Transaction` parses `BEGIN` and
/// `COMMIT` anew on every call, a fair share of a small write's cost). Dropped without `commit`, it
/// rolls back: an error leaves nothing written.
pub(crate) struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    fn begin(conn: &'c Connection, sql: &'static str) -> rusqlite::Result<Self> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(Tx { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            // Fails only if the transaction is already gone (SQLite rolled it back itself).
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Prepared statements kept per connection (every statement of the store fits).
const STATEMENT_CACHE: usize = 64;

thread_local! {
    /// Set while a caller's own thread drives a future to completion (see [`on_caller_thread`]).
    static INLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (typically `runtime.block_on(...)`) telling the store that the futures it polls run on the
/// caller's own thread, which may block: store operations then run inline instead of hopping to the
/// blocking pool and back (two thread switches per operation, most of a small operation's cost).
pub fn on_caller_thread<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            INLINE.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(INLINE.with(|c| c.replace(true)));
    f()
}

/// Runs a store operation: inline when the caller may block (or the store is in memory: no I/O, a
/// few microseconds), else on the blocking pool.
async fn run_blocking<T: Send + 'static>(
    inline: bool,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if inline || INLINE.with(|c| c.get()) {
        return f();
    }
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h
            .spawn_blocking(f)
            .await
            .map_err(|e| Error::internal(format!("session store task failed: {e}")))?,
        // Outside a runtime (plain Rust callers), run inline.
        Err(_) => f(),
    }
}

/// Process-wide settings of this module's SQLite (its own copy, linked in), made before its first
/// connection: no memory statistics, which cost a global mutex on every allocation SQLite makes.
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection of this library is opened (the Once runs
        // first in both constructors), as SQLite requires; if it were too late SQLite would refuse it
        // (SQLITE_MISUSE) and change nothing.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            );
        }
    });
}

/// Settings of every connection: cached statements, and plans that do not depend on bound values
/// (without this, SQLite re-plans a statement whose `LIMIT ?` or compared value was bound anew, on
/// every listing: a full prepare each time).
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn open_connection(path: &Path, cfg: &StoreConfig) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    tune(&conn)?;
    conn.busy_timeout(cfg.busy_timeout)?;
    // A new file gives the pages that erasure frees back to the file system (incremental vacuum). The setting
    // takes only on an empty file, before it turns to WAL; older files keep theirs (docs/encryption.md).
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    if pages == 0 {
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
    }
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode is {mode}, expected wal"
        )));
    }
    let sync = match cfg.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    // secure_delete: deleted and overwritten content is zeroed in its pages, so that no plaintext lingers in the
    // file's free space (a cost on deletes and updates only; see docs/encryption.md).
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;"
    ))?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> std::result::Result<(), String> {
    migrate_locked(conn).map_err(|e| e.to_string())?
}

/// The schema brought up to date: an SQLite error (busy, ...) outside, a refusal inside.
fn migrate_locked(conn: &Connection) -> rusqlite::Result<std::result::Result<(), String>> {
    let run = || -> rusqlite::Result<std::result::Result<(), String>> {
        // IMMEDIATE: two processes opening a new file at once must not both create the schema.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            conn.execute_batch("ROLLBACK")?;
            return Ok(Err(format!(
                "the file has schema version {version}, newer than this bedrock-sessions supports ({SCHEMA_VERSION}); upgrade the package"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            if let Err(e) = conn.execute_batch(sql) {
                conn.execute_batch("ROLLBACK")?;
                return Err(e);
            }
            conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        }
        conn.execute_batch("COMMIT")?;
        Ok(Ok(()))
    };
    run()
}

// ---------------------------------------------------------------------------------------------
// Rows

struct SessionRow {
    seq: i64,
    id: String,
    arn: String,
    status: String,
    created_at: Micros,
    last_updated_at: Micros,
    /// JSON text; a BLOB when the session is encrypted (its sealed JSON).
    metadata: Kept<String>,
    encryption_key_arn: Option<String>,
    step_count: i64,
    /// The wrapped data key of an encrypted session (`crypto::WrappedKey` bytes).
    wrapped: Option<Vec<u8>>,
}

const SESSION_COLS: &str = "s.seq, s.id, s.arn, s.status, s.created_at, s.last_updated_at, s.metadata, \
     s.encryption_key_arn, s.step_count, k.wrapped";

/// The sessions with their wrapped data keys.
const SESSION_FROM: &str = "sessions s LEFT JOIN session_keys k ON k.session_seq = s.seq";

/// A text column as kept: TEXT in clear, a BLOB sealed.
fn kept_text(v: rusqlite::types::Value, col: usize) -> rusqlite::Result<Kept<String>> {
    use rusqlite::types::{Type, Value};
    match v {
        Value::Text(t) => Ok(Kept::Clear(t)),
        Value::Blob(b) => Ok(Kept::Sealed(b)),
        other => Err(rusqlite::Error::InvalidColumnType(
            col,
            "a text or sealed value".into(),
            match other {
                Value::Null => Type::Null,
                Value::Integer(_) => Type::Integer,
                _ => Type::Real,
            },
        )),
    }
}

/// How a kept text value is stored: TEXT in clear, BLOB sealed.
fn kept_sql(k: Kept<String>) -> rusqlite::types::Value {
    match k {
        Kept::Clear(t) => rusqlite::types::Value::Text(t),
        Kept::Sealed(b) => rusqlite::types::Value::Blob(b),
    }
}

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        arn: r.get(2)?,
        status: r.get(3)?,
        created_at: r.get(4)?,
        last_updated_at: r.get(5)?,
        metadata: kept_text(r.get(6)?, 6)?,
        encryption_key_arn: r.get(7)?,
        step_count: r.get(8)?,
        wrapped: r.get(9)?,
    })
}

impl SessionRow {
    fn status(&self, cfg: &StoreConfig) -> SessionStatus {
        // Stored: ACTIVE or ENDED (anything else reads as ENDED).
        let ended = SessionStatus::parse(&self.status) != Some(SessionStatus::Active);
        super::session_status(ended, self.last_updated_at, cfg)
    }

    /// The session, its metadata opened with `sealing` (the session's own).
    fn into_session(self, cfg: &StoreConfig, sealing: &Sealing) -> Result<Session> {
        let status = self.status(cfg);
        let json = sealing.get(Record::Metadata, self.metadata, text_from_bytes)?;
        let metadata = serde_json::from_str(&json)
            .map_err(|e| Error::internal(format!("stored session metadata is corrupt: {e}")))?;
        Ok(Session {
            id: self.id,
            arn: self.arn,
            status,
            created_at: self.created_at,
            last_updated_at: self.last_updated_at,
            metadata,
            encryption_key_arn: self.encryption_key_arn,
        })
    }

    fn require_writable(&self, cfg: &StoreConfig, what: &str) -> Result<()> {
        super::require_writable(&self.id, self.status(cfg), what)
    }

    /// The sealing of this session in a write that [`SqliteStore::prepare`]d `prepared`.
    fn sealing(&self, inner: &Inner, prepared: Option<&Sealing>) -> Result<Sealing> {
        inner
            .at_rest
            .check(prepared, &self.id, &self.arn, self.wrapped.as_deref())
    }
}

fn find_session(tx: &Tx<'_>, sref: &SessionRef, cfg: &StoreConfig) -> Result<SessionRow> {
    let row = tx
        .prepare_cached(&format!(
            "SELECT {SESSION_COLS} FROM {SESSION_FROM} WHERE s.id = ?1"
        ))?
        .query_row([&sref.id], session_row)
        .optional()?
        .ok_or_else(|| not_found_session(&sref.raw))?;
    // An ARN must be this session's exact ARN: another region, account or partition names no session here.
    if sref.arn.is_some() && sref.raw != row.arn {
        return Err(not_found_session(&sref.raw));
    }
    // Another account's session does not exist for a handle that acts for one account; nor does a session past
    // retention, or one being erased.
    if !super::visible(&row.arn, cfg)
        || row.status == ERASING
        || !retention::retained(row.last_updated_at, cfg)
    {
        return Err(not_found_session(&sref.raw));
    }
    Ok(row)
}

fn find_tagged_session(tx: &Tx<'_>, arn: &ResourceArn, cfg: &StoreConfig) -> Result<SessionRow> {
    find_session(tx, &super::tagged_session_ref(arn), cfg).map_err(|e| super::tagged_error(arn, e))
}

fn find_invocation_seq(tx: &Tx<'_>, session: &SessionRow, invocation_id: &str) -> Result<i64> {
    tx.prepare_cached("SELECT seq FROM invocations WHERE session_seq = ?1 AND id = ?2")?
        .query_row(params![session.seq, invocation_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| super::not_found_invocation(&session.id, invocation_id))
}

fn page_size(cfg: &StoreConfig, page: &PageRequest) -> i64 {
    page.max_results.unwrap_or(cfg.default_page_size) as i64
}

/// Runs a newest-first keyset query. `sql` selects rows whose last two columns are (time, seq);
/// it has `?1`/`?2` for the cursor and `?3` for the limit, then `extra` parameters.
fn keyset<T>(
    tx: &Tx<'_>,
    sql: &str,
    extra: &[&dyn rusqlite::ToSql],
    scope: &str,
    page: &PageRequest,
    cfg: &StoreConfig,
    map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<(T, Cursor)>,
) -> Result<Page<T>> {
    let cursor = token::start(scope, page.next_token.as_deref())?;
    let n = page_size(cfg, page);
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&cursor.time, &cursor.seq];
    let limit = n + 1;
    params.push(&limit);
    params.extend_from_slice(extra);
    let mut stmt = tx.prepare_cached(sql)?;
    let mut rows = stmt.query(params.as_slice())?;
    let mut items = Vec::new();
    let mut last = None;
    while let Some(r) = rows.next()? {
        if items.len() as i64 == n {
            return Ok(Page {
                items,
                next_token: last.map(|c| token::encode(scope, c)),
            });
        }
        let (item, c) = map(r)?;
        items.push(item);
        last = Some(c);
    }
    Ok(Page {
        items,
        next_token: None,
    })
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn insert_tags(tx: &Tx<'_>, session_seq: i64, tags: &BTreeMap<String, String>) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO tags (session_seq, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (session_seq, key) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in tags {
        stmt.execute(params![session_seq, k, v])?;
    }
    Ok(())
}

fn tag_count(tx: &Tx<'_>, session_seq: i64) -> Result<i64> {
    Ok(tx
        .prepare_cached("SELECT COUNT(*) FROM tags WHERE session_seq = ?1")?
        .query_row([session_seq], |r| r.get(0))?)
}

impl SqliteStore {
    /// A session as read: its metadata opened with its data key (from the cache, or unwrapped once).
    async fn finish(&self, row: SessionRow) -> Result<Session> {
        let sealing = self.sealing_of(&row).await?;
        row.into_session(&self.cfg, &sealing)
    }

    /// The sealing of a session read from the file: its data key from the cache, or unwrapped once.
    async fn sealing_of(&self, row: &SessionRow) -> Result<Sealing> {
        self.inner
            .at_rest
            .sealing(&row.id, &row.arn, row.wrapped.as_deref())
            .await
    }

    /// Before a write that seals records of a session: its sealing (see `AtRest::prepare`), checked again inside
    /// the write ([`SessionRow::sealing`]).
    async fn prepare(&self, sref: &SessionRef) -> Result<Option<Sealing>> {
        let at_rest = &self.inner.at_rest;
        if !at_rest.enabled() {
            return Ok(None);
        }
        let s = sref.clone();
        at_rest
            .prepare(&sref.id, || async move {
                let row = self.read(move |tx, cfg| find_session(tx, &s, cfg)).await?;
                Ok((row.arn, row.wrapped))
            })
            .await
    }

    /// Runs a sweep now (see [`Erasure::sweep`]).
    async fn sweep_now(&self) -> Result<usize> {
        let inner = self.inner.clone();
        run_blocking(self.is_memory(), move || sweep_locked(&inner)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Erasure (see `store::retention`)

/// Destroys a session's data key and takes the session out of the API: its wrapped key overwritten with zeros
/// and deleted, its status ERASING. Committed on its own, before the records go (crypto-shredding).
fn shred(tx: &Tx<'_>, session_seq: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE session_keys SET wrapped = zeroblob(length(wrapped)) WHERE session_seq = ?1",
    )?
    .execute([session_seq])?;
    tx.prepare_cached("DELETE FROM session_keys WHERE session_seq = ?1")?
        .execute([session_seq])?;
    tx.prepare_cached("UPDATE sessions SET status = 'ERASING' WHERE seq = ?1")?
        .execute([session_seq])?;
    Ok(())
}

/// Shreds the sessions past retention, then erases every session being erased; returns how many went.
fn sweep_locked(inner: &Inner) -> Result<usize> {
    if let Some(cutoff) = retention::cutoff(&inner.cfg) {
        let conn = lock(&inner.writer);
        let tx = Tx::begin(&conn, "BEGIN IMMEDIATE")?;
        let expired: Vec<(i64, String)> = tx
            .prepare_cached(
                "SELECT seq, id FROM sessions WHERE last_updated_at <= ?1 AND status != 'ERASING'",
            )?
            .query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (seq, _) in &expired {
            shred(&tx, *seq)?;
        }
        tx.commit()?;
        for (_, id) in &expired {
            inner.at_rest.forget(id);
        }
    }
    erase_marked(inner)
}

/// The second step of erasure: the records of every session being erased are deleted (tags, invocations,
/// steps and thread bindings with them), their pages zeroed (secure_delete), given back to the file system
/// (incremental vacuum, on files created with it), and the WAL checkpointed and truncated, so that no copy of
/// them is left in the database file, its WAL or its shared-memory index.
fn erase_marked(inner: &Inner) -> Result<usize> {
    let conn = lock(&inner.writer);
    let erased = {
        let tx = Tx::begin(&conn, "BEGIN IMMEDIATE")?;
        let n = tx
            .prepare_cached("DELETE FROM sessions WHERE status = 'ERASING'")?
            .execute([])?;
        tx.commit()?;
        n
    };
    if erased > 0 || inner.checkpoint_pending.load(Ordering::Relaxed) {
        if inner.incremental_vacuum {
            // Stepped to its end: each step gives back a page.
            let mut vacuum = conn.prepare_cached("PRAGMA incremental_vacuum")?;
            let mut rows = vacuum.query([])?;
            while rows.next()?.is_some() {}
        }
        // TRUNCATE waits (busy_timeout) for other processes' readers to move on; if one does not, the WAL is
        // left for the next sweep.
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        inner.checkpoint_pending.store(busy != 0, Ordering::Relaxed);
    }
    Ok(erased)
}

#[async_trait]
impl Erasure for SqliteStore {
    async fn sweep(&self) -> Result<usize> {
        self.sweep_now().await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, req: CreateSession) -> Result<Session> {
        let cfg = &self.cfg;
        let id = new_id();
        let arn = SessionArn::format(&cfg.partition, &cfg.region, &cfg.account_id, &id);
        // The key decision first: a session that cannot be encrypted as asked is not stored at all.
        let (new_key, sealing) = self
            .inner
            .at_rest
            .new_session(req.encryption_key_arn.as_deref(), &arn)
            .await?;
        let json = String::from_utf8(metadata_json(&req.metadata)).expect("JSON is UTF-8");
        let metadata = kept_sql(sealing.keep(Record::Metadata, json, |t| t.as_bytes().to_vec()));
        let wrapped = new_key.as_ref().map(|k| k.wrapped.clone());
        let (id2, arn2, key_arn, tags) = (
            id.clone(),
            arn.clone(),
            req.encryption_key_arn.clone(),
            req.tags,
        );
        let now = self
            .write(move |tx, cfg| {
                let now = cfg.clock.now_us();
                tx.prepare_cached("INSERT INTO sessions (id, arn, status, created_at, last_updated_at, metadata, encryption_key_arn)
                     VALUES (?1, ?2, 'ACTIVE', ?3, ?3, ?4, ?5)")?
                    .execute(params![id2, arn2, now, metadata, key_arn])?;
                let seq = tx.last_insert_rowid();
                if let Some(w) = wrapped {
                    tx.prepare_cached("INSERT INTO session_keys (session_seq, wrapped) VALUES (?1, ?2)")?
                        .execute(params![seq, w])?;
                }
                insert_tags(tx, seq, &tags)?;
                Ok(now)
            })
            .await?;
        self.inner.at_rest.created(&id, &arn, new_key.as_ref());
        Ok(Session {
            id,
            arn,
            status: SessionStatus::Active,
            created_at: now,
            last_updated_at: now,
            metadata: req.metadata,
            encryption_key_arn: req.encryption_key_arn,
        })
    }

    async fn get_session(&self, session: SessionRef) -> Result<Session> {
        let row = self
            .read(move |tx, cfg| find_session(tx, &session, cfg))
            .await?;
        self.finish(row).await
    }

    async fn list_sessions(&self, page: PageRequest) -> Result<Page<Session>> {
        let rows = self
            .read(move |tx, cfg| {
                // A handle for one account lists that account's sessions (its ARNs name it) and no other; no
                // handle lists a session past retention or being erased.
                let account = cfg
                    .account_only
                    .then(|| format!("arn:%:%:%:{}:session/%", cfg.account_id));
                let cutoff = retention::cutoff(cfg);
                let sql = format!(
                    "SELECT {SESSION_COLS} FROM {SESSION_FROM} WHERE (s.created_at, s.seq) < (?1, ?2)
                     AND (?4 IS NULL OR s.arn LIKE ?4) AND s.status != 'ERASING'
                     AND (?5 IS NULL OR s.last_updated_at > ?5)
                     ORDER BY s.created_at DESC, s.seq DESC LIMIT ?3"
                );
                keyset(tx, &sql, &[&account, &cutoff], "sessions", &page, cfg, |r| {
                    let row = session_row(r)?;
                    let c = Cursor {
                        time: row.created_at,
                        seq: row.seq,
                    };
                    Ok((row, c))
                })
            })
            .await?;
        // Summaries: an encrypted session's metadata is left out (see `SessionStore::list_sessions`).
        let items = rows
            .items
            .into_iter()
            .map(|mut row| {
                if row.wrapped.is_some() {
                    row.metadata = Kept::Clear("{}".into());
                }
                let sealing = Sealing::clear(&row.arn);
                row.into_session(&self.cfg, &sealing)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            next_token: rows.next_token,
        })
    }

    async fn update_session(&self, req: UpdateSession) -> Result<Session> {
        let prepared = self.prepare(&req.session).await?;
        // Sealed before the write (a KMS call must not hold the file's write lock).
        let metadata = req.metadata.as_ref().map(|m| {
            let json = String::from_utf8(metadata_json(m)).expect("JSON is UTF-8");
            match &prepared {
                Some(p) => p.keep(Record::Metadata, json, |t| t.as_bytes().to_vec()),
                None => Kept::Clear(json),
            }
        });
        let inner = self.inner.clone();
        self.write(move |tx, cfg| {
            let row = find_session(tx, &req.session, cfg)?;
            row.require_writable(cfg, "UpdateSession")?;
            let sealing = row.sealing(&inner, prepared.as_ref())?;
            let now = cfg.clock.now_us();
            match metadata {
                Some(m) => {
                    tx.prepare_cached(
                        "UPDATE sessions SET metadata = ?1, last_updated_at = ?2 WHERE seq = ?3",
                    )?
                    .execute(params![kept_sql(m), now, row.seq])?;
                }
                None => {
                    tx.prepare_cached("UPDATE sessions SET last_updated_at = ?1 WHERE seq = ?2")?
                        .execute(params![now, row.seq])?;
                }
            }
            find_session(tx, &req.session, cfg)?.into_session(cfg, &sealing)
        })
        .await
    }

    async fn end_session(&self, session: SessionRef) -> Result<Session> {
        // The key is looked up first: a session whose key is unusable is refused before anything changes.
        let prepared = self.prepare(&session).await?;
        let inner = self.inner.clone();
        self.write(move |tx, cfg| {
            let row = find_session(tx, &session, cfg)?;
            if row.status(cfg) == SessionStatus::Ended {
                return Err(super::already_ended(&row.id));
            }
            let sealing = row.sealing(&inner, prepared.as_ref())?;
            let now = cfg.clock.now_us();
            tx.prepare_cached(
                "UPDATE sessions SET status = 'ENDED', last_updated_at = ?1 WHERE seq = ?2",
            )?
            .execute(params![now, row.seq])?;
            find_session(tx, &session, cfg)?.into_session(cfg, &sealing)
        })
        .await
    }

    async fn delete_session(&self, session: SessionRef) -> Result<()> {
        // Needs no key: a session whose key is lost or revoked can still be erased. First its data key is
        // destroyed and it leaves the API (committed), then its records are erased.
        let id = self
            .write(move |tx, cfg| {
                let row = find_session(tx, &session, cfg)?;
                if row.status(cfg) == SessionStatus::Active {
                    return Err(super::delete_active(&row.id));
                }
                shred(tx, row.seq)?;
                Ok(row.id)
            })
            .await?;
        self.inner.at_rest.forget(&id);
        let inner = self.inner.clone();
        run_blocking(self.is_memory(), move || erase_marked(&inner)).await?;
        Ok(())
    }

    async fn create_invocation(&self, req: CreateInvocation) -> Result<Invocation> {
        let prepared = self.prepare(&req.session).await?;
        let id = req.invocation_id.clone().unwrap_or_else(new_id);
        let description = req.description.clone().map(|d| match &prepared {
            Some(p) => p.keep(Record::Description(&id), d, |t| t.as_bytes().to_vec()),
            None => Kept::Clear(d),
        });
        let inner = self.inner.clone();
        let inv_id = id.clone();
        let session_id = self
            .write(move |tx, cfg| {
                let row = find_session(tx, &req.session, cfg)?;
                row.require_writable(cfg, "CreateInvocation")?;
                row.sealing(&inner, prepared.as_ref())?;
                let exists: Option<i64> = tx
                    .prepare_cached("SELECT seq FROM invocations WHERE session_seq = ?1 AND id = ?2")?
                    .query_row(params![row.seq, inv_id], |r| r.get(0))
                    .optional()?;
                if exists.is_some() {
                    return Err(super::invocation_exists(&row.id, &inv_id));
                }
                let now = cfg.clock.now_us();
                tx.prepare_cached("INSERT INTO invocations (session_seq, id, description, created_at) VALUES (?1, ?2, ?3, ?4)")?
                    .execute(params![row.seq, inv_id, description.map(kept_sql), now])?;
                tx.prepare_cached("UPDATE sessions SET last_updated_at = ?1 WHERE seq = ?2")?
                    .execute(params![now, row.seq])?;
                Ok((row.id, now))
            })
            .await?;
        Ok(Invocation {
            session_id: session_id.0,
            invocation_id: id,
            description: req.description,
            created_at: session_id.1,
        })
    }

    async fn list_invocations(
        &self,
        session: SessionRef,
        page: PageRequest,
    ) -> Result<Page<Invocation>> {
        let (row, rows) = self
            .read(move |tx, cfg| {
                let row = find_session(tx, &session, cfg)?;
                let scope = format!("invocations|{}", row.id);
                let rows = keyset(
                    tx,
                    "SELECT id, description, created_at, seq FROM invocations
                     WHERE session_seq = ?4 AND (created_at, seq) < (?1, ?2)
                     ORDER BY created_at DESC, seq DESC LIMIT ?3",
                    &[&row.seq],
                    &scope,
                    &page,
                    cfg,
                    |r| {
                        let description: Option<rusqlite::types::Value> = r.get(1)?;
                        let kept = description.map(|v| kept_text(v, 1)).transpose()?;
                        let item = (r.get::<_, String>(0)?, kept, r.get::<_, Micros>(2)?);
                        let c = Cursor {
                            time: item.2,
                            seq: r.get(3)?,
                        };
                        Ok((item, c))
                    },
                )?;
                Ok((row, rows))
            })
            .await?;
        let sealing = self.sealing_of(&row).await?;
        let items = open_invocations(&sealing, &row.id, rows.items)?;
        Ok(Page {
            items,
            next_token: rows.next_token,
        })
    }

    async fn put_invocation_step(&self, req: PutStep) -> Result<String> {
        // Size checks before taking the write lock.
        super::check_step_size(&req.payload, &self.cfg)?;
        let prepared = self.prepare(&req.session).await?;
        let encoded = encode_payload(&req.payload);
        // A new step's id is chosen here: it is named in its sealed record.
        let step_id = req.step_id.clone().unwrap_or_else(new_id);
        let blob = match &prepared {
            Some(p) => p.seal_bytes(Record::Step(&step_id), &encoded).into_owned(),
            None => encoded.clone(),
        };
        let inner = self.inner.clone();
        self.write(move |tx, cfg| {
            let row = find_session(tx, &req.session, cfg)?;
            row.require_writable(cfg, "PutInvocationStep")?;
            let sealing = row.sealing(&inner, prepared.as_ref())?;
            let inv_seq = find_invocation_seq(tx, &row, &req.invocation_id)?;
            // A step id that exists: a retried write of the same step is a success; anything else is a
            // conflict. (Sealed records differ at each write: their plaintexts are compared.)
            let existing = |step_id: &str| -> Result<Option<String>> {
                let found: Option<(i64, i64, Vec<u8>)> = tx
                    .prepare_cached("SELECT invocation_seq, step_time, payload FROM steps WHERE session_seq = ?1 AND id = ?2")?
                    .query_row(params![row.seq, step_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                match found {
                    None => Ok(None),
                    Some((e_inv, e_time, e_payload)) if e_inv == inv_seq && e_time == req.time
                        && *sealing.open_bytes(Record::Step(step_id), &e_payload)? == encoded[..] => {
                        Ok(Some(step_id.to_string()))
                    }
                    Some(_) => Err(super::step_conflict(&row.id, step_id)),
                }
            };
            if row.step_count as u64 >= cfg.max_steps_per_session {
                // Even a full session answers a retry of a step it holds.
                if let Some(done) = req.step_id.as_deref().map(existing).transpose()?.flatten() {
                    return Ok(done);
                }
                return Err(super::step_quota(&row.id, cfg));
            }
            // Inserted unless the id exists (one statement on the usual path; the existing step is
            // read only then).
            let inserted = tx
                .prepare_cached("INSERT INTO steps (session_seq, invocation_seq, id, step_time, payload) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (session_seq, id) DO NOTHING")?
                .execute(params![row.seq, inv_seq, step_id, req.time, blob])?;
            if inserted == 0 {
                return match existing(&step_id)? {
                    Some(done) => Ok(done),
                    None => Err(Error::internal(format!("step {step_id} was neither stored nor found"))),
                };
            }
            tx.prepare_cached("UPDATE sessions SET step_count = step_count + 1, last_updated_at = ?1 WHERE seq = ?2")?
                .execute(params![cfg.clock.now_us(), row.seq])?;
            Ok(step_id)
        })
        .await
    }

    async fn get_invocation_step(&self, req: GetStep) -> Result<Step> {
        let (row, time, blob, req) = self
            .read(move |tx, cfg| {
                let row = find_session(tx, &req.session, cfg)?;
                let inv_seq = find_invocation_seq(tx, &row, &req.invocation_id)?;
                let found: Option<(i64, Vec<u8>)> = tx
                    .prepare_cached("SELECT step_time, payload FROM steps WHERE session_seq = ?1 AND invocation_seq = ?2 AND id = ?3")?
                    .query_row(params![row.seq, inv_seq, req.step_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let (time, blob) = found.ok_or_else(|| {
                    super::not_found_step(&row.id, &req.invocation_id, &req.step_id)
                })?;
                Ok((row, time, blob, req))
            })
            .await?;
        let sealing = self.sealing_of(&row).await?;
        let payload = decode_payload(&sealing.open_bytes(Record::Step(&req.step_id), &blob)?)?;
        Ok(Step {
            summary: StepSummary {
                session_id: row.id,
                invocation_id: req.invocation_id,
                step_id: req.step_id,
                time,
            },
            payload,
        })
    }

    async fn list_invocation_steps(&self, req: ListSteps) -> Result<Page<StepSummary>> {
        self.read(move |tx, cfg| {
            let row = find_session(tx, &req.session, cfg)?;
            let sid = row.id.clone();
            let map = |r: &rusqlite::Row<'_>| {
                let s = StepSummary { session_id: sid.clone(), invocation_id: r.get(0)?, step_id: r.get(1)?, time: r.get(2)? };
                let c = Cursor { time: s.time, seq: r.get(3)? };
                Ok((s, c))
            };
            match &req.invocation_id {
                Some(inv) => {
                    let inv_seq = find_invocation_seq(tx, &row, inv)?;
                    keyset(
                        tx,
                        "SELECT i.id, s.id, s.step_time, s.seq FROM steps s JOIN invocations i ON i.seq = s.invocation_seq
                         WHERE s.invocation_seq = ?4 AND (s.step_time, s.seq) < (?1, ?2)
                         ORDER BY s.step_time DESC, s.seq DESC LIMIT ?3",
                        &[&inv_seq],
                        &format!("steps|{}|{inv}", row.id),
                        &req.page,
                        cfg,
                        map,
                    )
                }
                None => keyset(
                    tx,
                    "SELECT i.id, s.id, s.step_time, s.seq FROM steps s JOIN invocations i ON i.seq = s.invocation_seq
                     WHERE s.session_seq = ?4 AND (s.step_time, s.seq) < (?1, ?2)
                     ORDER BY s.step_time DESC, s.seq DESC LIMIT ?3",
                    &[&row.seq],
                    &format!("steps|{}|*", row.id),
                    &req.page,
                    cfg,
                    map,
                ),
            }
        })
        .await
    }

    async fn tag_resource(&self, arn: ResourceArn, tags: BTreeMap<String, String>) -> Result<()> {
        self.write(move |tx, cfg| {
            let row = find_tagged_session(tx, &arn, cfg)?;
            insert_tags(tx, row.seq, &tags)?;
            // Too many: the transaction rolls back on drop, nothing is written.
            super::check_tag_count(tag_count(tx, row.seq)? as usize)
        })
        .await
    }

    async fn untag_resource(&self, arn: ResourceArn, keys: Vec<String>) -> Result<()> {
        self.write(move |tx, cfg| {
            let row = find_tagged_session(tx, &arn, cfg)?;
            let mut stmt =
                tx.prepare_cached("DELETE FROM tags WHERE session_seq = ?1 AND key = ?2")?;
            for k in &keys {
                stmt.execute(params![row.seq, k])?;
            }
            Ok(())
        })
        .await
    }

    fn thread_index(&self) -> Option<&dyn ThreadIndex> {
        (!self.cfg.account_only).then_some(self as &dyn ThreadIndex)
    }

    fn for_account(&self, account: &str) -> Option<Arc<dyn SessionStore>> {
        let cfg = super::account_config(&self.cfg, account).ok()?;
        Some(Arc::new(SqliteStore {
            inner: self.inner.clone(),
            cfg: Arc::new(cfg),
        }))
    }

    async fn list_tags_for_resource(&self, arn: ResourceArn) -> Result<BTreeMap<String, String>> {
        self.read(move |tx, cfg| {
            let row = find_tagged_session(tx, &arn, cfg)?;
            let mut stmt =
                tx.prepare_cached("SELECT key, value FROM tags WHERE session_seq = ?1")?;
            let rows = stmt.query_map([row.seq], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()?)
        })
        .await
    }
}

/// The native thread index: a table of the file (a map in memory), bound and swapped in one transaction.
#[async_trait]
impl ThreadIndex for SqliteStore {
    async fn lookup(&self, thread_id: &str) -> Result<Option<String>> {
        let thread_id = thread_id.to_string();
        self.read(move |tx, _cfg| {
            Ok(tx
                .prepare_cached("SELECT s.id FROM threads t JOIN sessions s ON s.seq = t.session_seq WHERE t.thread_id = ?1")?
.query_row(
                    [&thread_id],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn bind(&self, thread_id: &str, session_id: &str, replace: bool) -> Result<String> {
        let (thread_id, session_id) = (thread_id.to_string(), session_id.to_string());
        self.write(move |tx, _cfg| {
            let seq: i64 = tx
                .prepare_cached("SELECT seq FROM sessions WHERE id = ?1")?
.query_row( [&session_id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| not_found_session(&session_id))?;
            let sql = if replace {
                "INSERT INTO threads (thread_id, session_seq) VALUES (?1, ?2)
                 ON CONFLICT (thread_id) DO UPDATE SET session_seq = excluded.session_seq"
            } else {
                "INSERT INTO threads (thread_id, session_seq) VALUES (?1, ?2) ON CONFLICT (thread_id) DO NOTHING"
            };
            tx.prepare_cached(sql)?
.execute( params![thread_id, seq])?;
            Ok(tx.prepare_cached("SELECT s.id FROM threads t JOIN sessions s ON s.seq = t.session_seq WHERE t.thread_id = ?1")?
.query_row(
                [&thread_id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn rebind(&self, thread_id: &str, from: &str, to: &str) -> Result<String> {
        let (thread_id, from, to) = (thread_id.to_string(), from.to_string(), to.to_string());
        self.write(move |tx, _cfg| {
            let seq_of = |id: &str| -> Result<Option<i64>> {
                Ok(tx
                    .prepare_cached("SELECT seq FROM sessions WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?)
            };
            let to_seq = seq_of(&to)?.ok_or_else(|| not_found_session(&to))?;
            match seq_of(&from)? {
                Some(from_seq) => {
                    tx.prepare_cached(
                        "UPDATE threads SET session_seq = ?1 WHERE thread_id = ?2 AND session_seq = ?3",
                    )?
                    .execute(params![to_seq, thread_id, from_seq])?;
                }
                // `from` is gone (deleted, and its binding with it): bind unless bound.
                None => {
                    tx.prepare_cached(
                        "INSERT INTO threads (thread_id, session_seq) VALUES (?1, ?2) ON CONFLICT (thread_id) DO NOTHING",
                    )?
                    .execute(params![thread_id, to_seq])?;
                }
            }
            Ok(tx
                .prepare_cached("SELECT s.id FROM threads t JOIN sessions s ON s.seq = t.session_seq WHERE t.thread_id = ?1")?
                .query_row([&thread_id], |r| r.get(0))?)
        })
        .await
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
