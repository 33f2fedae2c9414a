//! The main secret and the keys derived from it: the file that keeps a
//! generated secret beside the SQLite database (`PATH.secret`, mode 0600), and
//! the keyring that seals stored secrets.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use herald_core::seal::Keyring;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use super::SecretSource;

/// The keyring from `HERALD_ENCRYPTION_KEY` (or the main secret) and
/// `HERALD_PREVIOUS_ENCRYPTION_KEYS`.
pub fn keyring(
    current: Option<&str>,
    previous: Option<&str>,
    secret: &SecretString,
) -> anyhow::Result<Keyring> {
    let current = match current.map(str::trim).filter(|k| !k.is_empty()) {
        Some(key) if key.len() < 16 => {
            bail!("HERALD_ENCRYPTION_KEY must be at least 16 characters long")
        }
        Some(key) => key.to_string(),
        None => secret.expose_secret().to_string(),
    };
    let previous: Vec<&str> = previous
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    let previous: Vec<&[u8]> = previous.iter().map(|k| k.as_bytes()).collect();
    Ok(Keyring::new(current.as_bytes(), &previous))
}

/// The file that keeps the generated main secret: `PATH.secret` beside the
/// SQLite database.
pub(super) fn secret_path(database_url: &str) -> anyhow::Result<PathBuf> {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .with_context(|| {
            format!(
                "cannot keep a generated secret beside {}: set HERALD_SECRET",
                herald_store::redact_url(database_url)
            )
        })?;
    let path = path.split('?').next().unwrap_or(path);
    Ok(PathBuf::from(format!("{path}.secret")))
}

pub(super) fn load_or_generate_secret(path: &Path) -> anyhow::Result<(SecretString, SecretSource)> {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().len() >= 16 => {
            return Ok((
                SecretString::from(s.trim().to_string()),
                SecretSource::File(path.to_path_buf()),
            ))
        }
        Ok(_) => bail!("{} is too short to be Herald's secret", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    Ok((
        SecretString::from(secret),
        SecretSource::Generated(path.to_path_buf()),
    ))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_lives_beside_the_database() {
        let cases = [
            ("sqlite://herald.db", "herald.db.secret"),
            (
                "sqlite:///var/lib/herald/h.db",
                "/var/lib/herald/h.db.secret",
            ),
            ("sqlite://data/h.db?mode=rwc", "data/h.db.secret"),
        ];
        for (url, want) in cases {
            assert_eq!(secret_path(url).unwrap(), PathBuf::from(want), "{url}");
        }
        assert!(secret_path("postgres://h/db").is_err());
    }

    #[test]
    fn generated_secret_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/h.db.secret");
        let (first, source) = load_or_generate_secret(&path).unwrap();
        assert!(matches!(source, SecretSource::Generated(_)));
        let (second, source) = load_or_generate_secret(&path).unwrap();
        assert!(matches!(source, SecretSource::File(_)));
        assert_eq!(first.expose_secret(), second.expose_secret());
    }
}
