//! Credentials beside API tokens: JWT verification for frontends with their own login.

pub mod jwt;
