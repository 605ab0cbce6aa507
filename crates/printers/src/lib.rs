//! capstan-printers (being written)
