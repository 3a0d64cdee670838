//! The README's quickstart (a library that records, times and counts
//! outcomes; its test; an application with two backends), written once on
//! this facade and once on the `metrics` crate with `metrics-util`, both
//! checked the same way. A last test counts the lines of each between the
//! markers, so the README's "fewer lines" claim is a test that can fail.

// ---- ours: begin
mod ours {
    use metrics_protocol::Metrics;

    #[derive(Clone, Default)]
    pub struct Uploader {
        metrics: Metrics,
    }

    impl Uploader {
        pub fn new(metrics: Metrics) -> Self {
            Uploader { metrics }
        }

        pub fn upload(&self, bytes: &[u8]) -> std::io::Result<()> {
            self.metrics
                .record_histogram("upload.bytes", bytes.len() as f64, &[]);
            self.metrics
                .time_result("upload", &[("kind", "blob")], || match bytes {
                    [] => Err(std::io::ErrorKind::InvalidInput.into()),
                    _ => Ok(()),
                })
        }
    }

    #[test]
    fn library_test() {
        use metrics_protocol::testing::Capture;
        let capture = Capture::new();
        let uploader = Uploader::new(capture.metrics());
        uploader.upload(b"hello").unwrap();
        uploader.upload(b"").unwrap_err();
        assert_eq!(capture.successes("upload", &[("kind", "blob")]), 1);
        assert_eq!(
            capture.failures("upload", "invalid_input", &[("kind", "blob")]),
            1
        );
        assert_eq!(capture.histogram("upload.bytes", &[]), [5.0, 0.0]);
    }

    #[test]
    fn application() -> Result<(), Box<dyn std::error::Error>> {
        use metrics_kit::layers::Fanout;
        use metrics_memory::MemoryMetrics;
        use metrics_protocol::app::MetricsAggregator;
        use metrics_statsd::{StatsdConfig, StatsdMetrics};
        use std::sync::Arc;
        let memory = Arc::new(MemoryMetrics::new());
        let statsd = Arc::new(StatsdMetrics::new(StatsdConfig::default())?);
        let both = Fanout::new(vec![memory.clone(), statsd]);
        Uploader::new(Metrics::new(Arc::new(both))).upload(b"hello")?;
        assert_eq!(memory.success_rate("upload", None)?, 1.0);
        Ok(())
    }
}
// ---- ours: end

// ---- theirs: begin
mod theirs {
    use std::time::Instant;

    #[derive(Clone, Default)]
    pub struct Uploader;

    impl Uploader {
        pub fn upload(&self, bytes: &[u8]) -> std::io::Result<()> {
            metrics::histogram!("upload.bytes").record(bytes.len() as f64);
            let start = Instant::now();
            let result = match bytes {
                [] => Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
                _ => Ok(()),
            };
            metrics::histogram!("upload", "kind" => "blob").record(start.elapsed());
            match &result {
                Ok(()) => metrics::counter!("upload.success", "kind" => "blob").increment(1),
                Err(_) => metrics::counter!("upload.failure", "kind" => "blob",
                    "error_type" => "invalid_input")
                .increment(1),
            }
            result
        }
    }

    #[test]
    fn library_test() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        use metrics_util::{CompositeKey, MetricKind};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            Uploader.upload(b"hello").unwrap();
            Uploader.upload(b"").unwrap_err();
        });
        let snapshot = snapshotter.snapshot().into_hashmap();
        let counter = |name: &'static str, labels: Vec<metrics::Label>| {
            let key =
                CompositeKey::new(MetricKind::Counter, metrics::Key::from_parts(name, labels));
            match snapshot.get(&key) {
                Some((_, _, DebugValue::Counter(n))) => *n,
                _ => 0,
            }
        };
        let kind = metrics::Label::new("kind", "blob");
        let error = metrics::Label::new("error_type", "invalid_input");
        assert_eq!(counter("upload.success", vec![kind.clone()]), 1);
        assert_eq!(counter("upload.failure", vec![kind, error]), 1);
        let bytes = CompositeKey::new(
            MetricKind::Histogram,
            metrics::Key::from_name("upload.bytes"),
        );
        let Some((_, _, DebugValue::Histogram(values))) = snapshot.get(&bytes) else {
            panic!("no upload.bytes histogram");
        };
        let values: Vec<f64> = values.iter().map(|v| v.into_inner()).collect();
        assert_eq!(values, [5.0, 0.0]);
    }

    #[test]
    fn application() {
        use metrics_util::debugging::DebuggingRecorder;
        use metrics_util::layers::FanoutBuilder;
        let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = prometheus.handle();
        let local = DebuggingRecorder::new();
        let snapshotter = local.snapshotter();
        let both = FanoutBuilder::default()
            .add_recorder(prometheus)
            .add_recorder(local)
            .build();
        metrics::with_local_recorder(&both, || Uploader.upload(b"hello").unwrap());
        // No success rate to ask for: count it from a snapshot by hand.
        let successes = snapshotter
            .snapshot()
            .into_vec()
            .iter()
            .filter(|(k, ..)| k.key().name() == "upload.success")
            .count();
        assert_eq!(successes, 1);
        assert!(handle.render().contains("upload_success"));
    }
}
// ---- theirs: end

/// Lines of code between a begin and an end marker (blank lines and
/// comments not counted).
fn code_lines(section: &str) -> usize {
    let source = include_str!("quickstart_side_by_side.rs");
    let begin = format!("// ---- {section}: begin");
    let end = format!("// ---- {section}: end");
    source
        .lines()
        .skip_while(|l| l.trim() != begin)
        .take_while(|l| l.trim() != end)
        .filter(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with("//")
        })
        .count()
}

#[test]
fn the_same_quickstart_takes_fewer_lines_here() {
    let (ours, theirs) = (code_lines("ours"), code_lines("theirs"));
    assert!(
        ours > 20 && theirs > 20,
        "markers found: {ours} and {theirs} lines"
    );
    assert!(
        ours < theirs,
        "ours {ours} lines, metrics + metrics-util {theirs}"
    );
}
