//! Tests of stream aggregation.

use std::sync::Arc;
use std::time::Duration;

use metrics_memory::Clock;
use metrics_protocol::backend::{Measurement, Value};
use metrics_protocol::{MetricCollector, MetricUnit, Metrics};

use crate::error::AgentError;
use crate::stream::StreamHub;

use super::*;
use crate::test_util::block_on;
use futures_util::StreamExt;
use metrics_memory::{ManualClock, MemoryMetrics};
use metrics_protocol::app::{MetricFilter, StreamEvent};

fn setup(spec: AggregationSpec) -> (Arc<MemoryMetrics>, Arc<ManualClock>, StreamAggregator) {
    let out = Arc::new(MemoryMetrics::new());
    let clock = Arc::new(ManualClock::new(1_000_000));
    let agg =
        StreamAggregator::new(spec, AggregateSink::Collector(out.clone()), clock.clone()).unwrap();
    (out, clock, agg)
}

#[test]
fn time_batches_group_by_tag_set_with_several_functions() {
    let spec = AggregationSpec::time("latency", Duration::from_secs(10))
        .functions(["sum", "count", "min", "max", "mean", "p50", "p95", "p99"])
        .unwrap();
    let (out, clock, agg) = setup(spec);
    for v in 1..=100 {
        agg.send(f64::from(v), &[("route", "/a")]);
    }
    agg.send(7.0, &[("route", "/b")]);
    // Still inside the batch: nothing is out yet.
    clock.advance(Duration::from_secs(9));
    assert_eq!(agg.tick(), 0);
    assert_eq!(out.gauge_value("latency.sum", &[("route", "/a")]), None);
    clock.advance(Duration::from_secs(1));
    assert_eq!(agg.tick(), 16, "8 functions x 2 tag sets");
    let a = |f: &str| out.gauge_value(&format!("latency.{f}"), &[("route", "/a")]);
    assert_eq!(a("sum"), Some(5050.0));
    assert_eq!(a("count"), Some(100.0));
    assert_eq!((a("min"), a("max")), (Some(1.0), Some(100.0)));
    assert_eq!(a("mean"), Some(50.5));
    // Percentiles come from the sketch: within its relative accuracy.
    for (f, exact) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
        let got = a(f).unwrap();
        let bound = exact * metrics_memory::RELATIVE_ACCURACY;
        assert!((got - exact).abs() <= bound, "{f}: {got} vs {exact}");
    }
    assert_eq!(
        out.gauge_value("latency.max", &[("route", "/b")]),
        Some(7.0)
    );
}

#[test]
fn a_sample_of_a_later_batch_closes_the_previous_one() {
    let spec = AggregationSpec::time("q", Duration::from_secs(5)).function(AggFn::Sum);
    let (out, clock, agg) = setup(spec);
    agg.send(1.0, &[]);
    agg.send(2.0, &[]);
    clock.advance(Duration::from_secs(5));
    agg.send(10.0, &[]);
    assert_eq!(out.gauge_value("q.sum", &[]), Some(3.0));
    // The new batch holds only the late sample; flushing sends it.
    assert_eq!(agg.flush_partial(), 1);
    assert_eq!(out.gauge_value("q.sum", &[]), Some(10.0));
    assert_eq!(agg.flush_partial(), 0, "nothing left");
}

#[test]
fn count_batches_and_the_partial_flush_lose_nothing() {
    let spec = AggregationSpec::count("jobs", 3)
        .functions(["count", "sum"])
        .unwrap();
    let (out, _clock, agg) = setup(spec);
    let mut seen_sum = 0.0;
    for v in 1..=7 {
        agg.send(f64::from(v), &[]);
        if v % 3 == 0 {
            seen_sum += out.gauge_value("jobs.sum", &[]).unwrap();
            assert_eq!(out.gauge_value("jobs.count", &[]), Some(3.0));
        }
    }
    assert_eq!(seen_sum, 1.0 + 2.0 + 3.0 + 4.0 + 5.0 + 6.0);
    // One sample is still waiting: the flush at shutdown sends it.
    assert_eq!(agg.flush_partial(), 2);
    assert_eq!(out.gauge_value("jobs.count", &[]), Some(1.0));
    assert_eq!(out.gauge_value("jobs.sum", &[]), Some(7.0));
}

#[test]
fn count_batches_span_tag_sets() {
    let spec = AggregationSpec::count("m", 4).function(AggFn::Count);
    let (out, _clock, agg) = setup(spec);
    for route in ["/a", "/b", "/a", "/a"] {
        agg.send(1.0, &[("route", route)]);
    }
    assert_eq!(out.gauge_value("m.count", &[("route", "/a")]), Some(3.0));
    assert_eq!(out.gauge_value("m.count", &[("route", "/b")]), Some(1.0));
}

