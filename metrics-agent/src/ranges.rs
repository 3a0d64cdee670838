//! [`MemoryRanges`]: the memory backend's range queries for the HTTP service.

use std::sync::Arc;

use metrics_http::{RangeBin, RangeQueries, RangeRequest, RangeSeries};
use metrics_memory::MemoryMetrics;

/// `/api/v1/query_range` of `metrics-http` from the memory backend's binned
/// history (the protocol has no range query of its own): what the main
/// program serves.
pub struct MemoryRanges(pub Arc<MemoryMetrics>);

impl RangeQueries for MemoryRanges {
    fn query_range(
        &self,
        r: &RangeRequest,
    ) -> Result<Vec<RangeSeries>, metrics_protocol::MetricsError> {
        let q = metrics_memory::RangeQuery {
            name: r.name.clone(),
            tags: r.tags.clone(),
            start: r.start,
            end: r.end,
            step: r.step,
            group_by: r.group_by.clone(),
        };
        Ok(self
            .0
            .range_query(&q)?
            .into_iter()
            .map(|s| RangeSeries {
                group: s.group,
                bins: s
                    .bins
                    .into_iter()
                    .map(|b| RangeBin {
                        start: b.start,
                        count: b.count,
                        sum: b.sum,
                        min: b.min,
                        max: b.max,
                        avg: b.avg,
                    })
                    .collect(),
            })
            .collect())
    }
}
