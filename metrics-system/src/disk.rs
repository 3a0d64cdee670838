//! File systems: which mount holds a path, and how full a file system is.
//!
//! Space comes from `statvfs` on Unix (the same call `df` and psutil make),
//! so `used` excludes the blocks reserved for the super-user and `percent`
//! is `used / (used + free)`, exactly as `df` prints it. Elsewhere the
//! numbers come from sysinfo (`used = total - available`).

use std::io;
use std::path::{Path, PathBuf};

use metrics_protocol::MetricsError;
use metrics_protocol::app::DiskUsage;

/// One mounted file system, as the mount table lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mount {
    pub(crate) mount_point: PathBuf,
    pub(crate) device: Option<String>,
    pub(crate) file_system: Option<String>,
}

/// Space of one file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Space {
    pub(crate) total: u64,
    /// Blocks in use (`total - free for root`).
    pub(crate) used: u64,
    /// Free for unprivileged users.
    pub(crate) available: u64,
    /// Free for root only.
    pub(crate) reserved: u64,
}

impl Space {
    /// `df`'s percentage: `used / (used + available) * 100`, 0 when empty.
    pub(crate) fn percent(&self) -> f64 {
        let denom = self.used.saturating_add(self.available);
        if denom == 0 {
            0.0
        } else {
            self.used as f64 / denom as f64 * 100.0
        }
    }

    /// From sysinfo's two numbers, where `statvfs` is not available.
    pub(crate) fn from_total_available(total: u64, available: u64) -> Space {
        let available = available.min(total);
        Space {
            total,
            used: total - available,
            available,
            reserved: 0,
        }
    }
}

/// `statvfs(path)`: the space of the file system holding `path`.
#[cfg(unix)]
pub(crate) fn space_of(path: &Path) -> io::Result<Space> {
    let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    let frsize = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    let total = st.f_blocks.saturating_mul(frsize);
    let free_root = st.f_bfree.min(st.f_blocks).saturating_mul(frsize);
    let available = st.f_bavail.min(st.f_bfree).saturating_mul(frsize);
    Ok(Space {
        total,
        used: total - free_root,
        available,
        reserved: free_root - available,
    })
}

/// Without `statvfs` the caller falls back to sysinfo's numbers.
#[cfg(not(unix))]
pub(crate) fn space_of(_path: &Path) -> io::Result<Space> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no statvfs"))
}

/// Every entry of the kernel's mount table (Linux: `/proc/self/mounts`,
/// including pseudo file systems). Empty where there is no such table or it
/// cannot be read.
pub(crate) fn mount_table() -> Vec<Mount> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        match std::fs::read_to_string("/proc/self/mounts") {
            Ok(text) => parse_mounts(&text),
            Err(err) => {
                tracing::debug!(%err, "cannot read /proc/self/mounts");
                Vec::new()
            }
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        Vec::new()
    }
}

/// Parses `fstab(5)`-style lines: device, mount point, type, options...
/// Malformed lines are skipped.
pub(crate) fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let mount_point = fields.next()?;
            let fs_type = fields.next()?;
            Some(Mount {
                mount_point: PathBuf::from(unescape_octal(mount_point)),
                device: Some(unescape_octal(device)),
                file_system: Some(fs_type.to_owned()),
            })
        })
        .collect()
}

/// The mount table escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount whose mount point is the longest (component-wise) prefix of
/// `path`, which must already be canonical. When several entries share that
/// mount point (over-mounts), the last one listed is the visible one.
pub(crate) fn holding_mount<'m>(mounts: &'m [Mount], path: &Path) -> Option<&'m Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if path.starts_with(&m.mount_point)
            && best.is_none_or(|b| {
                m.mount_point.components().count() >= b.mount_point.components().count()
            })
        {
            best = Some(m);
        }
    }
    best
}

/// Canonicalises `path`; a path that does not exist is `NotFound` naming it.
pub(crate) fn canonical(path: &Path) -> Result<PathBuf, MetricsError> {
    std::fs::canonicalize(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => {
            MetricsError::NotFound(format!("path `{}` does not exist", path.display()))
        }
        _ => MetricsError::io(format!("resolving path `{}`", path.display()), err),
    })
}

/// Builds a typed reading.
pub(crate) fn usage(mount: &Mount, space: Space) -> DiskUsage {
    DiskUsage {
        mount_point: mount.mount_point.to_string_lossy().into_owned(),
        device: mount.device.clone(),
        file_system: mount.file_system.clone(),
        total_bytes: space.total,
        used_bytes: space.used,
        free_bytes: space.available,
        percent: space.percent(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(point: &str) -> Mount {
        Mount {
            mount_point: PathBuf::from(point),
            device: Some(format!("dev{point}")),
            file_system: Some("ext4".into()),
        }
    }

    #[test]
    fn longest_prefix_wins_component_wise() {
        let mounts = vec![m("/"), m("/home"), m("/home/al"), m("/ho")];
        let pick = |p: &str| {
            holding_mount(&mounts, Path::new(p)).map(|m| m.mount_point.to_str().unwrap().to_owned())
        };
        assert_eq!(pick("/home/al/x").as_deref(), Some("/home/al"));
        assert_eq!(pick("/home/alice").as_deref(), Some("/home"));
        assert_eq!(pick("/house").as_deref(), Some("/"));
        assert_eq!(pick("/home").as_deref(), Some("/home"));
        assert_eq!(holding_mount(&[m("/home")], Path::new("/etc")), None);
    }

    #[test]
    fn the_last_of_several_mounts_on_one_point_is_the_visible_one() {
        let mut upper = m("/");
        upper.device = Some("overlay".into());
        let mounts = vec![m("/"), upper.clone()];
        assert_eq!(holding_mount(&mounts, Path::new("/etc")), Some(&upper));
    }

    #[test]
    fn mount_table_lines_are_parsed_and_unescaped() {
        let text = "/dev/vda / ext4 rw 0 0\n\
                    /dev/sdb1 /mnt/my\\040disk vfat rw 0 0\n\
                    garbage\n";
        let mounts = parse_mounts(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].mount_point, PathBuf::from("/mnt/my disk"));
        assert_eq!(mounts[1].file_system.as_deref(), Some("vfat"));
        assert_eq!(unescape_octal("a\\134b"), "a\\b");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn percent_is_dfs_and_never_divides_by_zero() {
        let s = Space {
            total: 100,
            used: 30,
            available: 60,
            reserved: 10,
        };
        assert!((s.percent() - 33.333).abs() < 0.01);
        assert_eq!(Space::default().percent(), 0.0);
        let f = Space::from_total_available(100, 150);
        assert_eq!((f.used, f.available), (0, 100));
    }

    #[cfg(unix)]
    #[test]
    fn statvfs_of_root_is_consistent() {
        let s = space_of(Path::new("/")).expect("statvfs /");
        assert!(s.total > 0);
        assert_eq!(s.used + s.available + s.reserved, s.total);
    }

    #[test]
    fn a_missing_path_is_not_found_naming_it() {
        let err = canonical(Path::new("/no/such/dir/for/metrics-system")).unwrap_err();
        assert!(matches!(&err, MetricsError::NotFound(msg) if msg.contains("/no/such/dir")));
    }
}