#[test]
fn default_tags_are_overridden_by_sample_tags() {
    let spec = AggregationSpec::count("m", 2)
        .function(AggFn::Sum)
        .default_tag("env", "prod")
        .default_tag("service", "api");
    let (out, _clock, agg) = setup(spec);
    agg.send(1.0, &[]);
    agg.send(2.0, &[("env", "dev")]);
    assert_eq!(
        out.gauge_value("m.sum", &[("env", "prod"), ("service", "api")]),
        Some(1.0)
    );
    assert_eq!(
        out.gauge_value("m.sum", &[("env", "dev"), ("service", "api")]),
        Some(2.0)
    );
}

#[test]
fn results_can_go_to_a_stream() {
    let hub = StreamHub::new(16);
    let stream = hub.subscribe(MetricFilter::default());
    let clock = Arc::new(ManualClock::new(0));
    let spec = AggregationSpec::time("lat", Duration::from_secs(1))
        .functions(["p95"])
        .unwrap();
    let agg = Arc::new(
        StreamAggregator::new(spec, AggregateSink::Stream(hub.clone()), clock.clone()).unwrap(),
    );
    // The aggregator as a collector of its own: only its metric is a sample.
    let metrics = Metrics::new(agg.clone());
    metrics.record_timer("lat", Duration::from_millis(40), &[]);
    metrics.record_timer("other", Duration::from_millis(1), &[]);
    metrics.adjust_gauge("lat", 5.0, &[]);
    metrics.record_success("lat", &[]);
    assert_eq!(agg.stats().0, 1);
    clock.advance(Duration::from_secs(1));
    agg.tick();
    hub.close();
    let events: Vec<StreamEvent> = block_on(stream.collect());
    let [StreamEvent::Metric(v)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (v.name.as_str(), v.value, v.unit),
        ("lat.p95", 40.0, MetricUnit::Milliseconds)
    );
    assert_eq!(v.metadata["samples"], "1");
    assert_eq!(v.timestamp.timestamp_millis(), 1000);
}

#[test]
fn a_panicking_sink_is_counted_and_recording_goes_on() {
    struct Boom;
    impl MetricCollector for Boom {
        fn record(&self, m: &Measurement<'_>) {
            if let Value::Gauge(_) = m.value() {
                panic!("sink down")
            }
        }
    }
    let clock = Arc::new(ManualClock::new(0));
    let spec = AggregationSpec::count("m", 1).function(AggFn::Sum);
    let agg = StreamAggregator::new(spec, AggregateSink::Collector(Arc::new(Boom)), clock).unwrap();
    agg.send(1.0, &[]);
    agg.send(2.0, &[]);
    assert_eq!(agg.stats(), (2, 0, 2));
}

#[test]
fn reservoir_keeps_exact_totals_past_the_cap() {
    let mut spec = AggregationSpec::count("m", 1000)
        .functions(["count", "sum", "max", "p50"])
        .unwrap();
    spec.max_samples = 100;
    let (out, _clock, agg) = setup(spec);
    for v in 0..1000 {
        agg.send(f64::from(v), &[]);
    }
    assert_eq!(out.gauge_value("m.count", &[]), Some(1000.0));
    assert_eq!(out.gauge_value("m.sum", &[]), Some(499_500.0));
    assert_eq!(out.gauge_value("m.max", &[]), Some(999.0));
    let p50 = out.gauge_value("m.p50", &[]).unwrap();
    assert!((0.0..1000.0).contains(&p50));
}

