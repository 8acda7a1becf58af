//! The attachment blob store: content-addressed by sha256, a local directory by default.
//!
//! A blob is written to a temporary file, fsynced, then renamed into place, so a crash
//! never leaves a half-written blob under its final name; writing the same bytes twice is a
//! no-op. Keys are `sha256/ab/cd/<hex>`, never derived from provider filenames, so a hostile
//! filename cannot reach the file system.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

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

    /// Stores bytes; returns `(key, sha256)`.
    pub async fn put(&self, bytes: &[u8]) -> Result<(String, String), BlobError> {
        let sha = Self::sha256_hex(bytes);
        let key = format!("sha256/{}/{}/{}", &sha[0..2], &sha[2..4], sha);
        let path = self.root.join(&key);
        if tokio::fs::try_exists(&path).await? {
            return Ok((key, sha));
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(bytes).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, &path).await?;
        if let Some(dir) = path.parent() {
            sync_dir(dir).await;
        }
        Ok((key, sha))
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

/// Makes a rename durable (best effort: not every platform can fsync a directory).
async fn sync_dir(dir: &Path) {
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
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
