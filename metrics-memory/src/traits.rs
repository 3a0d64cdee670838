//! The protocol's traits on [`MemoryMetrics`]: recording
//! ([`MetricCollector`], whose outcomes feed the success/failure tracker),
//! timers ([`PerformanceTimer`]) and queries ([`MetricsAggregator`]).

use super::*;

/// From this far behind the recording timeline, a wall clock makes health
/// degraded (less is the jitter of reading two clocks).
const CLOCK_BEHIND_DEGRADED_MS: i64 = 1000;

impl MetricCollector for MemoryMetrics {
    #[inline]
    fn record(&self, measurement: &Measurement<'_>) {
        self.record_measurement(measurement);
    }

    /// Finds a series this thread recorded into from the same call site
    /// without building the key (a match with a stored key proves the name
    /// and tags valid); anything else takes the default path, then is
    /// remembered for that call site.
    #[inline]
    fn record_by_name(&self, name: &str, tags: Tags<'_>, value: &Value) {
        if !matches!(value, Value::Success | Value::Failure)
            && self
                .registry
                .with_cached(name, tags, |s| self.record_cached(s, value))
                .is_some()
        {
            return;
        }
        self.record_by_name_slow(name, tags, value);
    }

    /// Finds the operation's timer series this thread recorded into from
    /// the same call site, as [`record_by_name`](Self::record_by_name)
    /// does, and counts the outcome where that series says its outcomes
    /// go: no key is built, no table searched. Anything else takes the
    /// default path, then is remembered.
    #[inline]
    fn record_timing_by_name(
        &self,
        name: &str,
        tags: Tags<'_>,
        elapsed: Duration,
        failure: Option<&str>,
    ) {
        let recorded = self.registry.with_cached(name, tags, |s| {
            let Some(outcomes) = s.outcomes.get().filter(|_| s.kind == MetricType::Timer) else {
                return false;
            };
            let now = self.now_ms();
            s.record(now, &Value::Timer(elapsed), self.shared.keep_samples);
            match failure.map_or(Ok(()), validate::check_error_type) {
                Ok(()) => outcomes.count(now, failure),
                Err(reason) => self.shared.drops.record(reason),
            }
            true
        });
        if recorded != Some(true) {
            self.record_timing_slow(name, tags, elapsed, failure);
        }
    }

