//! capstan-validation (being written)
