//! The domain: the conversation/message vocabulary every connector speaks ([`model`]) and the
//! pure thread decision ([`thread`]), and what makes a name safe to show ([`text`]). No I/O,
//! no database, no HTTP.

pub mod model;
pub mod text;
pub mod thread;
