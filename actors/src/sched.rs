//! Pure scheduling logic: no actors, no I/O, unit-tested in place.
//!
//! - [`dag`]: a block's dependency graph, cycle detection, and the readiness tracker the
//!   Execution actor asks "what may start now?".

pub(crate) mod dag;
