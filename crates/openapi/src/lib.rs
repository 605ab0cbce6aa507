//! capstan-openapi (being written)
