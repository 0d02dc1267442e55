//! HTTP API: the reference router's REST routes, their authentication and their JSON.

pub mod auth;
