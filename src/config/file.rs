//! Reading the config file from disk: a regular file, not too large, that others cannot
//! write, in UTF-8.

use std::path::Path;

use super::{Config, ConfigError};

/// The largest config file read (1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl Config {
    /// Read and validate a config file.
    ///
    /// The file must be a regular file of at most [`MAX_CONFIG_BYTES`], that others cannot
    /// write (whoever can write it can point `waldur_api_url` and the token elsewhere).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let file = path.display().to_string();
        let whole = |message: String| ConfigError {
            file: file.clone(),
            key: String::new(),
            message,
        };
        let cannot_read = |e: std::io::Error| whole(format!("cannot read the config file: {e}"));
        let handle = std::fs::File::open(path).map_err(cannot_read)?;
        let meta = handle.metadata().map_err(cannot_read)?;
        if !meta.is_file() {
            return Err(whole(
                "is not a regular file; give the path of the YAML config file".into(),
            ));
        }
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            return Err(whole(format!(
                "anyone can write this file (mode {:04o}), so anyone could send the usage and \
                 the token elsewhere; run: chmod o-w {file}",
                mode & 0o7777
            )));
        }
        if mode & 0o020 != 0 {
            crate::warn!(
                "{file}: the file's group can write it (mode {:04o}); make sure that group is \
                 trusted, or run: chmod g-w {file}",
                mode & 0o7777
            );
        }
        let mut bytes = Vec::new();
        handle
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot_read)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(whole(format!(
                "is larger than {} KiB; a site-agent config is a few KiB",
                MAX_CONFIG_BYTES / 1024
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            whole(format!(
                "is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        let mut config = Config::parse(&text, &file)?;
        config.readable_by_others = mode & 0o044 != 0;
        Ok(config)
    }
}
