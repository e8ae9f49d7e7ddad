//! Where Tether keeps its files.
//!
//! When `TETHER_HOME` is set, everything lives under it (`config/`, `state/`, `data/`): tests
//! and several identities on one machine use that. Otherwise the platform's directories
//! (XDG on Linux) from the `directories` crate.

use std::path::{Path, PathBuf};

/// The three places Tether writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// User settings: `config.toml`, user themes.
    pub config: PathBuf,
    /// Per-machine state: logins, known hubs, logs.
    pub state: PathBuf,
    /// Bulky or durable data: the hub's database, the agent's identity.
    pub data: PathBuf,
}

impl Paths {
    /// Resolve from the environment.
    pub fn from_env() -> Self {
        if let Some(home) = std::env::var_os("TETHER_HOME").filter(|h| !h.is_empty()) {
            return Self::under(Path::new(&home));
        }
        match directories::ProjectDirs::from("", "", "tether") {
            Some(dirs) => Self {
                config: dirs.config_dir().to_path_buf(),
                state: dirs
                    .state_dir()
                    .unwrap_or_else(|| dirs.data_local_dir())
                    .to_path_buf(),
                data: dirs.data_dir().to_path_buf(),
            },
            // No home directory at all (a bare container): fall back to the working directory.
            None => Self::under(Path::new(".tether")),
        }
    }

    /// Everything under one directory, as `TETHER_HOME` does.
    pub fn under(home: &Path) -> Self {
        Self {
            config: home.join("config"),
            state: home.join("state"),
            data: home.join("data"),
        }
    }

    pub fn logs(&self) -> PathBuf {
        self.state.join("logs")
    }

    pub fn hub_data(&self) -> PathBuf {
        self.data.join("hub")
    }

    pub fn agent_data(&self) -> PathBuf {
        self.data.join("agent")
    }
}

/// Create a directory (and parents) readable only by the owner.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Write a file readable only by the owner, atomically (write to a temporary name, then rename).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tether_home_puts_everything_under_one_dir() {
        let p = Paths::under(Path::new("/x"));
        assert_eq!(p.config, PathBuf::from("/x/config"));
        assert_eq!(p.state, PathBuf::from("/x/state"));
        assert_eq!(p.hub_data(), PathBuf::from("/x/data/hub"));
        assert_eq!(p.logs(), PathBuf::from("/x/state/logs"));
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a/b.json");
        write_private(&f, b"{}").expect("write");
        let mode = std::fs::metadata(&f).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&f).expect("read"), b"{}");
    }
}
