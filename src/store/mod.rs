//! The state file: one redb database holding cursors, block hashes, the contract registry, items
//! (events, batches), deliveries and transaction intents.
//!
//! **Opening.** redb runs in `ConcurrencyMode::SingleWriter`: one process writes, any number open
//! the file read-only and follow its commits (`inspect-store`, `export` while `watch` runs).
//! Before a writer opens a file, it is examined through a read-only open, which never modifies it:
//! a file that is not a redb file, not a ferry store, written by a newer ferry or in need of
//! migration is refused byte-for-byte untouched. redb can panic on a file altered behind its back;
//! opens run under `catch_unwind` so such a file is reported as damaged, not as a crash.
//!
//! **Keys** are fixed-width big-endian byte arrays ([`keys`]); names of sources and targets are
//! mapped to `u32` ids. **Values** are postcard records behind a version byte ([`records`]).
//! **Tables** are all defined in [`tables`], with the schema version; [`migrate`] upgrades older
//! files. `tests/fixtures/store-vN.redb` is a small populated file of each schema N; the current
//! one is rewritten by running the store tests with `FERRY_REGEN_FIXTURES=1`.

pub mod deliver;
pub mod dump;
mod error;
pub mod ingest;
pub mod keys;
pub mod migrate;
pub mod query;
pub mod query_deliver;
pub mod query_seda;
pub mod records;
mod recover;
pub mod seda;
pub mod serde_text;
pub mod sink;
pub mod tables;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{
    Builder, ConcurrencyMode, Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, ReadableDatabase,
    ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

pub use self::error::StoreError;
pub use self::error::guarded;
use self::error::open_error;
pub(crate) use self::error::{Failure, failure};
use self::keys::*;
use self::records::{Record, RecordError};
use self::tables::{SCHEMA_VERSION, meta};

/// The process that opened a store for writing, recorded in `meta` so that a refused second
/// writer can say who holds the file. Only the program name and subcommand are kept: arguments
/// could carry secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
    pub started_at: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}, `{}`, since unix time {}", self.pid, self.command, self.started_at)
    }
}

impl Holder {
    /// This process: pid, program file name and first argument (the subcommand).
    pub fn current() -> Self {
        let mut args = std::env::args_os();
        let program = args
            .next()
            .and_then(|p| Path::new(&p).file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "ferry".into());
        let sub = args.next().map(|a| a.to_string_lossy().into_owned()).filter(|a| !a.starts_with('-'));
        let command = match sub {
            Some(sub) => format!("{program} {sub}"),
            None => program,
        };
        Self { pid: std::process::id(), command, started_at: now() }
    }
}

/// The histogram of write-transaction commit times (`/metrics`; recorded only under `watch`).
pub const COMMIT_SECONDS: &str = "ferry_store_commit_seconds";

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Page cache of read-only opens.
const READER_CACHE_BYTES: usize = 8 << 20;

fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    builder
}

/// redb's file header starts with this; anything else is not a redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Checks that `path` exists and starts like a redb file, reading only its first bytes.
fn sniff(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Missing { path: path.into() });
        }
        Err(source) => return Err(StoreError::Io { path: path.into(), source }),
    };
    let mut head = [0u8; REDB_MAGIC.len()];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(source) => return Err(StoreError::Io { path: path.into(), source }),
        }
    }
    if read == 0 {
        return Err(StoreError::NotFerryStore { path: path.into(), detail: "the file is empty".into() });
    }
    if read < head.len() || head != REDB_MAGIC {
        return Err(StoreError::NotFerryStore { path: path.into(), detail: "not a redb database".into() });
    }
    Ok(())
}

/// What `meta` says about a file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Meta {
    pub schema_version: u32,
    pub created_by: Option<String>,
    pub created_at: Option<u64>,
    pub config_fingerprint: Option<String>,
    pub holder: Option<Holder>,
    pub migrated_by: Option<String>,
}