#[test]
fn bad_specs_name_the_field() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
    let sink = || AggregateSink::Stream(StreamHub::new(1));
    let err = |spec: AggregationSpec| match StreamAggregator::new(spec, sink(), clock.clone()) {
        Err(AgentError::Config { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(AggregationSpec::count("m", 0).function(AggFn::Sum)),
        "batch"
    );
    assert_eq!(
        err(AggregationSpec::time("m", Duration::ZERO).function(AggFn::Sum)),
        "batch"
    );
    assert_eq!(err(AggregationSpec::count("m", 1)), "functions");
    assert_eq!(
        err(AggregationSpec::count("", 1).function(AggFn::Sum)),
        "metric"
    );
    let e = AggregationSpec::count("m", 1)
        .functions(["p0"])
        .unwrap_err();
    assert!(e.to_string().contains("p0"), "{e}");
    assert!(AggregationSpec::count("m", 1).functions(["p101"]).is_err());
}

#[test]
fn a_set_routes_by_name_and_flushes_chains() {
    let out = Arc::new(MemoryMetrics::new());
    let set = Arc::new(AggregationSet::new());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
    /// A sink that records into the memory backend and the set itself.
    struct Both(Arc<MemoryMetrics>, Arc<AggregationSet>);
    impl MetricCollector for Both {
        fn record(&self, m: &Measurement<'_>) {
            self.0.record(m);
            self.1.record(m);
        }
    }
    let both: Arc<dyn MetricCollector> = Arc::new(Both(out.clone(), set.clone()));
    // `lat.max` is aggregated again: a chain the flush must drain.
    let first = AggregationSpec::count("lat", 10).function(AggFn::Max);
    let second = AggregationSpec::count("lat.max", 10).function(AggFn::Count);
    set.add(Arc::new(
        StreamAggregator::new(first, AggregateSink::Collector(both.clone()), clock.clone())
            .unwrap(),
    ));
    set.add(Arc::new(
        StreamAggregator::new(second, AggregateSink::Collector(both.clone()), clock).unwrap(),
    ));
    let metrics = Metrics::from_dyn(both.clone());
    metrics.record_histogram("lat", 5.0, &[]);
    metrics.record_histogram("unrelated", 5.0, &[]);
    assert_eq!(set.flush_partial(), 2);
    assert_eq!(out.gauge_value("lat.max", &[]), Some(5.0));
    assert_eq!(out.gauge_value("lat.max.count", &[]), Some(1.0));
    let h = set.report().unwrap();
    assert_eq!(h.details["samples"], 2.0);
}

#[test]
fn functions_from_code_see_the_batch_values_sorted() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let log = seen.clone();
    let spec = AggregationSpec::count("size", 4)
        .function(AggFn::custom("spread", |v| v[v.len() - 1] - v[0]))
        .function(AggFn::custom("second", move |v| {
            log.lock().push(v.to_vec());
            v[1]
        }))
        .function(AggFn::Max);
    let (out, _clock, agg) = setup(spec);
    for v in [9.0, 2.0, 7.0, 4.0] {
        agg.send(v, &[("shard", "a")]);
    }
    let tags = [("shard", "a")];
    assert_eq!(out.gauge_value("size.spread", &tags), Some(7.0));
    assert_eq!(out.gauge_value("size.second", &tags), Some(4.0));
    assert_eq!(out.gauge_value("size.max", &tags), Some(9.0));
    assert_eq!(*seen.lock(), vec![vec![2.0, 4.0, 7.0, 9.0]]);
}

#[test]
fn a_panicking_function_from_code_loses_only_its_result() {
    let spec = AggregationSpec::count("m", 2)
        .function(AggFn::custom("boom", |_| panic!("bad function")))
        .function(AggFn::Sum);
    let (out, _clock, agg) = setup(spec);
    agg.send(1.0, &[]);
    agg.send(2.0, &[]);
    assert_eq!(out.gauge_value("m.sum", &[]), Some(3.0));
    assert_eq!(out.gauge_value("m.boom", &[]), None);
    assert_eq!(agg.stats(), (2, 1, 1), "2 samples, 1 result, 1 panic");
    agg.send(5.0, &[]);
    agg.send(5.0, &[]);
    assert_eq!(
        out.gauge_value("m.sum", &[]),
        Some(10.0),
        "recording goes on"
    );
}

/// A derived value is in its source's unit: a timer's p95 is described in
/// milliseconds, so the exports show it in seconds, as they show the timer.
#[test]
fn results_carry_the_unit_of_their_source_into_the_exports() {
    use metrics_exposition::{ExportFormat, Exporter};
    let spec = AggregationSpec::time("lat", Duration::from_secs(1))
        .functions(["p95", "count"])
        .unwrap();
    let (out, clock, agg) = setup(spec);
    let agg = Arc::new(agg);
    Metrics::new(agg.clone()).record_timer("lat", Duration::from_millis(40), &[]);
    clock.advance(Duration::from_secs(1));
    agg.tick();
    let text = Exporter::new(out.clone())
        .export(ExportFormat::Prometheus)
        .unwrap();
    assert!(text.contains("\nlat_p95_seconds 0.04\n"), "{text}");
    // A count has no unit.
    assert!(text.contains("\nlat_count_value 1\n"), "{text}");
}

#[test]
fn a_result_that_is_no_value_is_refused_and_counted_by_the_sink() {
    use metrics_protocol::backend::DropReason;
    use metrics_protocol::testing::Capture;
    let capture = Capture::new();
    let spec = AggregationSpec::count("m", 1)
        .function(AggFn::custom("nan", |_| f64::NAN))
        .function(AggFn::Sum);
    let agg = StreamAggregator::new(
        spec,
        AggregateSink::Collector(capture.clone()),
        Arc::new(ManualClock::new(0)),
    )
    .unwrap();
    agg.send(2.0, &[("k", "v")]);
    assert_eq!(capture.gauge("m.sum", &[("k", "v")]), Some(2.0));
    assert_eq!(capture.gauge("m.nan", &[("k", "v")]), None);
    assert_eq!(capture.dropped(DropReason::InvalidValue), 1);
}
