//! `execve`, `execv`, `execvp`, `execvpe`: with `YASMIN_PRELOAD_LOG=1`, an exec of a
//! static binary (which no preload library reaches) is logged; the call itself is
//! libc's, unchanged.

use std::ffi::{CStr, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_char;

use super::sys::KeepErrno;
use crate::config::config;
use crate::elf;

/// Logs, if logging is on, that `file` (as passed to an exec call; `search`: looked up
/// in `$PATH` when it has no `/`, as execvp does) is a static binary.
///
/// # Safety
/// `file` is a NUL-terminated string (or null).
pub unsafe fn note_exec(file: *const c_char, search: bool) {
    if file.is_null() || !config().log || config().disabled {
        return;
    }
    let _e = KeepErrno::new();
    // SAFETY: as for this function.
    let name = OsStr::from_bytes(unsafe { CStr::from_ptr(file) }.to_bytes());
    let Some(path) = resolve(Path::new(name), search) else {
        return;
    };
    let mut head = Vec::with_capacity(4096);
    let read = std::fs::File::open(&path).and_then(|f| f.take(65536).read_to_end(&mut head));
    if read.is_ok() && elf::is_static(&head) == Some(true) {
        plog!(
            "exec {}: a static binary; the preload library cannot reach it, its connections stay TCP",
            path.display()
        );
    }
}

/// The file an exec of `name` runs.
fn resolve(name: &Path, search: bool) -> Option<PathBuf> {
    if !search || name.as_os_str().as_bytes().contains(&b'/') {
        return Some(name.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
