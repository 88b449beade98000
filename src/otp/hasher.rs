use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::OtpCode;

type HmacSha256 = Hmac<Sha256>;

const KEY_LEN: usize = 32;
/// File name of the key inside the state folder.
pub const KEY_FILE: &str = "secret.key";
/// Name of the systemd credential (`LoadCredential=sms2fa-key:...`).
pub const CREDENTIAL_NAME: &str = "sms2fa-key";

/// The secret that keys code hashes. It lives outside the database, so a copy of the
/// database alone does not allow testing guesses offline.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the secret key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the secret key {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret key {path} must hold exactly {KEY_LEN} bytes, it holds {len}")]
    BadLength { path: PathBuf, len: usize },
    #[error("the secret key {path} is readable by others (mode {mode:o}); run chmod 600")]
    TooOpen { path: PathBuf, mode: u32 },
}

impl SecretKey {
    /// The systemd credential if `$CREDENTIALS_DIRECTORY` provides one, else
    /// `<state_dir>/secret.key`, created (0600, random) on first start.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, KeyError> {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(CREDENTIAL_NAME);
            if path.exists() {
                return Self::read(&path, false);
            }
        }
        let path = state_dir.join(KEY_FILE);
        match Self::read(&path, true) {
            Err(KeyError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Self::create(&path)
            }
            other => other,
        }
    }

    fn read(path: &Path, check_mode: bool) -> Result<Self, KeyError> {
        let read_err = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        if check_mode {
            let mode = fs::metadata(path).map_err(read_err)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::TooOpen {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let bytes = fs::read(path).map_err(read_err)?;
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadLength {
                path: path.to_owned(),
                len: bytes.len(),
            })?;
        Ok(Self(key))
    }

    fn create(path: &Path) -> Result<Self, KeyError> {
        let create_err = |source| KeyError::Create {
            path: path.to_owned(),
            source,
        };
        let mut key = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        // create_new: never overwrite a key another process just wrote; mode 0600 from
        // the first byte on, so the key is never briefly world-readable.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(create_err)?;
        file.write_all(&key).map_err(create_err)?;
        file.sync_all().map_err(create_err)?;
        Ok(Self(key))
    }

    /// A key from bytes (tests, benchmarks).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A key for one purpose alone, named by `label` (domain separation: the key that
    /// hashes codes is never a cipher key, nor the one that digests numbers).
    pub(crate) fn derive(&self, label: &[u8]) -> [u8; KEY_LEN] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// HMAC-SHA256 of a code, bound to the (account, service, number) it was issued for,
/// so a stored hash is worthless under any other key.
#[derive(Debug, Clone)]
pub struct CodeHasher {
    key: SecretKey,
}

impl CodeHasher {
    pub fn new(key: SecretKey) -> Self {
        Self { key }
    }

    pub fn hash(&self, scope: &[u8], code: &str) -> [u8; 32] {
        // new_from_slice accepts keys of any length; ours is always 32 bytes.
        let mut mac =
            HmacSha256::new_from_slice(self.key.bytes()).expect("HMAC takes any key length");
        mac.update(&(scope.len() as u64).to_be_bytes());
        mac.update(scope);
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn hash_code(&self, scope: &[u8], code: &OtpCode) -> [u8; 32] {
        self.hash(scope, code.expose())
    }

    /// Constant-time: the time taken does not depend on where the digests differ.
    pub fn matches(&self, scope: &[u8], candidate: &str, stored: &[u8; 32]) -> bool {
        self.hash(scope, candidate).ct_eq(stored).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_once_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = SecretKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.bytes(), second.bytes());
    }

    #[test]
    fn refuses_a_world_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        SecretKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SecretKey::load_or_create(dir.path()),
            Err(KeyError::TooOpen { .. })
        ));
    }

    #[test]
    fn hash_depends_on_scope_and_code() {
        let hasher = CodeHasher::new(SecretKey::from_bytes([7; 32]));
        let stored = hasher.hash(b"acct/svc/+1555", "123456");
        assert!(hasher.matches(b"acct/svc/+1555", "123456", &stored));
        assert!(!hasher.matches(b"acct/svc/+1555", "123457", &stored));
        assert!(!hasher.matches(b"other/svc/+1555", "123456", &stored));
        let other_key = CodeHasher::new(SecretKey::from_bytes([8; 32]));
        assert!(!other_key.matches(b"acct/svc/+1555", "123456", &stored));
    }
}
