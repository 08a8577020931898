//! The router's concerns, one module each.

pub(crate) mod events;
pub(crate) mod faults;
pub(crate) mod invoke;
pub(crate) mod passthrough;
pub(crate) mod versions;

pub(crate) use events::*;
pub(crate) use faults::*;
pub(crate) use invoke::*;
pub(crate) use passthrough::*;
pub(crate) use versions::*;
