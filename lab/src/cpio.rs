//! A writer for the `newc` cpio format, the format the kernel unpacks as an initramfs.
//!
//! Each entry is a 110-byte ASCII header (`070701` and 13 eight-digit hex fields), the
//! NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes; the archive ends with
//! the entry `TRAILER!!!`. Timestamps are zero so the same inputs give the same bytes.

use std::io::{self, Write};

/// Kind and permission bits of an entry.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// Streams a newc archive into `W`.
#[derive(Debug)]
pub(crate) struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive.
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    /// Adds a directory (`name` without a leading slash, e.g. `sbin`).
    pub(crate) fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, S_IFDIR | perm, 2, &[])
    }

    /// Adds a regular file.
    pub(crate) fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | perm, 1, data)
    }

    /// Adds a symbolic link pointing at `target`.
    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(name, S_IFLNK | 0o777, 1, target.as_bytes())
    }

    /// Writes the trailer and returns the sink.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8]) -> io::Result<()> {
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::other(format!("{name}: too large for cpio newc")))?;
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| io::Error::other("cpio entry name too long"))?;
        let ino = if name == "TRAILER!!!" {
            0
        } else {
            self.next_ino
        };
        self.next_ino += 1;
        let header = format!(
            "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}\
             {devmajor:08x}{devminor:08x}{rdevmajor:08x}{rdevminor:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            mtime = 0,
            devmajor = 0,
            devminor = 0,
            rdevmajor = 0,
            rdevminor = 0,
            check = 0,
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = self.written % 4;
        if rem != 0 {
            let zeros = [0u8; 3];
            let n = usize::try_from(4 - rem).unwrap_or(0);
            self.put(&zeros[..n])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_entry_has_the_newc_layout() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("init", 0o755, b"hi\n").unwrap();
        let bytes = w.finish().unwrap();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert!(header.starts_with("070701"));
        // mode field: regular file 0755
        assert_eq!(&header[14..22], "000081ed");
        // filesize field
        assert_eq!(&header[54..62], "00000003");
        // namesize field counts the NUL
        assert_eq!(&header[94..102], "00000005");
        // header (110) + "init\0" (5) = 115, padded to 116; data at 116
        assert_eq!(&bytes[110..115], b"init\0");
        assert_eq!(&bytes[116..119], b"hi\n");
        assert_eq!(bytes.len() % 4, 0);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("TRAILER!!!"));
    }

    #[test]
    fn symlink_stores_its_target_as_data() {
        let mut w = CpioWriter::new(Vec::new());
        w.symlink("bin/sh", "busybox").unwrap();
        let bytes = w.finish().unwrap();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(&header[14..22], "0000a1ff");
        assert!(bytes.windows(7).any(|w| w == b"busybox"));
    }
}
