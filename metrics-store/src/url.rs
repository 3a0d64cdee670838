//! Where history is kept: [`StoreUrl`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use url::Url;

use crate::StoreError;

/// The file name of the SQLite database inside a store directory.
pub const SQLITE_FILE: &str = "history.sqlite";

/// Where history is kept, parsed from a URL or a path.
///
/// - `off`: nowhere (history lives in memory only);
/// - `sqlite://PATH`, `sqlite:PATH` or a plain `PATH`: an embedded SQLite
///   database; a path naming a directory (existing, or ending in `/`) holds
///   the database as [`SQLITE_FILE`]; in a URL `%XX` escapes are decoded
///   (as sqlx reads it) and parameters (`?mode=...`) are refused, a plain
///   path is taken as it is;
/// - `postgres://...` or `postgresql://...`: a PostgreSQL database, which
///   several instances can share.
///
/// Messages and the URL's `Display` show a password (the user's, or a
/// `password` parameter) as `***`.
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
        if t.starts_with("sqlite:") {
            return sqlite_url(t);
        }
        match Url::parse(t) {
            // No scheme, or none followed by `//` (`my:file.db`): a path.
            Err(url::ParseError::RelativeUrlWithoutBase) => sqlite_path(t, PathBuf::from(t)),
            Ok(u) if u.cannot_be_a_base() => sqlite_path(t, PathBuf::from(t)),
            Err(e) => Err(bad(t, &format!("not a URL: {e}"))),
            Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => postgres_url(t),
            Ok(u) => Err(bad(
                t,
                &format!(
                    "unsupported scheme `{}` (sqlite://, postgres:// or a path)",
                    u.scheme()
                ),
            )),
        }
    }
}

/// A `sqlite:` or `sqlite://` URL: its path as sqlx reads it (`%XX`
/// escapes decoded).
fn sqlite_url(t: &str) -> Result<StoreUrl, StoreError> {
    #[cfg(not(feature = "sqlite"))]
    return Err(not_compiled_in(t, "SQLite", "sqlite"));
    #[cfg(feature = "sqlite")]
    {
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(t)
            .map_err(|e| bad(t, &format!("not a SQLite URL: {e}")))?;
        let path = opts.get_filename();
        if t.contains('?') {
            return Err(bad(t, "parameters are not supported in a SQLite store URL"));
        }
        if path.as_os_str().is_empty() {
            return Err(bad(t, "no path after `sqlite:`"));
        }
        sqlite_path(t, path.to_owned())
    }
}

/// The SQLite database at `p` (of `t`): a directory (existing, or ending
/// in `/`) holds it as [`SQLITE_FILE`].
fn sqlite_path(t: &str, p: PathBuf) -> Result<StoreUrl, StoreError> {
    if cfg!(not(feature = "sqlite")) {
        return Err(not_compiled_in(t, "SQLite", "sqlite"));
    }
    let dir = t.ends_with('/') || p.is_dir();
    Ok(StoreUrl::Sqlite(if dir { p.join(SQLITE_FILE) } else { p }))
}

/// A PostgreSQL URL, checked by sqlx.
fn postgres_url(t: &str) -> Result<StoreUrl, StoreError> {
    #[cfg(not(feature = "postgres"))]
    return Err(not_compiled_in(t, "PostgreSQL", "postgres"));
    #[cfg(feature = "postgres")]
    match sqlx::postgres::PgConnectOptions::from_str(t) {
        Ok(_) => Ok(StoreUrl::Postgres(t.to_owned())),
        Err(e) => Err(bad(t, &format!("not a PostgreSQL URL: {e}"))),
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

/// `url` with any password (of its user, or a `password` parameter)
/// replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    const HIDDEN: &str = "***";
    let Ok(mut u) = Url::parse(url) else {
        // A URL that does not parse (a bad port): `user:password@` is what
        // comes between the scheme and the last `@`.
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        return match rest.rsplit_once('@') {
            Some((auth, host)) => match auth.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:{HIDDEN}@{host}"),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        };
    };
    let mut hidden = false;
    if u.password().is_some() {
        hidden = u.set_password(Some(HIDDEN)).is_ok();
    }
    if u.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { HIDDEN.into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        hidden = true;
    }
    if hidden {
        u.to_string()
    } else {
        url.to_owned()
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
    fn sqlite_urls_and_paths() {
        for (given, path) in [
            ("sqlite:rel/h.db", "rel/h.db"),
            ("sqlite:///abs/h.db", "/abs/h.db"),
            ("sqlite://a%20b/h.db", "a b/h.db"),
            ("a b/h.db", "a b/h.db"),
            ("my:file.db", "my:file.db"),
        ] {
            let got = given.parse::<StoreUrl>().unwrap();
            assert_eq!(got, StoreUrl::Sqlite(path.into()), "{given}");
        }
        assert_eq!(
            "sqlite://data/".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite(Path::new("data/").join(SQLITE_FILE))
        );
        let e = "sqlite://h.db?mode=ro".parse::<StoreUrl>().unwrap_err();
        assert!(e.to_string().contains("parameters"), "{e}");
        let e = "mysql://u:pw@h/db".parse::<StoreUrl>().unwrap_err();
        assert!(e.to_string().contains("unsupported scheme `mysql`"), "{e}");
        assert!(!e.to_string().contains("pw@"), "{e}");
    }

    #[test]
    fn passwords_are_not_shown() {
        let u: StoreUrl = "postgres://me:secret@127.0.0.1:5432/m".parse().unwrap();
        assert_eq!(u.to_string(), "postgres://me:***@127.0.0.1:5432/m");
        assert!(!format!("{u:?}").contains("secret"));
        let u: StoreUrl = "postgres://me@h/m?sslmode=disable&password=secret"
            .parse()
            .unwrap();
        assert_eq!(
            u.to_string(),
            "postgres://me@h/m?sslmode=disable&password=***"
        );
        assert_eq!(
            redact("postgres://me:secret@h:port/m"),
            "postgres://me:***@h:port/m"
        );
        let plain = "postgres://me@127.0.0.1:5432/m?options=-c%20search_path%3Ds";
        assert_eq!(redact(plain), plain);
    }
}
