//! Reading the files a stack names (compose files, env files, seccomp profiles, the files of secrets
//! and configs): regular files only, and no more than a limit, so that a device or a pipe named by
//! mistake (`/dev/zero`) is refused rather than read without end.

use std::io::Read;
use std::path::Path;

/// Reads a regular file of at most `limit` bytes; the error says which file and why.
pub(crate) fn read_bytes(path: &Path, limit: u64) -> std::result::Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("{}: cannot read it: {e}", path.display());
    let file = std::fs::File::open(path).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut data = Vec::new();
    file.take(limit + 1).read_to_end(&mut data).map_err(cannot)?;
    if data.len() as u64 > limit {
        return Err(format!("{}: over the limit of {limit} bytes", path.display()));
    }
    Ok(data)
}

/// [`read_bytes`], as UTF-8 text.
pub(crate) fn read_text(path: &Path, limit: u64) -> std::result::Result<String, String> {
    String::from_utf8(read_bytes(path, limit)?).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = std::env::temp_dir().join(format!("dockfleet-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_bytes(&f, 5).unwrap(), b"12345");
        assert!(read_bytes(&f, 4).unwrap_err().contains("over the limit of 4 bytes"));
        assert!(read_bytes(Path::new("/dev/zero"), 5).unwrap_err().contains("not a regular file"));
        assert!(read_bytes(&dir, 5).unwrap_err().contains("not a regular file"));
        assert!(read_bytes(&dir.join("none"), 5).unwrap_err().contains("cannot read it"));
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(read_text(&f, 5).unwrap_err().contains("not UTF-8 text"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