fn read_meta(path: &Path, txn: &ReadTransaction) -> Result<Meta, StoreError> {
    let not_ours = |detail: &str| StoreError::NotFerryStore { path: path.into(), detail: detail.into() };
    let table = match txn.open_table(tables::META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(not_ours("a redb file without ferry's meta table"));
        }
        Err(e) => return Err(failure(path, e)),
    };
    let get = |key: &str| -> Result<Option<String>, StoreError> {
        Ok(table.get(key).map_err(|e| failure(path, e))?.map(|v| v.value().to_string()))
    };
    let version =
        get(meta::SCHEMA_VERSION)?.ok_or_else(|| not_ours("no schema_version in its meta table"))?;
    let schema_version =
        version.parse().map_err(|_| failure(path, format!("schema_version `{version}` is not a number")))?;
    Ok(Meta {
        schema_version,
        created_by: get(meta::CREATED_BY)?,
        created_at: get(meta::CREATED_AT)?.and_then(|v| v.parse().ok()),
        config_fingerprint: get(meta::CONFIG_FINGERPRINT)?,
        holder: get(meta::HOLDER)?.and_then(|h| serde_json::from_str(&h).ok()),
        migrated_by: get(meta::MIGRATED_BY)?,
    })
}

fn check_version(path: &Path, found: u32) -> Result<(), StoreError> {
    match found.cmp(&SCHEMA_VERSION) {
        std::cmp::Ordering::Greater => {
            Err(StoreError::Newer { path: path.into(), found, supported: SCHEMA_VERSION })
        }
        std::cmp::Ordering::Less => {
            Err(StoreError::NeedsMigration { path: path.into(), found, current: SCHEMA_VERSION })
        }
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// A store opened read-only: never modifies the file, works while a writer holds it, and on a
/// file a killed writer left unclean reads a repaired copy ([`recover`]).
pub struct ReadStore {
    // Declared before the copy it may read: closed before the copy is removed.
    db: ReadOnlyDatabase,
    path: PathBuf,
    meta: Meta,
    recovered: Option<recover::RecoveredCopy>,
}

/// Examines a file without modifying it: redb magic, a readable header, ferry's meta.
/// Returns the read-only handle and the meta; the schema version is not judged here.
fn examine(path: &Path) -> Result<(ReadOnlyDatabase, Meta), StoreError> {
    sniff(path)?;
    // Readers scan (export, inspect-store): a small page cache keeps their memory flat however
    // large the file; the OS page cache still serves repeated reads.
    let mut builder = builder();
    builder.set_cache_size(READER_CACHE_BYTES);
    let db = guarded(path, "opening", || builder.open_read_only(path))?.map_err(|e| open_error(path, e))?;
    let meta = guarded(path, "reading meta", || -> Result<Meta, StoreError> {
        let txn = db.begin_read().map_err(|e| failure(path, e))?;
        read_meta(path, &txn)
    })??;
    Ok((db, meta))
}

impl ReadStore {
    /// Opens an existing store read-only, refusing files of another schema version. A file that
    /// needs recovery (its writer was killed) is read from a repaired copy, the original left
    /// byte-for-byte as it is: see [`ReadStore::is_recovered_copy`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let (db, meta, recovered) = match examine(path) {
            Ok((db, meta)) => (db, meta, None),
            Err(StoreError::NeedsRecovery { .. }) => {
                let (copy, db, meta) = recover::open_copy(path)?;
                (db, meta, Some(copy))
            }
            Err(e) => return Err(e),
        };
        check_version(path, meta.schema_version)?;
        Ok(Self { db, path: path.into(), meta, recovered })
    }

    /// Whether this reads a repaired copy of a file that was not closed cleanly: what it shows
    /// is what the last committed transaction held, which the commands say.
    pub fn is_recovered_copy(&self) -> bool {
        self.recovered.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// A consistent snapshot to read from.
    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        guarded(&self.path, "reading", || self.db.begin_read())?.map_err(|e| failure(&self.path, e))
    }
}

/// What `meta` says about a file, read without judging its version (for `migrate` and errors).
pub fn inspect_meta(path: &Path) -> Result<Meta, StoreError> {
    examine(path).map(|(_, meta)| meta)
}

