//! Upgrading a store to this ferry's schema: ordered vN→vN+1 steps, all run in one write
//! transaction after a backup copy of the file is written next to it. A failing step aborts the
//! transaction, so the file stays at its old version (and the backup is there either way).

use std::path::{Path, PathBuf};

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::records::{self, Record};
use super::tables::{SCHEMA_VERSION, meta};
use super::{Holder, Store, StoreError, WriteTx, inspect_meta, open_writer_checked};

/// One schema upgrade, from `from` to `from + 1`.
pub struct Step {
    pub from: u32,
    pub description: &'static str,
    pub run: fn(&mut WriteTx<'_>) -> Result<(), StoreError>,
}

mod v1_to_v2;
mod v2_to_v3;
mod v3_to_v4;
mod v4_to_v5;

/// The steps of this ferry, one per schema change, each with a `tests/fixtures/store-vN.redb`
/// fixture of the version it upgrades.
pub const STEPS: &[Step] = &[
    Step { from: 1, description: v1_to_v2::DESCRIPTION, run: v1_to_v2::run },
    Step { from: 2, description: v2_to_v3::DESCRIPTION, run: v2_to_v3::run },
    Step { from: 3, description: v3_to_v4::DESCRIPTION, run: v3_to_v4::run },
    Step { from: 4, description: v4_to_v5::DESCRIPTION, run: v4_to_v5::run },
];

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub path: PathBuf,
    pub from: u32,
    pub to: u32,
    /// `(from, to, what it does)`, in order.
    pub steps: Vec<(u32, u32, &'static str)>,
    /// Where the backup copy goes; `None` when there is nothing to do.
    pub backup: Option<PathBuf>,
}

impl Plan {
    pub fn is_current(&self) -> bool {
        self.from == self.to
    }
}

/// What upgrading `path` to `target` would do, with `steps`. Reads the file only.
pub fn plan(path: &Path, steps: &[Step], target: u32) -> Result<Plan, StoreError> {
    // A file needing recovery is refused untouched: it may be a killed writer's file, which the
    // next writer recovers, or a damaged one, which nothing should write to.
    let from = inspect_meta(path)?.schema_version;
    if from > target {
        return Err(StoreError::Newer { path: path.into(), found: from, supported: target });
    }
    let mut chain = Vec::new();
    for version in from..target {
        let step = steps.iter().find(|s| s.from == version).ok_or_else(|| StoreError::Damaged {
            path: path.into(),
            detail: format!("this ferry has no migration from schema v{version}"),
        })?;
        chain.push((version, version + 1, step.description));
    }
    let backup = (from < target).then(|| backup_path(path, from));
    Ok(Plan { path: path.into(), from, to: target, steps: chain, backup })
}

/// `<file>.v{from}.bak`, or `.v{from}.bak.1`, `.2`, … when earlier backups exist: never overwritten.
fn backup_path(path: &Path, from: u32) -> PathBuf {
    let base = format!("{}.v{from}.bak", path.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    candidate
}

/// Upgrades `path` to this ferry's schema with [`STEPS`].
pub fn run(path: &Path) -> Result<Plan, StoreError> {
    run_with(path, STEPS, SCHEMA_VERSION)
}

/// Upgrades `path` to `target` with `steps` (tests inject their own). Returns the plan carried out.
pub fn run_with(path: &Path, steps: &[Step], target: u32) -> Result<Plan, StoreError> {
    let plan = plan(path, steps, target)?;
    let Some(backup) = plan.backup.clone() else {
        return Ok(plan);
    };
    // Hold the write lock first, so that nobody writes between the backup and the upgrade. No
    // transaction is open while copying, so the copy is consistent; like any file whose writer
    // stopped, it is recovered when first opened for writing.
    let store = Store { db: open_writer_checked(path)?, path: path.into() };
    std::fs::copy(path, &backup).map_err(|source| StoreError::Io { path: backup.clone(), source })?;
    store.write(|tx| {
        for version in plan.from..plan.to {
            if let Some(step) = steps.iter().find(|s| s.from == version) {
                (step.run)(tx)?;
            }
        }
        tx.set_meta(meta::SCHEMA_VERSION, &plan.to.to_string())?;
        tx.set_meta(
            meta::MIGRATED_BY,
            &format!("ferry {} at unix time {}", env!("CARGO_PKG_VERSION"), super::now()),
        )?;
        tx.set_meta(meta::HOLDER, &serde_json::to_string(&Holder::current()).unwrap_or_default())
    })?;
    Ok(plan)
}

/// Rewrites every record of a table from its `old_version` layout `Old` to `New`, in chunks so that memory
/// stays bounded on a large file. Records already at `New::VERSION` are left alone.
fn rewrite<const N: usize, Old: DeserializeOwned, New: Record>(
    tx: &mut WriteTx<'_>,
    old_version: u8,
    def: TableDefinition<[u8; N], &[u8]>,
    convert: impl Fn(Old) -> New,
) -> Result<(), StoreError> {
    const CHUNK: usize = 10_000;
    let path = tx.path().to_path_buf();
    let err = |e: &dyn std::fmt::Display| StoreError::Damaged { path: path.clone(), detail: e.to_string() };
    let mut table = tx.raw().open_table(def).map_err(|e| err(&e))?;
    let mut after: Option<[u8; N]> = None;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        {
            let range = match after {
                Some(k) => table.range::<[u8; N]>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
                None => table.range::<[u8; N]>(..),
            }
            .map_err(|e| err(&e))?;
            for entry in range.take(CHUNK) {
                let (key, value) = entry.map_err(|e| err(&e))?;
                chunk.push((key.value(), value.value().to_vec()));
            }
        }
        let Some(&(last, _)) = chunk.last() else { return Ok(()) };
        for (key, bytes) in chunk {
            match bytes.split_first() {
                Some((v, body)) if *v == old_version => {
                    let old: Old = postcard::from_bytes(body).map_err(|e| {
                        err(&format!("a v{old_version} {} record does not decode: {e}", New::NAME))
                    })?;
                    table.insert(key, records::encode(&convert(old)).as_slice()).map_err(|e| err(&e))?;
                }
                Some((v, _)) if *v == New::VERSION => {}
                _ => return Err(err(&format!("a {} record has an unknown version", New::NAME))),
            }
        }
        after = Some(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ReadStore;
    use crate::store::records::Cursor;

    fn add_cursor(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
        let id = tx.source_id("added-by-step")?;
        tx.put_cursor(
            crate::store::keys::CursorKey { source: id },
            &Cursor { first: 42, next: 42, last_hash: None, updated_at: 0, stopped: None },
        )
    }

    fn fail(_: &mut WriteTx<'_>) -> Result<(), StoreError> {
        Err(StoreError::Damaged { path: "x".into(), detail: "step failed on purpose".into() })
    }

    #[test]
    fn a_step_runs_once_after_a_backup_and_bumps_the_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        drop(Store::create_or_open(&path, None).expect("create"));
        let steps = [Step { from: SCHEMA_VERSION, description: "add a cursor", run: add_cursor }];

        let plan = run_with(&path, &steps, SCHEMA_VERSION + 1).expect("migrate");
        assert_eq!((plan.from, plan.to), (SCHEMA_VERSION, SCHEMA_VERSION + 1));
        let backup = plan.backup.expect("a backup");
        assert_eq!(backup, dir.path().join(format!("s.redb.v{SCHEMA_VERSION}.bak")));
        assert_eq!(inspect_meta(&path).expect("meta").schema_version, SCHEMA_VERSION + 1);
        // The backup was copied under the write lock, so it opens like a file whose writer
        // stopped: a writer open recovers it, and it holds the old version without the step's rows.
        drop(open_writer_checked(&backup).expect("the backup opens"));
        assert_eq!(inspect_meta(&backup).expect("backup meta").schema_version, SCHEMA_VERSION);

        // Running again finds nothing to do, and a later backup never overwrites an earlier one.
        assert!(run_with(&path, &steps, SCHEMA_VERSION + 1).expect("again").is_current());
        assert_eq!(
            backup_path(&path, SCHEMA_VERSION),
            dir.path().join(format!("s.redb.v{SCHEMA_VERSION}.bak.1"))
        );
    }

    #[test]
    fn a_failing_step_leaves_the_old_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        drop(Store::create_or_open(&path, None).expect("create"));
        let steps = [Step { from: SCHEMA_VERSION, description: "fails", run: fail }];
        assert!(run_with(&path, &steps, SCHEMA_VERSION + 1).is_err());
        assert_eq!(inspect_meta(&path).expect("meta").schema_version, SCHEMA_VERSION);
        ReadStore::open(&path).expect("still a usable current store");
    }

    #[test]
    fn a_missing_step_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        drop(Store::create_or_open(&path, None).expect("create"));
        let before = std::fs::read(&path).expect("read");
        assert!(run_with(&path, &[], SCHEMA_VERSION + 1).is_err());
        assert_eq!(std::fs::read(&path).expect("read"), before);
        assert!(!dir.path().join(format!("s.redb.v{SCHEMA_VERSION}.bak")).exists());
    }
}
