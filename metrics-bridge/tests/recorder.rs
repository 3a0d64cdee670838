//! The mapping of the crate docs' table, call by call, into the memory
//! backend (and a recording double for what a collector is handed),
//! through a scoped recorder.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_bridge::{Recorder, map_unit};
use metrics_kit::layers::Fanout;
use metrics_memory::MemoryMetrics;
use metrics_protocol::backend::{DropReason, InstrumentFn, Measurement, Value};
use metrics_protocol::testing::{Capture, Described};
use metrics_protocol::{Key, MetricCollector, MetricType, MetricUnit, Metrics};

fn memory() -> (Arc<MemoryMetrics>, Recorder) {
    let m = Arc::new(MemoryMetrics::new());
    let r = Recorder::new(m.clone());
    (m, r)
}

#[test]
fn counters_gauges_and_histograms_reach_their_series() {
    let (m, r) = memory();
    r.in_scope(|| {
        counter!("jobs.done", "queue" => "mail", "prio" => "high").increment(2);
        // Label order does not make another series.
        counter!("jobs.done", "prio" => "high", "queue" => "mail").increment(5);
        counter!("jobs.done").increment(1);
        gauge!("pool.size", "pool" => "db").set(10.0);
        gauge!("pool.size", "pool" => "db").increment(2.5);
        gauge!("pool.size", "pool" => "db").decrement(4.0);
        histogram!("latency", "op" => "get").record(3.0);
        histogram!("latency", "op" => "get").record_many(7.0, 3);
    });
    let tags = [("queue", "mail"), ("prio", "high")];
    assert_eq!(m.counter_value("jobs.done", &tags), Some(7.0));
    assert_eq!(m.counter_value("jobs.done", &[]), Some(1.0));
    assert_eq!(m.gauge_value("pool.size", &[("pool", "db")]), Some(8.5));
    let d = m.distribution("latency", &[("op", "get")]).unwrap();
    assert_eq!((d.count, d.sum, d.min, d.max), (4, 24.0, 3.0, 7.0));
    assert_eq!(m.series("").len(), 4);
    // One cached handle per key, however often the macros registered it.
    assert_eq!(r.stats().cached_keys, 4);
}

#[test]
fn a_kept_handle_records_without_registering_again() {
    let (m, r) = memory();
    let c = r.in_scope(|| counter!("hits", "route" => "/"));
    let before = r.stats();
    for _ in 0..100 {
        c.increment(1);
    }
    assert_eq!(m.counter_value("hits", &[("route", "/")]), Some(100.0));
    assert_eq!(r.stats(), before);
}

#[test]
fn absolute_adds_the_rise_over_the_largest_value_seen() {
    let (m, r) = memory();
    let tags = [("src", "proc")];
    let value = || m.counter_value("cpu.seconds", &tags).unwrap();
    r.in_scope(|| {
        // Registered anew on every call, as metrics-process does.
        counter!("cpu.seconds", "src" => "proc").absolute(10);
        assert_eq!(value(), 10.0);
        counter!("cpu.seconds", "src" => "proc").absolute(10);
        assert_eq!(value(), 10.0);
        counter!("cpu.seconds", "src" => "proc").absolute(25);
        assert_eq!(value(), 25.0);
        assert_eq!(m.dropped(DropReason::NegativeCounter), 0);
        // A decrease (reset or late report) is a counted drop; the mark stays.
        counter!("cpu.seconds", "src" => "proc").absolute(4);
        assert_eq!(value(), 25.0);
        assert_eq!(m.dropped(DropReason::NegativeCounter), 1);
        counter!("cpu.seconds", "src" => "proc").absolute(30);
        assert_eq!(value(), 30.0);
        // Increments add on top of the mark (documented in the table).
        counter!("cpu.seconds", "src" => "proc").increment(2);
        counter!("cpu.seconds", "src" => "proc").absolute(31);
        assert_eq!(value(), 33.0);
    });
}

#[test]
fn past_the_cache_limit_records_still_land_and_absolute_is_a_counted_drop() {
    let m = Arc::new(MemoryMetrics::new());
    let r = Recorder::with_cache_limit(m.clone(), 1);
    r.in_scope(|| {
        counter!("first").absolute(5);
        counter!("second").increment(3);
        counter!("second").increment(4);
        counter!("second").absolute(100);
        gauge!("g").set(1.0);
    });
    assert_eq!(m.counter_value("first", &[]), Some(5.0));
    assert_eq!(m.counter_value("second", &[]), Some(7.0));
    assert_eq!(m.gauge_value("g", &[]), Some(1.0));
    let s = r.stats();
    assert_eq!(s.cached_keys, 2, "one counter and one gauge");
    assert_eq!(s.uncached_registrations, 3);
    assert_eq!(s.absolute_dropped, 1);
}

