//! Domain logic, storage backends and HTTP handlers shared by every lambda-auth function.
//!
//! Handlers take and return plain `http` types, so one [`App`] serves Lambda invocations
//! ([`lambda`]), the local server ([`local`]) and tests alike.

pub mod accounts;
pub mod apikeys;
pub mod app;
pub mod audit;
pub mod authorizer;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod email;
pub mod gateway;
pub mod http;
pub mod password;
pub mod principal;
pub mod rotation;
pub mod sessions;
pub mod store;
pub mod token;

pub use app::{App, Route};
pub mod lambda;
pub mod local;
pub mod logging;
pub mod oauth;
