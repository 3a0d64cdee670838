//! The former path and names of [`ring`](crate::ring), kept while
//! `registry.rs` and `config.rs` still import through them. Nothing else
//! uses this module; it goes once those two import from `ring`.

pub(crate) use crate::ring::{
    HistoryMark, Rings as Windows, SketchRings as SketchWindows, WindowSpec, sketch_specs,
};
