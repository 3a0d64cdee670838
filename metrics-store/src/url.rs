//! Where history is kept: [`StoreUrl`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::StoreError;

/// The file name of the SQLite database inside a store directory.
pub const SQLITE_FILE: &str = "history.sqlite";

/// Where history is kept, parsed from a URL or a path.
///
/// - `off`: nowhere (history lives in memory only);
/// - `sqlite://PATH`, `sqlite:PATH` or a plain `PATH`: an embedded SQLite
///   database; a path naming a directory (existing, or ending in `/`) holds
///   the database as [`SQLITE_FILE`];
/// - `postgres://...` or `postgresql://...`: a PostgreSQL database, which
///   several instances can share.
///
/// ```
/// use metrics_store::StoreUrl;
/// assert_eq!("off".parse::<StoreUrl>().unwrap(), StoreUrl::Off);
/// assert!(matches!("postgres://u@127.0.0.1/db".parse::<StoreUrl>().unwrap(), StoreUrl::Postgres(_)));
/// let err = "mysql://h/db".parse::<StoreUrl>().unwrap_err();
/// assert!(err.to_string().contains("mysql://h/db"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// No store.
    Off,
    /// SQLite database file.
    Sqlite(PathBuf),
    /// PostgreSQL connection URL.
    Postgres(String),
}

impl StoreUrl {
    /// The default: SQLite in `metrics-data/` under the working directory.
    pub fn default_dir() -> StoreUrl {
        StoreUrl::Sqlite(Path::new("metrics-data").join(SQLITE_FILE))
    }
}

fn bad(url: &str, reason: &str) -> StoreError {
    StoreError::Url {
        url: redact(url),
        reason: reason.to_owned(),
    }
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(bad(s, "empty store URL (use `off` to disable the store)"));
        }
        if t.eq_ignore_ascii_case("off") {
            return Ok(StoreUrl::Off);
        }
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            #[cfg(not(feature = "postgres"))]
            return Err(not_compiled_in(t, "PostgreSQL", "postgres"));
            #[cfg(feature = "postgres")]
            return match sqlx::postgres::PgConnectOptions::from_str(t) {
                Ok(_) => Ok(StoreUrl::Postgres(t.to_owned())),
                Err(e) => Err(bad(t, &format!("not a PostgreSQL URL: {e}"))),
            };
        }
        let path = if let Some(rest) = t.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = t.strip_prefix("sqlite:") {
            rest
        } else if let Some((scheme, _)) = t.split_once("://") {
            return Err(bad(
                t,
                &format!("unsupported scheme `{scheme}` (sqlite://, postgres:// or a path)"),
            ));
        } else {
            t
        };
        if path.is_empty() {
            return Err(bad(t, "no path after `sqlite:`"));
        }
        if cfg!(not(feature = "sqlite")) {
            return Err(not_compiled_in(t, "SQLite", "sqlite"));
        }
        let p = PathBuf::from(path);
        let dir = path.ends_with('/') || p.is_dir();
        Ok(StoreUrl::Sqlite(if dir { p.join(SQLITE_FILE) } else { p }))
    }
}

/// The error for a store `url` whose driver (`what`) this build left out:
/// it names the feature that brings it in (`feature` of metrics-store,
/// `store-{feature}` of metrics-sdk).
pub(crate) fn not_compiled_in(url: &str, what: &str, feature: &str) -> StoreError {
    bad(
        url,
        &format!(
            "{what} support is not compiled in: enable the `{feature}` feature of metrics-store \
             (`store-{feature}` of metrics-sdk)"
        ),
    )
}

/// `url` with any password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{host}"),
        None => url.to_owned(),
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Off => f.write_str("off"),
            StoreUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            StoreUrl::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_name_themselves() {
        assert_eq!(
            "sqlite://a/b.db".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite("a/b.db".into())
        );
        assert_eq!(
            "data/".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite(Path::new("data/").join(SQLITE_FILE))
        );
        assert_eq!(" OFF ".parse::<StoreUrl>().unwrap(), StoreUrl::Off);
        for bad in ["", "sqlite:", "redis://x", "postgres://u:pw@h:notaport/db"] {
            let e = bad.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(!e.contains("pw@"), "{e}");
            assert!(e.contains("store URL"), "{e}");
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        let u: StoreUrl = "postgres://me:secret@127.0.0.1:5432/m".parse().unwrap();
        assert_eq!(u.to_string(), "postgres://me:***@127.0.0.1:5432/m");
        assert!(!format!("{u:?}").contains("secret"));
    }
}
