//! Password policy and hashing.
//!
//! Registration runs [`PasswordPolicy::check`] and stores [`PasswordHasher::hash`].
//! Login runs [`PasswordPolicy::check_max_bytes`] and [`normalize`], then
//! [`PasswordHasher::verify`], or [`PasswordHasher::verify_dummy`] for an unknown email.

mod common;
mod hasher;
mod policy;

pub use common::is_common_password;
pub use hasher::{Argon2Params, PasswordHasher, Verification};
pub use policy::{normalize, NormalizedPassword, PasswordPolicy, PasswordRejection};
