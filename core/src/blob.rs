//! The attachment blob store: content-addressed by sha256, a local directory by default.
//!
//! A blob is written to a temporary file, fsynced, then renamed into place, so a crash
//! never leaves a half-written blob under its final name; writing the same bytes twice is a
//! no-op. Keys are `sha256/ab/cd/<hex>`, never derived from provider filenames, so a hostile
//! filename cannot reach the file system.

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
        let key = format!("sha256/{}/{}/{}", &sha[0..2], &sha[2..4], sha);
        let path = self.root.join(&key);
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || write_durably(&path, &tmp, &bytes))
            .await
            .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))??;
        Ok((key, sha))
    }

    /// Stores several blobs in one blocking task; returns `(key, sha256)` for each, in order.
    pub async fn put_many(&self, items: Vec<Vec<u8>>) -> Result<Vec<(String, String)>, BlobError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            items
                .iter()
                .map(|bytes| {
                    let sha = Self::sha256_hex(bytes);
                    let key = format!("sha256/{}/{}/{}", &sha[0..2], &sha[2..4], sha);
                    let tmp = root.join("tmp").join(uuid::Uuid::new_v4().to_string());
                    write_durably(&root.join(&key), &tmp, bytes)?;
                    Ok((key, sha))
                })
                .collect::<Result<Vec<_>, std::io::Error>>()
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))?
        .map_err(BlobError::Io)
    }

    /// Reads a blob by key.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        Ok(tokio::fs::read(self.path_of(key)?).await?)
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
