//! Folding host lists back into ranges (the inverse of [`crate::hosts::expand`]) — being written.
