//! Where the mail corpora live: `fixtures/corpus/` at the repository root, checked in, so
//! the corpus tests always run. A missing corpus is a broken checkout, not a reason to pass
//! quietly: it panics with the path it looked at.

use std::path::{Path, PathBuf};

/// `fixtures/corpus/` of this repository; panics if it is not there.
pub fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus");
    assert!(
        dir.is_dir(),
        "the mail corpus is missing at {}: it is part of the repository (fixtures/corpus/); \
         restore it from git",
        dir.display()
    );
    dir
}
