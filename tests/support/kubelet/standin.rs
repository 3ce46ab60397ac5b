//! What the stand-in connector writes in one-shot mode, as the SDK does: `debug.log` in the working
//! directory (stat first, then open), the sync into a temporary file beside `BATON_FILE`, renamed
//! into place when complete. Errors read as the SDK's Go errors do (`<op> <path>: <errno text>`),
//! e.g. `open sync.c1z: read-only file system` or `stat debug.log: permission denied`.

use std::{
    io::{self, Write as _},
    path::Path,
};

/// Go's `*PathError` text for an I/O error on `path` during `op`.
pub fn go_error(op: &str, path: &Path, e: &io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(libc_code) => errno_text(libc_code),
        None => e.to_string(),
    };
    format!("{op} {}: {text}", path.display())
}

/// The strerror texts Go prints for the errors a sync meets (Go spells them in lower case).
fn errno_text(code: i32) -> String {
    match code {
        1 => "operation not permitted".into(),
        2 => "no such file or directory".into(),
        13 => "permission denied".into(),
        28 => "no space left on device".into(),
        30 => "read-only file system".into(),
        other => io::Error::from_raw_os_error(other).to_string(),
    }
}

/// Appends a line to `debug.log` in `workdir`, as the SDK's logger does when debug logging is on.
pub fn debug_log(workdir: &Path, line: &str) -> Result<(), String> {
    let path = workdir.join("debug.log");
    let shown = Path::new("debug.log");
    match std::fs::metadata(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(go_error("stat", shown, &e)),
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| go_error("open", shown, &e))?;
    writeln!(f, "{line}").map_err(|e| go_error("write", shown, &e))
}

/// Writes the sync to `file` (relative to `workdir` unless absolute): all of `content` into
/// `<file>.tmp`, flushed, then renamed, so a reader never sees a partial file under its name.
pub fn write_sync(workdir: &Path, file: &str, content: &[u8]) -> Result<(), String> {
    let target = workdir.join(file);
    let tmp = workdir.join(format!("{file}.tmp"));
    let shown = Path::new(file);
    let mut f = std::fs::File::create(&tmp).map_err(|e| go_error("open", shown, &e))?;
    f.write_all(content).and_then(|()| f.sync_all()).map_err(|e| go_error("write", shown, &e))?;
    std::fs::rename(&tmp, &target).map_err(|e| go_error("rename", shown, &e))
}
