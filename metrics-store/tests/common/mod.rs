//! What the store's test binaries share: the application runtime writers
//! run on, a runtime for a test's own futures, fresh directories, and
//! waiting for a condition.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A number no other call in this process returned.
pub fn unique() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh (absent) directory for `test` under the system's temporary
/// directory.
pub fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "metrics-store-{test}-{}-{}",
        std::process::id(),
        unique()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The application's runtime the writers run on (two workers, as the
/// main program's), shared by the tests of a binary.
pub fn app_rt() -> tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
    .handle()
    .clone()
}

/// A fresh current-thread runtime, for a test's own futures.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Waits until `f` holds, failing the test after two minutes (a bound for
/// a machine under load, not a measurement).
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
