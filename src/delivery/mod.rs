//! Webhook delivery: signing (Standard Webhooks), the SSRF guard, the retry policy, the
//! sender and the scheduler that claims due events from the store and sends them.

pub mod body;
pub mod lanes;
pub mod retry;
pub mod scheduler;
pub mod sender;
pub mod signature;
pub mod ssrf;
