//! capstan-wire (being written)
