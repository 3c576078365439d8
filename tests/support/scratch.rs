//! Scratch directories and files: a fresh directory for each call, named by the label, the
//! process and a counter (the tests share one process, so no two ever share a directory),
//! removed when dropped.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A directory of one's own under the system temp dir.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/waldur-usage-<label>-<pid>-<n>`, empty.
    pub fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "waldur-usage-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch dir");
        Scratch { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A path inside it.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `text` to `name` inside it.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, text).expect("write a scratch file");
        path
    }

    /// Writes `text` to `name` inside it with the permission bits `mode`.
    pub fn write_mode(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.join(name);
        write_mode(&path, text, mode);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `text` to `path` with the permission bits `mode` (0o600 private, 0o755 a script):
/// a new file is created with them, so a private one is never readable by others meanwhile.
pub fn write_mode(path: &Path, text: &str, mode: u32) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .expect("create a file");
    file.write_all(text.as_bytes()).expect("write a file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// One file in a scratch directory of its own, removed with it.
#[derive(Debug)]
pub struct ScratchFile {
    path: PathBuf,
    _dir: Scratch,
}

impl ScratchFile {
    /// Writes `text` to `name` in a new [`Scratch`] labelled `label`.
    pub fn new(label: &str, name: &str, text: &str) -> ScratchFile {
        let dir = Scratch::new(label);
        ScratchFile {
            path: dir.write(name, text),
            _dir: dir,
        }
    }

    /// [`ScratchFile::new`] with the permission bits `mode`.
    pub fn with_mode(label: &str, name: &str, text: &str, mode: u32) -> ScratchFile {
        let dir = Scratch::new(label);
        ScratchFile {
            path: dir.write_mode(name, text, mode),
            _dir: dir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as text, for an argument.
    pub fn as_str(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temp path")
    }
}

/// The file's path, where a `&Path` is wanted.
impl std::ops::Deref for ScratchFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}
