//! The checker's own knowledge of the protocol: an independent client, what replies must be,
//! and a model of the balances. It shares no code with the servers it grades.
//!
//! - `client`: a test client whose every read has a deadline and every byte is transcribed;
//! - `reply`: replies parsed and compared as JSON, with a diagnosis of how they differ;
//! - `ledger`: the expected replies to valid events, and seeded mixed traffic;
//! - `queries`: balance and metrics requests as the checks ask them.

pub mod client;
pub mod ledger;
pub mod queries;
pub mod reply;