/// The store opened for writing, by one process at a time.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens the store for writing, creating it when the file does not exist. `fingerprint` is the
    /// config's, recorded in `meta`.
    pub fn create_or_open(path: &Path, fingerprint: Option<&str>) -> Result<Self, StoreError> {
        if !path.exists() {
            return Self::create(path, fingerprint);
        }
        Self::open(path, fingerprint)
    }

    /// Opens an existing store for writing.
    pub fn open(path: &Path, fingerprint: Option<&str>) -> Result<Self, StoreError> {
        let db = open_writer_checked(path)?;
        let store = Self { db, path: path.into() };
        let schema = store.read_meta()?.schema_version;
        check_version(path, schema)?;
        store.mark_holder(fingerprint)?;
        Ok(store)
    }

    fn create(path: &Path, fingerprint: Option<&str>) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: path.into(), source })?;
        }
        let db = builder().create(path).map_err(|e| open_error(path, e))?;
        let store = Self { db, path: path.into() };
        store.write(|tx| {
            tx.create_all_tables()?;
            tx.set_meta(meta::SCHEMA_VERSION, &SCHEMA_VERSION.to_string())?;
            tx.set_meta(meta::CREATED_BY, &format!("ferry {}", env!("CARGO_PKG_VERSION")))?;
            tx.set_meta(meta::CREATED_AT, &now().to_string())
        })?;
        store.mark_holder(fingerprint)?;
        Ok(store)
    }

    fn mark_holder(&self, fingerprint: Option<&str>) -> Result<(), StoreError> {
        let holder = serde_json::to_string(&Holder::current()).unwrap_or_default();
        self.write(|tx| {
            tx.set_meta(meta::HOLDER, &holder)?;
            if let Some(fp) = fingerprint {
                tx.set_meta(meta::CONFIG_FINGERPRINT, fp)?;
            }
            Ok(())
        })
    }

    /// Records the fingerprint of the config now in use, when a running writer takes a new one
    /// (`watch` on SIGHUP), so that the file names the config that writes it.
    pub fn set_config_fingerprint(&self, fingerprint: &str) -> Result<(), StoreError> {
        self.write(|tx| tx.set_meta(meta::CONFIG_FINGERPRINT, fingerprint))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read_meta(&self) -> Result<Meta, StoreError> {
        let txn = self.read()?;
        read_meta(&self.path, &txn)
    }

    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        guarded(&self.path, "reading", || self.db.begin_read())?.map_err(|e| failure(&self.path, e))
    }

    /// Runs `f` in one write transaction: everything it writes commits together, or nothing does.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write().map_err(|e| failure(&self.path, e))?;
        let mut tx = WriteTx { txn: &txn, path: &self.path };
        let out = f(&mut tx)?;
        let started = std::time::Instant::now();
        txn.commit().map_err(|e| failure(&self.path, e))?;
        // A no-op unless a command installed a metrics recorder (only `watch` does).
        metrics::histogram!(COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(out)
    }
}

/// Opens the writer after examining the file read-only, so a file that ferry must refuse is never
/// touched. A file left by a killed writer cannot be examined read-only; the writer open recovers it.
fn open_writer_checked(path: &Path) -> Result<Database, StoreError> {
    match examine(path) {
        Ok((ro, meta)) => {
            drop(ro);
            if meta.schema_version > SCHEMA_VERSION {
                return Err(StoreError::Newer {
                    path: path.into(),
                    found: meta.schema_version,
                    supported: SCHEMA_VERSION,
                });
            }
        }
        Err(StoreError::NeedsRecovery { .. }) => {}
        Err(e) => return Err(e),
    }
    match guarded(path, "opening", || builder().open(path))? {
        Ok(db) => Ok(db),
        Err(DatabaseError::DatabaseAlreadyOpen) => {
            let holder = inspect_meta(path).ok().and_then(|m| m.holder);
            Err(StoreError::Locked { path: path.into(), holder })
        }
        Err(e) => Err(open_error(path, e)),
    }
}