/// Records the same bad inputs through the bridge into one backend and by
/// our own calls into another: the drop counts must be equal, reason by
/// reason.
#[test]
fn bad_names_labels_and_values_are_dropped_as_our_own_calls() {
    let (bridged, r) = memory();
    let direct_backend = Arc::new(MemoryMetrics::new());
    let direct = Metrics::new(direct_backend.clone());
    let long = "x".repeat(300);
    let many: Vec<(String, String)> = (0..20).map(|i| (format!("k{i}"), "v".into())).collect();
    let many_labels: Vec<metrics::Label> = many
        .iter()
        .map(|(k, v)| metrics::Label::new(k.clone(), v.clone()))
        .collect();
    let many_tags: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    r.in_scope(|| {
        counter!("").increment(1);
        counter!(long.clone()).increment(1);
        counter!("bad\nname").increment(1);
        gauge!("ok", "" => "v").set(1.0);
        gauge!("ok", "k" => "a", "k" => "b").set(1.0);
        histogram!("h", many_labels.clone()).record(1.0);
        histogram!("h").record(f64::NAN);
        gauge!("g").set(f64::INFINITY);
        // One name, two kinds.
        counter!("shared").increment(1);
        gauge!("shared").set(1.0);
    });
    direct.record_counter("", 1.0, &[]);
    direct.record_counter(&long, 1.0, &[]);
    direct.record_counter("bad\nname", 1.0, &[]);
    direct.record_gauge("ok", 1.0, &[("", "v")]);
    direct.record_gauge("ok", 1.0, &[("k", "a"), ("k", "b")]);
    direct.record_histogram("h", 1.0, &many_tags);
    direct.record_histogram("h", f64::NAN, &[]);
    direct.record_gauge("g", f64::INFINITY, &[]);
    direct.record_counter("shared", 1.0, &[]);
    direct.record_gauge("shared", 1.0, &[]);

    let want = direct_backend.health()[0].dropped.clone();
    assert!(
        want.len() >= 5,
        "the inputs cover several reasons: {want:?}"
    );
    assert_eq!(bridged.health()[0].dropped, want);
    for reason in DropReason::ALL {
        assert_eq!(
            bridged.dropped(reason),
            direct_backend.dropped(reason),
            "{reason}"
        );
    }
}

#[test]
fn describe_carries_kind_unit_and_text_to_the_collector() {
    let capture = Capture::new();
    let r = Recorder::new(capture.clone());
    r.in_scope(|| {
        describe_counter!("req", Unit::Count, "requests served");
        describe_gauge!("mem", Unit::Mebibytes, "heap in use");
        describe_histogram!("lat", Unit::Seconds, "request latency");
        describe_histogram!("ns", Unit::Nanoseconds, "no unit of ours");
    });
    let described: Vec<Described> = capture.descriptions();
    let want = [
        (
            "req",
            MetricType::Counter,
            Some(MetricUnit::Count),
            "requests served",
        ),
        (
            "mem",
            MetricType::Gauge,
            Some(MetricUnit::Megabytes),
            "heap in use",
        ),
        (
            "lat",
            MetricType::Histogram,
            Some(MetricUnit::Seconds),
            "request latency",
        ),
        ("ns", MetricType::Histogram, None, "no unit of ours"),
    ];
    assert_eq!(described.len(), want.len(), "{described:?}");
    for (got, (name, kind, unit, text)) in described.iter().zip(want) {
        assert_eq!(
            *got,
            Described {
                name: name.into(),
                kind,
                unit,
                help: text.into(),
            }
        );
    }
    assert!(capture.records().is_empty(), "describing records nothing");
}

/// A collector that does not bind is handed one measurement per value, of
/// the key built at registration: the table's mapping, value by value.
#[test]
fn a_collector_that_does_not_bind_gets_one_measurement_per_value() {
    let capture = Capture::new();
    let r = Recorder::new(capture.clone());
    r.in_scope(|| {
        let c = counter!("jobs", "queue" => "mail", "prio" => "high");
        c.increment(2);
        c.absolute(10);
        c.absolute(10);
        c.absolute(12);
        let g = gauge!("pool");
        g.set(4.0);
        g.increment(1.5);
        g.decrement(0.5);
        histogram!("lat", "op" => "get").record_many(0.25, 2);
    });
    let values = |name: &str| -> Vec<Value> {
        capture
            .records()
            .into_iter()
            .filter(|r| r.name == name)
            .map(|r| r.value)
            .collect()
    };
    assert_eq!(
        values("jobs"),
        [
            Value::Counter(2.0),
            Value::Counter(10.0),
            Value::Counter(2.0)
        ]
    );
    assert_eq!(
        values("pool"),
        [
            Value::Gauge(4.0),
            Value::GaugeDelta(1.5),
            Value::GaugeDelta(-0.5)
        ]
    );
    assert_eq!(values("lat"), [Value::Histogram(0.25); 2]);
    let jobs = capture.records().into_iter().find(|r| r.name == "jobs");
    let tags = jobs.map(|r| r.tags).unwrap_or_default();
    let want = [("prio", "high"), ("queue", "mail")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(tags, want);
    assert_eq!(
        capture.counter("jobs", &[("queue", "mail"), ("prio", "high")]),
        14.0
    );
    assert_eq!(capture.gauge("pool", &[]), Some(5.0));
    assert_eq!(capture.health()[0].total_dropped(), 0);
}

/// A name or labels that break a rule make no key: every value of that
/// registration is refused and counted under the key's reason; a bad value
/// of a good key under the value's.
#[test]
fn a_refused_key_refuses_every_value_and_bad_values_are_counted() {
    let capture = Capture::new();
    let r = Recorder::new(capture.clone());
    r.in_scope(|| {
        let bad = counter!("bad\nname");
        bad.increment(1);
        bad.increment(1);
        gauge!("g", "k" => "a", "k" => "b").set(1.0);
        gauge!("g").set(f64::NAN);
        histogram!("h").record(f64::INFINITY);
        let c = counter!("c");
        c.absolute(5);
        c.absolute(3); // below the mark: a negative increment
    });
    assert_eq!(capture.dropped(DropReason::InvalidName), 2);
    assert_eq!(capture.dropped(DropReason::DuplicateTag), 1);
    assert_eq!(capture.dropped(DropReason::InvalidValue), 2);
    assert_eq!(capture.dropped(DropReason::NegativeCounter), 1);
    let names: Vec<String> = capture.records().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["c"], "only the good value of a good key is kept");
}

