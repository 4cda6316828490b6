//! The embedded store in one SQLite file (WAL). `SqliteStore::memory` (an in-memory SQLite database) serves
//! the Rust tests; `SessionClient.memory()` uses the collections of `store::memory` instead.
//!
//! Durability: every write is one `BEGIN IMMEDIATE` transaction, committed before the call returns,
//! so an acknowledged write survives `kill -9` of the process (and power loss with `Durability::Full`).
//! Several processes may share one file: SQLite's locks serialize writers (waiting up to `busy_timeout`)
//! while readers keep reading their own snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::threads::ThreadIndex;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{Durability, SessionStore, StoreConfig, not_found_session};
use crate::clock::Micros;
use crate::error::{Error, Result};
use crate::model::{
    ContentBlock, CreateInvocation, CreateSession, GetStep, ImageFormat, ImageSource, Invocation,
    ListSteps, Page, PageRequest, Payload, PutStep, ResourceArn, Session, SessionRef,
    SessionStatus, Step, StepSummary, UpdateSession,
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
];

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
        Ok(SqliteStore {
            cfg: Arc::new(cfg.clone()),
            inner: Arc::new(Inner {
                cfg,
                location: Location::File(path),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
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
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(|e| e.to_string())?;
        tune(&conn).map_err(|e| e.to_string())?;
        migrate(&conn)?;
        Ok(SqliteStore {
            cfg: Arc::new(cfg.clone()),
            inner: Arc::new(Inner {
                cfg,
                location: Location::Memory,
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
            }),
        })
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
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
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
// Payload encoding: compact and deterministic (byte equality means payload equality).
// Layout: version byte 1, then per block: kind (0 text, 1 image bytes, 2 image s3), format byte, u32 LE length, data.

fn encode_payload(p: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.byte_size() + 1 + 6 * p.blocks.len());
    out.push(1u8);
    for b in &p.blocks {
        let (kind, fmt, data): (u8, u8, &[u8]) = match b {
            ContentBlock::Text(t) => (0, 0, t.as_bytes()),
            ContentBlock::Image { format, source } => {
                let f = *format as u8;
                match source {
                    ImageSource::Bytes(b) => (1, f, b),
                    ImageSource::S3 { uri } => (2, f, uri.as_bytes()),
                }
            }
        };
        out.push(kind);
        out.push(fmt);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

fn decode_payload(buf: &[u8]) -> Result<Payload> {
    let corrupt = || Error::internal("stored step payload is corrupt");
    if buf.first() != Some(&1) {
        return Err(corrupt());
    }
    let mut i = 1;
    let mut blocks = Vec::new();
    while i < buf.len() {
        let head = buf.get(i..i + 6).ok_or_else(corrupt)?;
        let (kind, fmt) = (head[0], head[1]);
        let len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let data = buf.get(i + 6..i + 6 + len).ok_or_else(corrupt)?;
        i += 6 + len;
        let format = match fmt {
            0 => ImageFormat::Png,
            1 => ImageFormat::Jpeg,
            2 => ImageFormat::Gif,
            3 => ImageFormat::Webp,
            _ => return Err(corrupt()),
        };
        let text = || String::from_utf8(data.to_vec()).map_err(|_| corrupt());
        blocks.push(match kind {
            0 => ContentBlock::Text(text()?),
            1 => ContentBlock::Image {
                format,
                source: ImageSource::Bytes(data.to_vec()),
            },
            2 => ContentBlock::Image {
                format,
                source: ImageSource::S3 { uri: text()? },
            },
            _ => return Err(corrupt()),
        });
    }
    Ok(Payload { blocks })
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
    metadata: String,
    encryption_key_arn: Option<String>,
    step_count: i64,
}

const SESSION_COLS: &str =
    "seq, id, arn, status, created_at, last_updated_at, metadata, encryption_key_arn, step_count";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        arn: r.get(2)?,
        status: r.get(3)?,
        created_at: r.get(4)?,
        last_updated_at: r.get(5)?,
        metadata: r.get(6)?,
        encryption_key_arn: r.get(7)?,
        step_count: r.get(8)?,
    })
}

impl SessionRow {
    fn status(&self, cfg: &StoreConfig) -> SessionStatus {
        // Stored: ACTIVE or ENDED (anything else reads as ENDED).
        let ended = SessionStatus::parse(&self.status) != Some(SessionStatus::Active);
        super::session_status(ended, self.last_updated_at, cfg)
    }

    fn to_session(&self, cfg: &StoreConfig) -> Result<Session> {
        let metadata: BTreeMap<String, String> = serde_json::from_str(&self.metadata)
            .map_err(|e| Error::internal(format!("stored session metadata is corrupt: {e}")))?;
        Ok(Session {
            id: self.id.clone(),
            arn: self.arn.clone(),
            status: self.status(cfg),
            created_at: self.created_at,
            last_updated_at: self.last_updated_at,
            metadata,
            encryption_key_arn: self.encryption_key_arn.clone(),
        })
    }

    fn require_writable(&self, cfg: &StoreConfig, what: &str) -> Result<()> {
        super::require_writable(&self.id, self.status(cfg), what)
    }
}

fn find_session(tx: &Tx<'_>, sref: &SessionRef, cfg: &StoreConfig) -> Result<SessionRow> {
    let row = tx
        .prepare_cached(&format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE id = ?1"
        ))?
        .query_row([&sref.id], session_row)
        .optional()?
        .ok_or_else(|| not_found_session(&sref.raw))?;
    // An ARN must be this session's exact ARN: another region, account or partition names no session here.
    if sref.arn.is_some() && sref.raw != row.arn {
        return Err(not_found_session(&sref.raw));
    }
    // Another account's session does not exist for a handle that acts for one account.
    if !super::visible(&row.arn, cfg) {
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

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, req: CreateSession) -> Result<Session> {
        self.write(move |tx, cfg| {
            let id = new_id();
            let arn = SessionArn::format(&cfg.partition, &cfg.region, &cfg.account_id, &id);
            let now = cfg.clock.now_us();
            let metadata = serde_json::to_string(&req.metadata).map_err(|e| Error::internal(e.to_string()))?;
            tx.prepare_cached("INSERT INTO sessions (id, arn, status, created_at, last_updated_at, metadata, encryption_key_arn)
                 VALUES (?1, ?2, 'ACTIVE', ?3, ?3, ?4, ?5)")?
.execute(
                params![id, arn, now, metadata, req.encryption_key_arn],
            )?;
            let seq = tx.last_insert_rowid();
            insert_tags(tx, seq, &req.tags)?;
            Ok(Session {
                id,
                arn,
                status: SessionStatus::Active,
                created_at: now,
                last_updated_at: now,
                metadata: req.metadata,
                encryption_key_arn: req.encryption_key_arn,
            })
        })
        .await
    }

    async fn get_session(&self, session: SessionRef) -> Result<Session> {
        self.read(move |tx, cfg| find_session(tx, &session, cfg)?.to_session(cfg))
            .await
    }

    async fn list_sessions(&self, page: PageRequest) -> Result<Page<Session>> {
        self.read(move |tx, cfg| {
            // A handle for one account lists that account's sessions (its ARNs name it) and no other.
            let account = cfg
                .account_only
                .then(|| format!("arn:%:%:%:{}:session/%", cfg.account_id));
            let sql = format!(
                "SELECT {SESSION_COLS} FROM sessions WHERE (created_at, seq) < (?1, ?2)
                 AND (?4 IS NULL OR arn LIKE ?4)
                 ORDER BY created_at DESC, seq DESC LIMIT ?3"
            );
            let rows = keyset(tx, &sql, &[&account], "sessions", &page, cfg, |r| {
                let row = session_row(r)?;
                let c = Cursor {
                    time: row.created_at,
                    seq: row.seq,
                };
                Ok((row, c))
            })?;
            let items = rows
                .items
                .iter()
                .map(|r| r.to_session(cfg))
                .collect::<Result<Vec<_>>>()?;
            Ok(Page {
                items,
                next_token: rows.next_token,
            })
        })
        .await
    }

    async fn update_session(&self, req: UpdateSession) -> Result<Session> {
        self.write(move |tx, cfg| {
            let row = find_session(tx, &req.session, cfg)?;
            row.require_writable(cfg, "UpdateSession")?;
            let now = cfg.clock.now_us();
            match &req.metadata {
                Some(m) => {
                    let json =
                        serde_json::to_string(m).map_err(|e| Error::internal(e.to_string()))?;
                    tx.prepare_cached(
                        "UPDATE sessions SET metadata = ?1, last_updated_at = ?2 WHERE seq = ?3",
                    )?
                    .execute(params![json, now, row.seq])?;
                }
                None => {
                    tx.prepare_cached("UPDATE sessions SET last_updated_at = ?1 WHERE seq = ?2")?
                        .execute(params![now, row.seq])?;
                }
            }
            find_session(tx, &req.session, cfg)?.to_session(cfg)
        })
        .await
    }

    async fn end_session(&self, session: SessionRef) -> Result<Session> {
        self.write(move |tx, cfg| {
            let row = find_session(tx, &session, cfg)?;
            if row.status(cfg) == SessionStatus::Ended {
                return Err(super::already_ended(&row.id));
            }
            let now = cfg.clock.now_us();
            tx.prepare_cached(
                "UPDATE sessions SET status = 'ENDED', last_updated_at = ?1 WHERE seq = ?2",
            )?
            .execute(params![now, row.seq])?;
            find_session(tx, &session, cfg)?.to_session(cfg)
        })
        .await
    }

    async fn delete_session(&self, session: SessionRef) -> Result<()> {
        self.write(move |tx, cfg| {
            let row = find_session(tx, &session, cfg)?;
            if row.status(cfg) == SessionStatus::Active {
                return Err(super::delete_active(&row.id));
            }
            // Invocations, steps and tags go with it (ON DELETE CASCADE).
            tx.prepare_cached("DELETE FROM sessions WHERE seq = ?1")?
                .execute([row.seq])?;
            Ok(())
        })
        .await
    }

    async fn create_invocation(&self, req: CreateInvocation) -> Result<Invocation> {
        self.write(move |tx, cfg| {
            let row = find_session(tx, &req.session, cfg)?;
            row.require_writable(cfg, "CreateInvocation")?;
            let id = req.invocation_id.unwrap_or_else(new_id);
            let exists: Option<i64> = tx
                .prepare_cached("SELECT seq FROM invocations WHERE session_seq = ?1 AND id = ?2")?
.query_row(
                    params![row.seq, id],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Err(super::invocation_exists(&row.id, &id));
            }
            let now = cfg.clock.now_us();
            tx.prepare_cached("INSERT INTO invocations (session_seq, id, description, created_at) VALUES (?1, ?2, ?3, ?4)")?
.execute(
                params![row.seq, id, req.description, now],
            )?;
            tx.prepare_cached("UPDATE sessions SET last_updated_at = ?1 WHERE seq = ?2")?
.execute( params![now, row.seq])?;
            Ok(Invocation { session_id: row.id, invocation_id: id, description: req.description, created_at: now })
        })
        .await
    }

    async fn list_invocations(
        &self,
        session: SessionRef,
        page: PageRequest,
    ) -> Result<Page<Invocation>> {
        self.read(move |tx, cfg| {
            let row = find_session(tx, &session, cfg)?;
            let scope = format!("invocations|{}", row.id);
            let sid = row.id.clone();
            keyset(
                tx,
                "SELECT id, description, created_at, seq FROM invocations
                 WHERE session_seq = ?4 AND (created_at, seq) < (?1, ?2)
                 ORDER BY created_at DESC, seq DESC LIMIT ?3",
                &[&row.seq],
                &scope,
                &page,
                cfg,
                |r| {
                    let inv = Invocation {
                        session_id: sid.clone(),
                        invocation_id: r.get(0)?,
                        description: r.get(1)?,
                        created_at: r.get(2)?,
                    };
                    let c = Cursor {
                        time: inv.created_at,
                        seq: r.get(3)?,
                    };
                    Ok((inv, c))
                },
            )
        })
        .await
    }

    async fn put_invocation_step(&self, req: PutStep) -> Result<String> {
        // Size checks before taking the write lock.
        super::check_step_size(&req.payload, &self.cfg)?;
        let blob = encode_payload(&req.payload);
        self.write(move |tx, cfg| {
            let row = find_session(tx, &req.session, cfg)?;
            row.require_writable(cfg, "PutInvocationStep")?;
            let inv_seq = find_invocation_seq(tx, &row, &req.invocation_id)?;
            // A step id that exists: a retried write of the same step is a success; anything else is a
            // conflict.
            let existing = |step_id: &str| -> Result<Option<String>> {
                let found: Option<(i64, i64, Vec<u8>)> = tx
                    .prepare_cached("SELECT invocation_seq, step_time, payload FROM steps WHERE session_seq = ?1 AND id = ?2")?
                    .query_row(params![row.seq, step_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                match found {
                    None => Ok(None),
                    Some((e_inv, e_time, e_payload)) if e_inv == inv_seq && e_time == req.time && e_payload == blob => {
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
            let step_id = req.step_id.clone().unwrap_or_else(new_id);
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
        self.read(move |tx, cfg| {
            let row = find_session(tx, &req.session, cfg)?;
            let inv_seq = find_invocation_seq(tx, &row, &req.invocation_id)?;
            let found: Option<(i64, Vec<u8>)> = tx
                .prepare_cached("SELECT step_time, payload FROM steps WHERE session_seq = ?1 AND invocation_seq = ?2 AND id = ?3")?
.query_row(
                    params![row.seq, inv_seq, req.step_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (time, blob) = found
                .ok_or_else(|| super::not_found_step(&row.id, &req.invocation_id, &req.step_id))?;
            Ok(Step {
                summary: StepSummary { session_id: row.id, invocation_id: req.invocation_id, step_id: req.step_id, time },
                payload: decode_payload(&blob)?,
            })
        })
        .await
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
