//! OWNER: helper — to be written.
