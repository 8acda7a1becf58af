//! The attachment blob store: content-addressed by sha256, a local directory by default.
//!
//! A blob is written to a temporary file, fsynced, then renamed into place, so a crash
//! never leaves a half-written blob under its final name; writing the same bytes twice is a
//! no-op. Keys are `sha256/ab/<hex>` (one level of 256 directories, as git does: a second
//! level made more directories than files for mailboxes of thousands of messages, each one an
//! inode and a block to allocate and flush), never derived from provider filenames, so a
//! hostile filename cannot reach the file system. Keys are stored with the attachments, so
//! blobs written under the earlier `sha256/ab/cd/<hex>` layout stay readable.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid blob key")]
    InvalidKey,
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// Bytes already written, durably, under their content address: what a row may refer to.
///
/// Only [`BlobStore::prepare`] makes one (the fields are private), after the bytes and their
/// name are flushed; ingest puts it in the attachment it was written for and the store
/// reads the row's key, sha256 and size from it. So a row can only name bytes that exist,
/// whatever order callers do things in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedBlob {
    key: String,
    sha256: String,
    size: u64,
}

impl PreparedBlob {
    /// The storage key (`sha256/ab/<hex>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Hex sha256 of the bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Length of the bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl BlobStore {
    /// Opens (creating) the store directory.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join("tmp")).await?;
        Ok(Self { root })
    }

    /// Hex sha256 of some bytes.
    pub fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Stores bytes; returns `(key, sha256)`. The file work runs in one blocking task
    /// (not one per file operation): ingest stores many small parts.
    pub async fn put(&self, bytes: &[u8]) -> Result<(String, String), BlobError> {
        let sha = Self::sha256_hex(bytes);
        let key = key_for(&sha);
        let path = self.root.join(&key);
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || write_durably(&path, &tmp, &bytes))
            .await
            .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))??;
        Ok((key, sha))
    }

    /// Stores several blobs in one blocking task; returns `(key, sha256)` for each, in order.
    ///
    /// The files are written under temporary names, flushed with one `syncfs` (Linux; an
    /// fsync per file elsewhere), renamed into place and flushed again: as durable as
    /// [`Self::put`], with two flushes per batch instead of two per file.
    pub async fn put_many(&self, items: Vec<Vec<u8>>) -> Result<Vec<(String, String)>, BlobError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || write_many(&root, &items))
            .await
            .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))?
            .map_err(BlobError::Io)
    }

    /// Writes several blobs as [`Self::put_many`] does and hands out the proof of each, in
    /// order: the first half of a prepare (here) → commit (the transaction that stores rows
    /// referring to them) step.
    pub async fn prepare(&self, items: Vec<Vec<u8>>) -> Result<Vec<PreparedBlob>, BlobError> {
        let sizes: Vec<u64> = items.iter().map(|b| b.len() as u64).collect();
        let stored = self.put_many(items).await?;
        Ok(stored
            .into_iter()
            .zip(sizes)
            .map(|((key, sha256), size)| PreparedBlob { key, sha256, size })
            .collect())
    }

    /// Reads a blob by key.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        Ok(tokio::fs::read(self.path_of(key)?).await?)
    }

    /// Deletes a blob's bytes; false if there were none. Blobs are shared by content: the
    /// caller first makes sure no attachment names the key any more.
    pub async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        let valid = key.starts_with("sha256/")
            && key.bytes().all(|b| {
                b.is_ascii_hexdigit() || b == b'/' || b.is_ascii_lowercase() || b.is_ascii_digit()
            })
            && !key.contains("..");
        if !valid {
            return Err(BlobError::InvalidKey);
        }
        Ok(self.root.join(Path::new(key)))
    }
}

/// The key of a blob with this (hex) sha256.
fn key_for(sha: &str) -> String {
    format!("sha256/{}/{sha}", &sha[0..2])
}

