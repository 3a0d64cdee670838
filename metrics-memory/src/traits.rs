//! The protocol's traits on [`MemoryMetrics`]: recording
//! ([`MetricCollector`]), timers ([`PerformanceTimer`]), outcomes
//! ([`SuccessFailureTracker`]) and queries ([`MetricsAggregator`]).

use super::*;

/// From this far behind the recording timeline, a wall clock makes health
/// degraded (less is the jitter of reading two clocks).
const CLOCK_BEHIND_DEGRADED_MS: i64 = 1000;

impl MetricCollector for MemoryMetrics {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(name, value, tags, MetricType::Counter, Op::Add);
    }
    /// Keeps the help text (the exports' `# HELP`) and the unit (their
    /// base unit and `# UNIT`), at most one per name and for at most
    /// `max_names` names; an invalid name is ignored, and so is a
    /// description with neither text nor unit.
    fn describe<'a>(
        &self,
        name: &'a str,
        _kind: MetricType,
        unit: Option<metrics_protocol::MetricUnit>,
        description: &'a str,
    ) {
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
            d.insert(name.to_owned(), export::Description { help, unit });
        }
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(name, value, tags, MetricType::Gauge, Op::Set);
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        self.record(name, delta, tags, MetricType::Gauge, Op::Adjust);
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(name, value, tags, MetricType::Histogram, Op::Add);
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.record(
            name,
            duration.as_secs_f64() * 1e3,
            tags,
            MetricType::Timer,
            Op::Add,
        );
    }
    fn register_counter<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Counter> {
        Some(Counter::from_arc(self.bind_counter(name, tags)))
    }
    fn register_gauge<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Gauge> {
        Some(Gauge::from_arc(self.bind(name, tags, MetricType::Gauge)))
    }
    fn register_histogram<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Histogram> {
        Some(Histogram::from_arc(self.bind(
            name,
            tags,
            MetricType::Histogram,
        )))
    }
    fn register_timer<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Timer> {
        Some(Timer::from_arc(self.bind(name, tags, MetricType::Timer)))
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
        let over_names = self.dropped_over_name_limit();
        h.details
            .insert("dropped_name_limit".into(), over_names as f64);
        if !h.overflowed_metrics.is_empty() || h.total_dropped() > 0 || over_names > 0 {
            h.status = metrics_protocol::HealthStatus::Degraded;
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
            h.status = metrics_protocol::HealthStatus::Degraded;
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

impl PerformanceTimer for MemoryMetrics {
    metrics_kit::running_timer_methods!(|m| &m.timers, &m.shared.drops);

    fn get_timing_stats(
        &self,
        operation_name: &str,
        window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        self.timing_with_older(operation_name, window, None)
    }
}

impl SuccessFailureTracker for MemoryMetrics {
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        if let Err(r) = self
            .tracker
            .record(self.now_ms(), operation, metadata, None)
        {
            self.shared.refused(r);
        }
    }

    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        if let Err(r) = self
            .tracker
            .record(self.now_ms(), operation, metadata, Some(error_type))
        {
            self.shared.refused(r);
        }
    }

    fn get_success_rate(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<f64, MetricsError> {
        let range = self.window_range(time_window)?;
        let (ok, failures) = self
            .tracker
            .outcomes(operation, range)
            .ok_or_else(|| MetricsError::NoData(operation.to_owned()))?;
        metrics_protocol::success_rate(operation, ok, &failures)
    }

    fn get_failure_breakdown(
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
}

impl MetricsAggregator for MemoryMetrics {
    fn get_metric_summary(
        &self,
        metric_name: &str,
        time_window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        self.summary_with_older(metric_name, time_window, None)
    }

    fn get_metrics_by_tag<'a>(
        &self,
        tag_filter: Tags<'a>,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        self.maintain();
        Ok(self
            .registry
            .all()
            .iter()
            .filter(|s| validate::tags_contain(s.tag_pairs(), tag_filter))
            .map(|s| self.current_value(s))
            .collect())
    }

    fn export_metrics(&self, format: ExportFormat) -> Result<String, MetricsError> {
        self.maintain();
        export::export(self, format)
    }

    fn get_top_metrics(
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
}
