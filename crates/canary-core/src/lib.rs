//! The rollout policy of the canary controller: what a request means, which weights the alias carries and
//! when, whether a step is healthy, and what happens next.
//!
//! Architecture invariant: this crate does no IO. It knows nothing of AWS SDKs, tokio or the clock; the
//! caller passes in what it read and the current time, and gets back decisions as values.

pub mod asl;
pub mod budget;
pub mod concurrency;
pub mod deployment;
pub mod execution;
pub mod health;
pub mod lock;
pub mod notice;
pub mod refusal;
pub mod request;
pub mod rollout;
pub mod safety_net;
pub mod schedule;
pub mod sequential;

pub use health::{AlarmState, AlarmValue, Check, Failure, HealthFigures, Verdict, VersionFigures};
pub use refusal::{FieldError, Refusal};
pub use request::{Approval, HealthPolicy, Hooks, NoData, RolloutRequest, Strategy, parse_request, parse_request_str};
pub use rollout::{
    AliasState, Hook, HookOutcome, LiveFacts, MovePlan, Next, Outcome, Report, Rollout, Routing, VersionConfig,
    VersionState,
};
pub use schedule::{Schedule, Step};