fn write_many(root: &Path, items: &[Vec<u8>]) -> std::io::Result<Vec<(String, String)>> {
    use std::io::Write;
    let mut keys = Vec::with_capacity(items.len());
    let mut pending: Vec<(PathBuf, PathBuf)> = Vec::new();
    for bytes in items {
        let sha = BlobStore::sha256_hex(bytes);
        let key = key_for(&sha);
        let path = root.join(&key);
        if !path.try_exists()? && !pending.iter().any(|(_, p)| *p == path) {
            let tmp = root.join("tmp").join(uuid::Uuid::new_v4().to_string());
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            if !cfg!(target_os = "linux") {
                f.sync_all()?;
            }
            pending.push((tmp, path));
        }
        keys.push((key, sha));
    }
    if pending.is_empty() {
        return Ok(keys);
    }
    // Contents durable before any file gets its final name...
    flush_filesystem(root)?;
    for (tmp, path) in &pending {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::rename(tmp, path)?;
    }
    // ...and the names durable before the caller's transaction refers to them.
    flush_filesystem(root)?;
    if !cfg!(target_os = "linux") {
        for (_, path) in &pending {
            if let Some(dir) = path.parent()
                && let Ok(d) = std::fs::File::open(dir)
            {
                let _ = d.sync_all();
            }
        }
    }
    Ok(keys)
}

/// Flushes the file system holding `root` (Linux `syncfs`); elsewhere a no-op, the callers
/// fsync file by file.
fn flush_filesystem(root: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let dir = std::fs::File::open(root)?;
        // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = root;
    Ok(())
}

/// Writes `bytes` to `path` unless it exists: to `tmp`, fsynced, renamed into place, the
/// directory fsynced, so a crash never leaves a half-written blob under its final name.
fn write_durably(path: &Path, tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if path.try_exists()? {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::File::create(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent() {
        // Best effort: not every platform can fsync a directory.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn many_blobs_at_once_are_stored_and_deduplicated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).await.expect("open");
        let (single, _) = store.put(b"one").await.expect("put");
        let keys = store
            .put_many(vec![b"one".to_vec(), b"two".to_vec(), b"two".to_vec()])
            .await
            .expect("put many");
        assert_eq!(keys[0].0, single);
        assert_eq!(keys[1], keys[2]);
        assert_eq!(store.get(&keys[1].0).await.expect("get"), b"two");
        let leftovers = std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0, "no temporary file left behind");
    }

    #[tokio::test]
    async fn deleted_blobs_are_gone_and_deleting_twice_is_harmless() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).await.expect("open");
        let (key, _) = store.put(b"erase me").await.expect("put");
        assert!(store.delete(&key).await.expect("delete"));
        assert!(store.get(&key).await.is_err());
        assert!(!store.delete(&key).await.expect("delete again"));
        assert!(matches!(
            store.delete("../etc/passwd").await,
            Err(BlobError::InvalidKey)
        ));
    }

    #[tokio::test]
    async fn prepared_blobs_name_bytes_that_are_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).await.expect("open");
        let prepared = store
            .prepare(vec![b"hello".to_vec(), b"hi".to_vec()])
            .await
            .expect("prepare");
        assert_eq!(prepared.len(), 2);
        assert_eq!(prepared[0].size(), 5);
        assert_eq!(prepared[0].sha256(), BlobStore::sha256_hex(b"hello"));
        assert_eq!(store.get(prepared[0].key()).await.expect("get"), b"hello");
        assert_eq!(store.get(prepared[1].key()).await.expect("get"), b"hi");
    }

    #[tokio::test]
    async fn blobs_of_the_two_level_layout_stay_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).await.expect("open");
        let sha = BlobStore::sha256_hex(b"old");
        let old_key = format!("sha256/{}/{}/{sha}", &sha[0..2], &sha[2..4]);
        let old_path = dir.path().join(&old_key);
        std::fs::create_dir_all(old_path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&old_path, b"old").expect("write");
        assert_eq!(store.get(&old_key).await.expect("get"), b"old");
        let (new_key, _) = store.put(b"new").await.expect("put");
        assert_eq!(new_key.matches('/').count(), 2, "{new_key}");
    }

    #[tokio::test]
    async fn content_addressed_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).await.expect("open");
        let (k1, sha) = store.put(b"hello").await.expect("put");
        let (k2, _) = store.put(b"hello").await.expect("put again");
        assert_eq!(k1, k2);
        assert_eq!(
            sha,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.get(&k1).await.expect("get"), b"hello");
        assert!(matches!(
            store.get("../etc/passwd").await,
            Err(BlobError::InvalidKey)
        ));
        assert!(matches!(
            store.get("sha256/../../x").await,
            Err(BlobError::InvalidKey)
        ));
    }
}
