//! The consumer role: what a node does to buy inference from providers. For now it holds only the
//! bid [`rating`] (the reference's default scorer), shared by the API's rated-bids route and, later,
//! by session opening with failover.
//!
//! `consumer` sits above `store` (it reads the stored statistics' types) and below `api`.

pub mod client;
pub mod error;
pub mod rating;

pub use error::{ConsumerError, ProviderFailure};
