//! OWNER: aws helper.
