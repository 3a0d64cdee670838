//! What a backend author needs beyond the root: the measurement a backend
//! is handed, the handle it may bind, the validation rules, drop reasons and
//! the health it reports. A library that only records never needs this.

pub mod validate;

#[doc(inline)]
pub use crate::forward_collector;
pub use crate::handle::{outcome, record_timing, record_timing_with_key, record_with_key};
pub use crate::health::{BackendHealth, HealthStatus};
pub use crate::instruments::{InstrumentFn, bind};
pub use crate::key::OwnedKey;
pub use crate::measurement::{Measurement, Value};
pub use validate::{DropReason, SortedTags};
