//! Why a store cannot be used, read from what failed: the disk (an I/O error, a full disk), a file
//! that is not what ferry wrote (damage), another process holding it, its schema version, or a
//! bug. Every variant leaves the file as it was.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::DatabaseError;

use super::Holder;
use super::records;

/// Why the store cannot be used. Every variant leaves the file as it was.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {} does not exist; `ferry watch`, `ferry push` and `ferry backfill` create it", path.display())]
    Missing { path: PathBuf },
    #[error("{} is not a ferry store ({detail}); check --store or `store:` in the config", path.display())]
    NotFerryStore { path: PathBuf, detail: String },
    #[error(
        "store {} was written by a newer ferry (schema v{found}; this ferry supports up to v{supported}); upgrade ferry",
        path.display()
    )]
    Newer { path: PathBuf, found: u32, supported: u32 },
    #[error("store {} has schema v{found}, older than this ferry's v{current}; run `ferry migrate`", path.display())]
    NeedsMigration { path: PathBuf, found: u32, current: u32 },
    #[error(
        "store busy: {} is held by another ferry process{}; try again later (one process writes a \
         store at a time; `ferry inspect-store` and `ferry export` still work while it runs)",
        path.display(),
        holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, holder: Option<Holder> },
    #[error(
        "store {} was not closed cleanly (a ferry process was killed?) and needs recovery, which \
         `ferry migrate` does not do; the next `ferry watch`, `push` or `backfill` recovers it",
        path.display()
    )]
    NeedsRecovery { path: PathBuf },
    #[error("store {} is damaged: {detail}; restore it from a backup (`ferry migrate` leaves `*.bak` copies)", path.display())]
    Damaged { path: PathBuf, detail: String },
    /// What the disk or the file system said (full, read-only, an I/O error): the file is not
    /// damaged by it, and a run resumes once the cause is fixed.
    #[error("store {}: the disk said: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// redb refused an operation that ferry should never ask for: a bug, not the file's fault.
    #[error("store {}: {detail} (a bug in ferry; the file is not damaged by it)", path.display())]
    Bug { path: PathBuf, detail: String },
}

thread_local! {
    /// Set while [`guarded`] runs: a panic then is a damaged file, reported as an error, so the
    /// panic hook must not print a crash report for it.
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wraps the panic hook once so that panics inside [`guarded`] stay quiet on that thread only.
fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

/// Runs redb calls that may panic on a damaged file; such a panic becomes [`StoreError::Damaged`].
pub fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T, StoreError> {
    install_quiet_hook();
    let was = QUIET_PANICS.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(was));
    result.map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "internal error".into());
        StoreError::Damaged { path: path.into(), detail: format!("{what} failed: {detail}") }
    })
}

/// Anything a store call can fail with, read as a [`StoreError`].
pub(crate) trait Failure {
    fn into_store_error(self, path: &Path) -> StoreError;
}

macro_rules! redb_failure {
    ($($ty:ty),*) => {$(
        impl Failure for $ty {
            fn into_store_error(self, path: &Path) -> StoreError {
                from_redb(path, self.into())
            }
        }
    )*};
}
redb_failure!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

/// A record that does not decode, or a state that ferry never writes: the file is not what
/// ferry wrote.
impl Failure for records::RecordError {
    fn into_store_error(self, path: &Path) -> StoreError {
        StoreError::Damaged { path: path.into(), detail: self.to_string() }
    }
}

impl Failure for String {
    fn into_store_error(self, path: &Path) -> StoreError {
        StoreError::Damaged { path: path.into(), detail: self }
    }
}

/// What a store call's failure means for the operator: what the disk said is an I/O error (a
/// full disk is not a damaged file), a file that is not what ferry wrote is damage, and redb
/// refusing what ferry should never ask is a bug.
pub(crate) fn failure(path: &Path, e: impl Failure) -> StoreError {
    e.into_store_error(path)
}

fn from_redb(path: &Path, e: redb::Error) -> StoreError {
    let path = path.to_path_buf();
    match e {
        redb::Error::Io(source) => StoreError::Io { path, source },
        redb::Error::PreviousIo => StoreError::Io {
            path,
            source: std::io::Error::other(
                "an earlier write to the file failed (see above); nothing after it was written",
            ),
        },
        redb::Error::Backend(source) => StoreError::Io { path, source: std::io::Error::other(source) },
        e @ (redb::Error::Corrupted(_)
        | redb::Error::TableTypeMismatch { .. }
        | redb::Error::TypeDefinitionChanged { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TableIsNotMultimap(_)
        | redb::Error::UpgradeRequired(_)) => StoreError::Damaged { path, detail: e.to_string() },
        other => StoreError::Bug { path, detail: other.to_string() },
    }
}

pub(super) fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.into(), holder: None },
        DatabaseError::RepairAborted => StoreError::NeedsRecovery { path: path.into() },
        DatabaseError::UpgradeRequired(v) => StoreError::NotFerryStore {
            path: path.into(),
            detail: format!("a redb file of an old format ({v}) that ferry never wrote"),
        },
        DatabaseError::Storage(redb::StorageError::Io(source)) => {
            StoreError::Io { path: path.into(), source }
        }
        other => failure(path, other),
    }
}
