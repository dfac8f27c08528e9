//! Reading a file that must be small (keys, signatures, PEM and JWKS files,
//! CA bundles) without trusting its size: at most one byte past the limit is
//! read from the open file, so a file that grows, a device or a FIFO fed
//! forever cannot exhaust memory.

use std::io::Read;
use std::path::Path;

/// All of the file at `path`, if it holds at most `limit` bytes.
///
/// # Errors
///
/// The open or read error, or an error saying the file is larger than `limit`.
pub fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
///
/// # Errors
///
/// As [`read_capped`], or `InvalidData` when the bytes are not UTF-8.
pub fn read_capped_string(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_capped(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_up_to_the_limit_are_read_and_larger_ones_refused() {
        let dir = std::env::temp_dir().join(format!("agentd-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("f");
        std::fs::write(&file, "12345").expect("write");
        assert_eq!(read_capped(&file, 5).ok().as_deref(), Some(&b"12345"[..]));
        assert_eq!(read_capped_string(&file, 5).ok().as_deref(), Some("12345"));
        let refused = read_capped(&file, 4).err().map(|e| e.to_string());
        assert_eq!(refused.as_deref(), Some("larger than 4 bytes"));
        std::fs::write(&file, [0xff_u8, 0xfe]).expect("write");
        let refused = read_capped_string(&file, 5).err().map(|e| e.to_string());
        assert_eq!(refused.as_deref(), Some("not valid UTF-8"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
