//! Tests of the access module, one file per concern.

mod effect_api;
mod engine;
mod evaluate_prop;
mod failures;
mod roles;
mod rules;
mod shared;
mod support;
mod tokens;