/// A series of a collector that binds, counting what reaches it.
#[derive(Default)]
struct Cell {
    sum: std::sync::Mutex<f64>,
    rejected: AtomicU64,
}

impl InstrumentFn for Cell {
    fn record(&self, value: Value) {
        *self.sum.lock().unwrap() += value.as_f64();
    }
    fn reject(&self, _: DropReason) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }
}

/// Binds every series to one [`Cell`] and counts the binds; `record` is
/// what a handle that did not bind would call.
#[derive(Default)]
struct Binder {
    binds: AtomicU64,
    records: AtomicU64,
    cell: Arc<Cell>,
}

impl MetricCollector for Binder {
    fn record(&self, _: &Measurement<'_>) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }
    fn bind(&self, key: &Key<'_>, _: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        assert!(key.matches("bound", &[("k", "v")]), "{key:?}");
        self.binds.fetch_add(1, Ordering::Relaxed);
        Some(self.cell.clone())
    }
}

/// A collector that binds is bound once per registered key; values then
/// go to its handle (bad ones to the handle's `reject`), never by key.
#[test]
fn a_collector_that_binds_is_bound_once_per_key() {
    let binder = Arc::new(Binder::default());
    let r = Recorder::new(binder.clone());
    r.in_scope(|| {
        for _ in 0..10 {
            counter!("bound", "k" => "v").increment(3);
        }
        gauge!("bound", "k" => "v").set(f64::NAN);
    });
    assert_eq!(
        binder.binds.load(Ordering::Relaxed),
        2,
        "one counter, one gauge"
    );
    assert_eq!(*binder.cell.sum.lock().unwrap(), 30.0);
    assert_eq!(binder.cell.rejected.load(Ordering::Relaxed), 1);
    assert_eq!(binder.records.load(Ordering::Relaxed), 0);
    assert_eq!(r.stats().cached_keys, 2);
}

#[test]
fn units_map_to_ours_where_one_exists() {
    assert_eq!(map_unit(Unit::Kibibytes), Some(MetricUnit::Kilobytes));
    assert_eq!(
        map_unit(Unit::CountPerSecond),
        Some(MetricUnit::OperationsPerSecond)
    );
    assert_eq!(map_unit(Unit::Milliseconds), Some(MetricUnit::Milliseconds));
    assert_eq!(map_unit(Unit::Gibibytes), None);
    assert_eq!(map_unit(Unit::BitsPerSecond), None);
}

#[test]
fn works_over_a_fanout_of_collectors() {
    let a = Arc::new(MemoryMetrics::new());
    let b = Arc::new(MemoryMetrics::new());
    let r = Recorder::new(Arc::new(Fanout::new(vec![a.clone(), b.clone()])));
    r.in_scope(|| {
        counter!("both", "k" => "v").increment(4);
        histogram!("dist").record(2.0);
    });
    for m in [a, b] {
        assert_eq!(m.counter_value("both", &[("k", "v")]), Some(4.0));
        assert_eq!(m.distribution("dist", &[]).unwrap().count, 1);
    }
}

#[test]
fn scopes_nest_and_end() {
    let (outer_m, outer) = memory();
    let (inner_m, inner) = memory();
    outer.in_scope(|| {
        counter!("c").increment(1);
        inner.in_scope(|| counter!("c").increment(10));
        counter!("c").increment(1);
    });
    // Outside any scope (and with no global recorder here) nothing records.
    counter!("c").increment(100);
    assert_eq!(outer_m.counter_value("c", &[]), Some(2.0));
    assert_eq!(inner_m.counter_value("c", &[]), Some(10.0));
}
