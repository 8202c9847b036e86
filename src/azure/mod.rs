//! What az and Azure know: `signin` reads az's local profile (who is signed in where).
pub mod signin;
