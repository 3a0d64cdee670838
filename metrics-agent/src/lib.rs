//! Placeholder until its issue (6) lands: builds nothing yet.
