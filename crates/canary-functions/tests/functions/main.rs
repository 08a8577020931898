//! The controller's functions, in one test binary: the handlers against an in-memory account
//! ([`handlers`], [`safety_net`], [`release`] with the stored states of earlier controllers), the template and the state
//! machine held to the code ([`template`], [`statemachine`]), the delivery scripts ([`scripts`]) and the
//! one controller binary ([`controller`]).

mod controller;
mod handlers;
mod release;
mod safety_net;
mod scripts;
mod statemachine;
mod support;
mod template;