    /// A handle writing into the series directly (counters: one atomic add
    /// in the usual case); it pins the series against idle expiry while it
    /// lives.
    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        self.bind_series(key, kind)
    }

    /// Keeps the help text (the text formats' `# HELP`) and the unit
    /// (their base unit and `# UNIT`), lent by the snapshot, at most one per name and for at most
    /// `max_names` names; an invalid name is ignored, and so is a
    /// description with neither text nor unit.
    fn describe(&self, name: &str, _kind: MetricType, unit: Option<MetricUnit>, help: &str) {
        let description = help;
        let help = description.trim();
        if validate::check_name(name).is_err() || (help.is_empty() && unit.is_none()) {
            return;
        }
        let mut d = self.descriptions.write();
        if d.len() < self.config.max_names || d.contains_key(name) {
            let help = (!help.is_empty()).then(|| {
                description
                    .chars()
                    .take(validate::MAX_TAG_VALUE_LEN)
                    .collect()
            });
            d.insert(name.to_owned(), crate::snapshot::Description { help, unit });
        }
    }

    /// Counts a recording refused where it was made, under its reason.
    fn reject(&self, reason: DropReason) {
        self.shared.drops.record(reason);
    }

    fn health(&self) -> Vec<BackendHealth> {
        self.maintain();
        let mut h = BackendHealth::healthy("memory");
        h.dropped = self.shared.drops.snapshot();
        h.overflowed_metrics = self.registry.overflowed();
        h.details
            .insert("series".into(), self.registry.len() as f64);
        h.details
            .insert("running_timers".into(), self.timers.len() as f64);
        h.details
            .insert("operations".into(), self.tracker.names().len() as f64);
        h.details
            .insert("names".into(), self.registry.names_len() as f64);
        // Samples a sketch reports at a neighbouring far bucket's value,
        // beyond the stated accuracy (see `QuantileSketch::far_merged`).
        h.details.insert(
            "far_merged_samples".into(),
            self.far_merged_samples() as f64,
        );
        let over_names = self.dropped_over_name_limit();
        h.details
            .insert("dropped_name_limit".into(), over_names as f64);
        if !h.overflowed_metrics.is_empty() || h.total_dropped() > 0 || over_names > 0 {
            h.status = HealthStatus::Degraded;
            let mut msg = format!(
                "{} samples dropped, {} names over the cardinality limit",
                h.total_dropped(),
                h.overflowed_metrics.len()
            );
            if over_names > 0 {
                msg.push_str(&format!(
                    "; {over_names} samples with a new name dropped: the name limit \
                     (max_names = {}) is reached",
                    self.config.max_names
                ));
            }
            h.message = Some(msg);
        }
        // Samples are placed on the recording timeline; while the wall
        // clock is behind it (it stepped back), they are placed later than
        // the wall clock says.
        let behind_ms = self.clock_behind_ms();
        h.details
            .insert("clock_behind_s".into(), behind_ms as f64 / 1000.0);
        if behind_ms >= CLOCK_BEHIND_DEGRADED_MS {
            h.status = HealthStatus::Degraded;
            let note = format!(
                "wall clock {} s behind the recording timeline (it stepped back): \
                 samples are placed on the timeline until the wall clock passes it",
                behind_ms / 1000
            );
            h.message = Some(match h.message.take() {
                Some(m) => format!("{m}; {note}"),
                None => note,
            });
        }
        vec![h]
    }
}

/// Timers on the backend's [`Clock`]: a bounded table (`max_running_timers`;
/// an evicted timer is counted as `timer_evicted`), and stopping one records
/// its duration into the timer series named after the operation and one
/// outcome of it.
impl PerformanceTimer for MemoryMetrics {
    fn start_timer<'a>(&self, operation_name: &'a str, metadata: Tags<'a>) -> TimerId {
        self.timers
            .start_counted(operation_name, metadata, &self.shared.drops)
    }

    fn stop_timer(&self, timer_id: TimerId, success: bool) -> Result<Duration, MetricsError> {
        self.timers.stop_into(self, timer_id, success)
    }
}

impl MetricsAggregator for MemoryMetrics {
    fn metric_summary(
        &self,
        metric_name: &str,
        time_window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        self.summary_with_older(metric_name, time_window, None)
    }

    fn metrics_by_tag<'a>(&self, tag_filter: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        self.maintain();
        Ok(self
            .registry
            .all()
            .iter()
            .filter(|s| validate::tags_contain(s.tag_pairs(), tag_filter))
            .map(|s| self.current_value(s))
            .collect())
    }

    fn top_metrics(
        &self,
        metric_type: MetricType,
        limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        self.maintain();
        let mut v: Vec<MetricValue> = self
            .registry
            .all()
            .iter()
            .filter(|s| s.kind == metric_type)
            .map(|s| self.current_value(s))
            .collect();
        v.sort_by(|a, b| b.value.total_cmp(&a.value));
        v.truncate(limit);
        Ok(v)
    }

    fn success_rate(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<f64, MetricsError> {
        let range = self.window_range(time_window)?;
        let (ok, failures) = self
            .tracker
            .outcomes(operation, range)
            .ok_or_else(|| MetricsError::NoData(operation.to_owned()))?;
        metrics_protocol::app::rate_from_counts(operation, ok, &failures)
    }

    fn failure_breakdown(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        let range = self.window_range(time_window)?;
        Ok(self
            .tracker
            .outcomes(operation, range)
            .map(|(_, b)| b)
            .unwrap_or_default())
    }

    fn timing_stats(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        self.timing_with_older(operation, time_window, None)
    }
}