/// One write transaction, typed.
pub struct WriteTx<'a> {
    txn: &'a WriteTransaction,
    path: &'a Path,
}

impl WriteTx<'_> {
    fn err(&self, e: impl Failure) -> StoreError {
        failure(self.path, e)
    }

    /// Creates every table, so that readers (which cannot create) find them all.
    pub fn create_all_tables(&mut self) -> Result<(), StoreError> {
        self.txn.open_table(tables::META).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::SOURCE_IDS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::TARGET_IDS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::CURSORS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::BLOCK_HASHES).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::CONTRACTS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::EVENTS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::BATCHES).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::DELIVERIES).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::DELIVERY_STATUS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::TX_INTENTS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::REORGS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::PROVERS).map_err(|e| self.err(e))?;
        self.txn.open_table(tables::SINK_ACKS).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(tables::META).map_err(|e| self.err(e))?;
        table.insert(key, value).map_err(|e| self.err(e))?;
        Ok(())
    }

    fn name_id(&mut self, def: TableDefinition<&str, u32>, name: &str) -> Result<u32, StoreError> {
        let mut table = self.txn.open_table(def).map_err(|e| self.err(e))?;
        if let Some(id) = table.get(name).map_err(|e| self.err(e))? {
            return Ok(id.value());
        }
        let next = table.len().map_err(|e| self.err(e))?;
        let id = u32::try_from(next).map_err(|_| self.err(String::from("more than 2^32 names")))?;
        table.insert(name, id).map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// The id of a source name, assigned on first use.
    pub fn source_id(&mut self, name: &str) -> Result<u32, StoreError> {
        self.name_id(tables::SOURCE_IDS, name)
    }

    /// The id of a target name, assigned on first use.
    pub fn target_id(&mut self, name: &str) -> Result<u32, StoreError> {
        self.name_id(tables::TARGET_IDS, name)
    }

    fn put<const N: usize, R: Record>(
        &mut self,
        def: TableDefinition<[u8; N], &[u8]>,
        key: [u8; N],
        record: &R,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(def).map_err(|e| self.err(e))?;
        table.insert(key, records::encode(record).as_slice()).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn put_cursor(&mut self, key: CursorKey, cursor: &records::Cursor) -> Result<(), StoreError> {
        self.put(tables::CURSORS, key.to_bytes(), cursor)
    }

    pub fn put_block_hash(&mut self, key: BlockKey, hash: &records::BlockHash) -> Result<(), StoreError> {
        self.put(tables::BLOCK_HASHES, key.to_bytes(), hash)
    }

    pub fn put_contract(&mut self, key: ContractKey, contract: &records::Contract) -> Result<(), StoreError> {
        self.put(tables::CONTRACTS, key.to_bytes(), contract)
    }

    pub fn put_event(&mut self, key: EventKey, event: &records::Event) -> Result<(), StoreError> {
        self.put(tables::EVENTS, key.to_bytes(), event)
    }

    pub fn put_batch(&mut self, key: BatchKey, batch: &records::Batch) -> Result<(), StoreError> {
        self.put(tables::BATCHES, key.to_bytes(), batch)
    }

    pub fn put_intent(&mut self, key: IntentKey, intent: &records::TxIntent) -> Result<(), StoreError> {
        self.put(tables::TX_INTENTS, key.to_bytes(), intent)
    }

    pub fn put_sink_ack(&mut self, key: DeliveryKey, ack: &records::SinkAck) -> Result<(), StoreError> {
        self.put(tables::SINK_ACKS, key.to_bytes(), ack)
    }

    pub fn put_reorg(&mut self, key: ReorgKey, reorg: &records::Reorg) -> Result<(), StoreError> {
        self.put(tables::REORGS, key.to_bytes(), reorg)
    }

    /// Writes a delivery and keeps the status index in step: the old state's index entry goes,
    /// the new one comes, in the same transaction.
    pub fn put_delivery(&mut self, key: DeliveryKey, delivery: &records::Delivery) -> Result<(), StoreError> {
        let old = {
            let table = self.txn.open_table(tables::DELIVERIES).map_err(|e| self.err(e))?;
            let old = table.get(key.to_bytes()).map_err(|e| self.err(e))?;
            match old {
                Some(bytes) => {
                    Some(records::decode::<records::Delivery>(bytes.value()).map_err(|e| self.err(e))?)
                }
                None => None,
            }
        };
        let status = |state: records::DeliveryState| StatusKey {
            state: state as u8,
            chain: key.chain,
            target: key.target,
            item: key.item,
        };
        let mut index = self.txn.open_table(tables::DELIVERY_STATUS).map_err(|e| self.err(e))?;
        if let Some(old) = old {
            index.remove(status(old.state).to_bytes()).map_err(|e| self.err(e))?;
        }
        index.insert(status(delivery.state).to_bytes(), ()).map_err(|e| self.err(e))?;
        drop(index);
        self.put(tables::DELIVERIES, key.to_bytes(), delivery)
    }

    /// The underlying transaction, for migration steps and the ingest module.
    pub fn raw(&self) -> &WriteTransaction {
        self.txn
    }

    pub fn path(&self) -> &Path {
        self.path
    }
}

/// A record that did not decode means the file is not what ferry wrote.
impl From<(PathBuf, RecordError)> for StoreError {
    fn from((path, e): (PathBuf, RecordError)) -> Self {
        StoreError::Damaged { path, detail: e.to_string() }
    }
}

/// Counts rows of the table behind a definition, 0 when the table was never created.
pub(crate) fn count<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64, redb::TableError> {
    match txn.open_table(def) {
        Ok(table) => Ok(table.len().unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_has_meta_and_every_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let store = Store::create_or_open(&path, Some("abc")).expect("create");
        let meta = store.read_meta().expect("meta");
        assert_eq!(meta.schema_version, SCHEMA_VERSION);
        assert_eq!(meta.config_fingerprint.as_deref(), Some("abc"));
        assert_eq!(meta.holder.as_ref().map(|h| h.pid), Some(std::process::id()));
        let txn = store.read().expect("read");
        for name in tables::ALL {
            assert!(dump::count_rows(&path, &txn, name).is_ok(), "table {name} missing");
        }
        drop(txn);
        drop(store);
        let again = ReadStore::open(&path).expect("read-only open");
        assert_eq!(again.meta().created_by.as_deref(), Some(concat!("ferry ", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn delivery_status_index_follows_the_state() {
        use records::{Delivery, DeliveryState};
        assert_eq!(Delivery::pending(0).state, DeliveryState::Pending);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let store = Store::create_or_open(&path, None).expect("create");
        let key =
            DeliveryKey { target: 0, chain: 10, item: ItemKey::Batch(BatchKey { source: 0, height: 1 }) };
        let mut delivery = Delivery::pending(0);
        store.write(|tx| tx.put_delivery(key, &delivery)).expect("write");
        delivery.state = DeliveryState::Sent;
        store.write(|tx| tx.put_delivery(key, &delivery)).expect("write");
        let txn = store.read().expect("read");
        let index = txn.open_table(tables::DELIVERY_STATUS).expect("index");
        let states: Vec<u8> = index
            .iter()
            .expect("iter")
            .map(|e| StatusKey::from_bytes(e.expect("entry").0.value()).state)
            .collect();
        assert_eq!(states, vec![DeliveryState::Sent as u8]);
    }

    #[test]
    fn names_get_stable_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::create_or_open(&dir.path().join("s.redb"), None).expect("create");
        let ids = store
            .write(|tx| Ok((tx.source_id("a")?, tx.source_id("b")?, tx.source_id("a")?, tx.target_id("a")?)))
            .expect("ids");
        assert_eq!(ids, (0, 1, 0, 0));
    }

    #[test]
    fn a_second_writer_in_another_handle_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let _first = Store::create_or_open(&path, None).expect("create");
        match Store::open(&path, None) {
            Err(StoreError::Locked { .. }) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("a second writer opened the store"),
        }
        // Readers still work next to the writer.
        ReadStore::open(&path).expect("read-only next to a writer");
    }
}
