//! OWNER: embedded helper.
