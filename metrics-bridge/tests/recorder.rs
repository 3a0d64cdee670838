//! The mapping of the crate docs' table, call by call, into the memory
//! backend (and a mock for `describe`), through a scoped recorder.

use std::sync::Arc;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_bridge::{Recorder, map_unit};
use metrics_kit::Fanout;
use metrics_memory::MemoryMetrics;
use metrics_protocol::testing::{Call, Capture};
use metrics_protocol::{DropReason, MetricCollector, MetricType, MetricUnit};

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
    let direct = MemoryMetrics::new();
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

    let want = direct.health()[0].dropped.clone();
    assert!(
        want.len() >= 5,
        "the inputs cover several reasons: {want:?}"
    );
    assert_eq!(bridged.health()[0].dropped, want);
    for reason in DropReason::ALL {
        assert_eq!(bridged.dropped(reason), direct.dropped(reason), "{reason}");
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
    let described: Vec<Call> = capture.calls();
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
    for (call, (name, kind, unit, text)) in described.iter().zip(want) {
        assert_eq!(
            *call,
            Call::Describe {
                name: name.into(),
                kind,
                unit,
                description: text.into(),
            }
        );
    }
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
