//! Reading a store that a killed writer left unclean. redb's read-only open refuses such a file
//! (only a writer repairs it, and a reader must never write), so a reader copies it to a private
//! temporary file, lets redb repair the copy, and reads that: the original is never opened for
//! writing, and the copy goes when the reader does. The copy holds what the last committed write
//! transaction held, which is what the next writer will find too.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use redb::ReadOnlyDatabase;

use super::error::open_error;
use super::{Meta, StoreError, builder, examine, guarded};

/// A repaired copy of an unclean store in the temporary directory, removed on drop.
#[derive(Debug)]
pub(super) struct RecoveredCopy {
    path: PathBuf,
}

impl Drop for RecoveredCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copies `path` to a new private file in the temporary directory, repairs the copy with a
/// writer's open, and opens the copy read-only. Errors name the original file.
pub(super) fn open_copy(path: &Path) -> Result<(RecoveredCopy, ReadOnlyDatabase, Meta), StoreError> {
    static COPIES: AtomicU32 = AtomicU32::new(0);
    let io = |source| StoreError::Io { path: path.into(), source };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "store".into());
    let copy_path = std::env::temp_dir().join(format!(
        "ferry-recovered-{}-{}-{name}",
        std::process::id(),
        COPIES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // What the store holds is the operator's: the copy is readable by its owner only.
        options.mode(0o600);
    }
    let mut target = options.open(&copy_path).map_err(io)?;
    let copy = RecoveredCopy { path: copy_path };
    let mut source = File::open(path).map_err(io)?;
    std::io::copy(&mut source, &mut target).map_err(io)?;
    target.sync_all().map_err(io)?;
    drop(target);
    let repaired = guarded(path, "recovering a copy", || builder().open(&copy.path))?
        .map_err(|e| open_error(path, e))?;
    drop(repaired);
    let (db, meta) = examine(&copy.path).map_err(|e| match e {
        // The copy's own path means nothing to the operator.
        StoreError::Damaged { detail, .. } => StoreError::Damaged { path: path.into(), detail },
        other => other,
    })?;
    Ok((copy, db, meta))
}
