//! Credentials: API tokens (random, stored hashed) and JWT verification for frontends with
//! their own login.

pub mod jwt;
pub mod tokens;
