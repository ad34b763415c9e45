//! Reading `/etc/iscsi-ha/iscsi-ha.toml` and its secrets file from disk, with the checks the
//! core cannot do: a file that holds a password must not be readable by group or others.

use crate::small_file::{self, SmallFileError, CONFIG_FILE_CAP};
use iscsi_ha_core::config::{
    key_position, secrets_text_holds_secrets, Config, ConfigErrors, KeyPath, Source,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read (or is not a regular file of a sane size).
    #[error(transparent)]
    Read(#[from] SmallFileError),
    /// The file's permissions could not be read.
    #[error("cannot inspect {path}: {source}")]
    Inspect {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holding a secret is readable by group or others.
    #[error("{path} holds a password but its mode is {mode:04o} (readable by group or others); fix it with: chmod 600 {path}")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secrets file that `[secrets] file` names cannot be read.
    #[error("{at}: secrets.file: {source}; create it (mode 0600) or change secrets.file")]
    Secrets {
        /// `config.toml:line:column`, where the key is.
        at: String,
        /// Why it cannot be read (names the secrets file).
        source: SmallFileError,
    },
    /// The configuration is invalid.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Reads, checks and parses the configuration at `path` (and its secrets file, if it names one).
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = read(path)?;
    let origin = path.display().to_string();
    // Parse once without secrets to learn whether a secrets file is named.
    let secrets_path = secrets_path(&text, path);
    let secrets_text = match &secrets_path {
        Some(p) => {
            let t = small_file::read(p, CONFIG_FILE_CAP).map_err(|source| {
                let at = match key_position(&text, &KeyPath::keys(&["secrets", "file"])) {
                    Some((line, column)) => format!("{origin}:{line}:{column}"),
                    None => origin.clone(),
                };
                LoadError::Secrets { at, source }
            })?;
            if secrets_text_holds_secrets(&t) {
                check_private(p)?;
            }
            Some(t)
        }
        None => None,
    };
    let secrets_origin = secrets_path.as_ref().map(|p| p.display().to_string());
    let secrets = match (&secrets_text, &secrets_origin) {
        (Some(text), Some(origin)) => Some(Source { text, origin }),
        _ => None,
    };
    let config = Config::parse(
        Source {
            text: &text,
            origin: &origin,
        },
        secrets,
    )
    .map_err(LoadError::Invalid)?;
    let backend = crate::backend::check(&config, &text, &origin);
    if !backend.is_empty() {
        return Err(LoadError::Invalid(ConfigErrors(backend)));
    }
    if config.holds_inline_secrets() {
        check_private(path)?;
    }
    Ok(config)
}

fn read(path: &Path) -> Result<String, LoadError> {
    Ok(small_file::read(path, CONFIG_FILE_CAP)?)
}

/// The secrets file named by `[secrets] file`, relative paths taken from the config's directory.
fn secrets_path(text: &str, config_path: &Path) -> Option<PathBuf> {
    let value: toml::Table = text.parse().ok()?;
    let file = value.get("secrets")?.get("file")?.as_str()?;
    let p = Path::new(file);
    Some(if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_path.parent().unwrap_or(Path::new(".")).join(p)
    })
}

fn check_private(path: &Path) -> Result<(), LoadError> {
    let meta = fs::metadata(path).map_err(|source| LoadError::Inspect {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(LoadError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = include_str!("../../fixtures/config/good/minimal.toml");

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_world_readable_config_without_secrets_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c.toml", MINIMAL, 0o644);
        assert!(load(&p).is_ok());
    }

    #[test]
    fn a_config_with_a_password_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let text = MINIMAL.replace(
            "[vip]",
            "[[target.access.incoming]]\nuser = \"u\"\npassword = \"pw-123\"\n\n[vip]",
        );
        let p = write(dir.path(), "c.toml", &text, 0o640);
        let err = load(&p).unwrap_err().to_string();
        assert!(
            err.contains("mode is 0640") && err.contains("chmod 600"),
            "{err}"
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&p).is_ok());
    }

    #[test]
    fn the_secrets_file_is_read_relative_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let text = MINIMAL.replace("[vip]", "[[target.access.incoming]]\nuser = \"u\"\n\n[vip]")
            + "\n[secrets]\nfile = \"secrets.toml\"\n";
        let p = write(dir.path(), "c.toml", &text, 0o644);
        write(
            dir.path(),
            "secrets.toml",
            "[chap]\nu = \"pw-456\"\n",
            0o644,
        );
        assert!(matches!(load(&p), Err(LoadError::TooOpen { .. })));
        fs::set_permissions(
            dir.path().join("secrets.toml"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let config = load(&p).unwrap();
        assert_eq!(config.target.access.incoming[0].password.expose(), "pw-456");
    }

    #[test]
    fn a_missing_secrets_file_names_the_key_that_points_at_it() {
        let dir = tempfile::tempdir().unwrap();
        let text = MINIMAL.to_string() + "\n[secrets]\nfile = \"nowhere.toml\"\n";
        let p = write(dir.path(), "c.toml", &text, 0o600);
        let err = load(&p).unwrap_err().to_string();
        let line = text.lines().count();
        assert_eq!(
            err,
            format!(
                "{c}:{line}:8: secrets.file: cannot read {s}: No such file or directory (os error 2); create it (mode 0600) or change secrets.file",
                c = p.display(),
                s = dir.path().join("nowhere.toml").display()
            )
        );
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let err = load(Path::new("/nonexistent/iscsi-ha.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read /nonexistent/iscsi-ha.toml"),
            "{err}"
        );
    }
}
